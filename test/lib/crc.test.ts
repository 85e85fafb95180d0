import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Range } from '../../src/lib/crc.js';

const zlibCrc32 = (zlib as unknown as { crc32: (d: Uint8Array, v?: number) => number }).crc32;

describe('crc32', () => {
  it('gives the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32Range(Buffer.from('xx123456789yy'), 2, 11)).toBe(0xcbf43926);
  });

  it('agrees with zlib over any range, length and initial value (both sides of the JS/zlib cut)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 1200 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (data, a, b, initial) => {
          const start = data.length === 0 ? 0 : a % (data.length + 1);
          const end = start + (b % (data.length - start + 1));
          // An empty range leaves the CRC as it was (zlib answers 0 for a view of an empty buffer).
          const want = end === start ? initial : zlibCrc32(data.subarray(start, end), initial);
          expect(crc32Range(data, start, end, initial)).toBe(want);
          expect(crc32(data.subarray(start, end), initial)).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('continues a CRC across pieces like one pass over the whole', () => {
    const data = new Uint8Array(3000).map((_, i) => (i * 131 + 7) & 0xff);
    for (const cut of [0, 1, 7, 8, 9, 511, 512, 513, 2999, 3000]) {
      expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(zlibCrc32(data));
    }
  });

  it('sums a range of a view that starts inside its buffer', () => {
    const backing = new Uint8Array(100).map((_, i) => i);
    const view = backing.subarray(13, 90);
    expect(crc32Range(view, 5, 60)).toBe(zlibCrc32(backing.subarray(18, 73)));
  });
});
