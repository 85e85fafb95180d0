import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../src/lib/errors.js';
import { keyToJson, percentDecodeBytes, percentEncodeBytes, prefixEnd } from '../../src/lib/urlbytes.js';

describe('url bytes', () => {
  it('percent-encoding round-trips every byte string and leaves no reserved character', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const s = percentEncodeBytes(b);
        expect(s).toMatch(/^[A-Za-z0-9\-_~%]*$/);
        expect(Buffer.from(percentDecodeBytes(s))).toEqual(Buffer.from(b));
      }),
    );
  });

  it('decodes %FF to the byte 0xFF and raw latin1 characters to their byte, + stays +', () => {
    expect([...percentDecodeBytes('%FF%fe+a\u00e9')]).toEqual([0xff, 0xfe, 0x2b, 0x61, 0xe9]);
    for (const bad of ['%', '%F', '%GG', 'a%1']) {
      let code = '';
      try {
        percentDecodeBytes(bad);
      } catch (e) {
        if (isTesseraError(e)) code = e.code;
      }
      expect(code).toBe('BAD_REQUEST');
    }
  });

  it('prefixEnd is the least string above every string with the prefix', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        fc.uint8Array({ maxLength: 8 }),
        (p, tail) => {
          const end = prefixEnd(p);
          const withPrefix = Buffer.concat([p, tail]);
          if (end === null) {
            expect(p.every((x) => x === 0xff)).toBe(true);
            return;
          }
          expect(Buffer.compare(withPrefix, end)).toBe(-1);
          expect(Buffer.compare(Buffer.from(p), end)).toBe(-1);
        },
      ),
    );
    expect(prefixEnd(new Uint8Array([0x61, 0xff]))).toEqual(new Uint8Array([0x62]));
  });

  it('keys in JSON: exact text when valid UTF-8, always base64', () => {
    expect(keyToJson(new Uint8Array(Buffer.from('héllo')))).toEqual({ text: 'héllo', b64: 'aMOpbGxv' });
    expect(keyToJson(new Uint8Array([0xff])).b64).toBe('/w==');
  });
});
