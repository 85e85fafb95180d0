/** The HTTP/1.1 request parser: heads, smuggling guards, chunked bodies split at every byte. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkedDecoder, HttpParseError, headEnd, parseHead } from '../../src/request/http1.js';

function head(text: string, fieldsMax = 64) {
  const buf = Buffer.from(text, 'latin1');
  const end = headEnd(buf, 0);
  expect(end).toBe(buf.length);
  return parseHead(buf, 0, end, fieldsMax);
}

function refused(text: string): number {
  try {
    head(text);
  } catch (e) {
    expect(e).toBeInstanceOf(HttpParseError);
    return (e as HttpParseError).status;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

describe('parseHead', () => {
  it('reads the request line, lower-cases names, trims values, keeps repeated fields as arrays', () => {
    const h = head(
      'PUT /v1/tables/t/items/a%2Fb?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization:  Bearer tok \t\r\n' +
        'If-Match: "a"\r\nif-match: "b"\r\nContent-Length: 3\r\n\r\n',
    );
    expect(h.method).toBe('PUT');
    expect(h.url).toBe('/v1/tables/t/items/a%2Fb?x=1');
    expect(h.minor).toBe(1);
    expect(h.headers.authorization).toBe('Bearer tok');
    expect(h.headers['if-match']).toEqual(['"a"', '"b"']);
    expect(h.contentLength).toBe(3);
    expect(h.chunked).toBe(false);
    expect(h.keepAlive).toBe(true);
    expect(h.expectContinue).toBe(false);
  });

  it('keeps HTTP/1.1 alive unless "close", HTTP/1.0 only with "keep-alive"', () => {
    expect(head('GET / HTTP/1.1\r\nConnection: close\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\n\r\n').keepAlive).toBe(false);
    expect(head('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n').keepAlive).toBe(true);
  });

  it('takes chunked transfer coding and Expect: 100-continue', () => {
    const h = head('PUT /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n');
    expect(h.chunked).toBe(true);
    expect(h.contentLength).toBe(-1);
    expect(h.expectContinue).toBe(true);
  });

  it('refuses what could be read two ways, or is not HTTP/1.x', () => {
    expect(refused('PUT /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n')).toBe(400);
    expect(refused('PUT /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n')).toBe(400);
    expect(refused('PUT /x HTTP/1.1\r\nContent-Length: +3\r\n\r\n')).toBe(400);
    expect(refused('PUT /x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n')).toBe(400);
    expect(refused('PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')).toBe(400);
    expect(refused('PUT /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n')).toBe(400);
    expect(refused('GET /x HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n')).toBe(400);
    expect(refused('GET /x HTTP/1.1\r\nX A: 1\r\n\r\n')).toBe(400);
    expect(refused('GET /x HTTP/1.1\r\nX-A: a\u0000b\r\n\r\n')).toBe(400);
    expect(refused('GET /x HTTP/1.1\nX-A: 1\r\n\r\n')).toBe(400);
    expect(refused('GET /x HTTP/2.0\r\n\r\n')).toBe(400);
    expect(refused('GET  /x HTTP/1.1\r\n\r\n')).toBe(400);
    expect(refused('GET /x y HTTP/1.1\r\n\r\n')).toBe(400);
    expect(refused('NOT HTTP AT ALL\r\n\r\n')).toBe(400);
    expect(refused('GET /x HTTP/1.1\r\nExpect: something\r\n\r\n')).toBe(400);
  });

  it('refuses more header fields than allowed with 431', () => {
    const fields = Array.from({ length: 5 }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    expect(() => head(`GET / HTTP/1.1\r\n${fields}\r\n`, 4)).toThrow(/more than 4 header fields/);
    expect(head(`GET / HTTP/1.1\r\n${fields}\r\n`, 5).headers['x-4']).toBe('4');
  });

  it('parses a head at an offset of a larger buffer', () => {
    const buf = Buffer.from('xxGET /a HTTP/1.1\r\nHost: y\r\n\r\nGET /b HTTP/1.1\r\n\r\n', 'latin1');
    const end = headEnd(buf, 2);
    const h = parseHead(buf, 2, end, 64);
    expect(h.url).toBe('/a');
    expect(h.headers.host).toBe('y');
    expect(parseHead(buf, end, headEnd(buf, end), 64).url).toBe('/b');
  });
});

/** Encodes `parts` as a chunked body with extensions and a trailer. */
function chunked(parts: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (p.length === 0) continue;
    out.push(Buffer.from(`${p.length.toString(16)};ext=1\r\n`), p, Buffer.from('\r\n'));
  }
  out.push(Buffer.from('0\r\nTrailer-Field: x\r\n\r\n'));
  return Buffer.concat(out);
}

/** Feeds `wire` in pieces cut at `cuts`, like sockets do; returns the body and the bytes left over. */
function decode(wire: Buffer, cuts: number[]): { body: Buffer; rest: Buffer } {
  const d = new ChunkedDecoder(1024);
  const data: Buffer[] = [];
  let pending = Buffer.alloc(0);
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const at of [...points, wire.length]) {
    pending = Buffer.concat([pending, wire.subarray(from, at)]);
    from = at;
    const used = d.feed(pending, 0, (c) => data.push(Buffer.from(c)));
    pending = pending.subarray(used);
    if (d.done) break;
  }
  expect(d.done).toBe(true);
  return { body: Buffer.concat(data), rest: Buffer.concat([pending, wire.subarray(from)]) };
}

describe('ChunkedDecoder', () => {
  it('decodes the same body however the bytes are split, and stops at its end', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (parts, cuts) => {
          const bufs = parts.map((p) => Buffer.from(p));
          const next = Buffer.from('GET / HTTP/1.1\r\n\r\n');
          const { body, rest } = decode(Buffer.concat([chunked(bufs), next]), cuts);
          expect(body.equals(Buffer.concat(bufs))).toBe(true);
          expect(rest.equals(next)).toBe(true);
        },
      ),
    );
  });

  it('refuses malformed sizes, data longer than its size, and overlong lines', () => {
    const bad =
      (wire: string, max = 1024) =>
      () =>
        new ChunkedDecoder(max).feed(Buffer.from(wire, 'latin1'), 0, () => undefined);
    expect(bad('zz\r\nab\r\n0\r\n\r\n')).toThrow(HttpParseError);
    expect(bad('-1\r\n')).toThrow(HttpParseError);
    expect(bad('2\r\nabc\r\n0\r\n\r\n')).toThrow(/longer than its size/);
    expect(bad(`${'1'.repeat(20)}\r\n`)).toThrow(HttpParseError);
    expect(bad(`1;${'e'.repeat(100)}`, 64)).toThrow(/too long/);
    expect(bad('1\nab')).toThrow(HttpParseError);
  });
});
