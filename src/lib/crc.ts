/**
 * CRC-32 (the zlib polynomial, reflected, 0xEDB88320). Short inputs are summed here in JavaScript
 * (slicing by 8, over a range of a buffer: no view object and no call into C++ per record; a
 * log scan checks hundreds of thousands of ~150-byte records); longer ones by Node's zlib (>= 20.15),
 * whose table code wins once the call's fixed cost is spread over enough bytes.
 */
import zlib from 'node:zlib';

const zlibCrc32 = (zlib as unknown as { crc32: (d: Uint8Array, v?: number) => number }).crc32;

/** Ranges up to this many bytes are summed in JavaScript (measured: 28 vs 50 ms per 200k x 150 B). */
const JS_BYTES_MAX = 512;

/** Eight 256-entry tables: table t maps a byte to its CRC after t further zero bytes. */
const table = new Int32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  table[n] = c;
}
for (let t = 1; t < 8; t++) {
  for (let n = 0; n < 256; n++) {
    const prev = table[(t - 1) * 256 + n]!;
    table[t * 256 + n] = (prev >>> 8) ^ table[prev & 0xff]!;
  }
}

/** CRC-32 of bytes [start, end) of `data`, continuing from `initial` (a CRC of the bytes before). */
export function crc32Range(data: Uint8Array, start: number, end: number, initial = 0): number {
  if (end - start > JS_BYTES_MAX) {
    return zlibCrc32(new Uint8Array(data.buffer, data.byteOffset + start, end - start), initial);
  }
  const t = table;
  let c = ~initial;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c =
      t[1792 + (a & 0xff)]! ^
      t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^
      t[768 + data[i + 4]!]! ^
      t[512 + data[i + 5]!]! ^
      t[256 + data[i + 6]!]! ^
      t[data[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of `data`, continuing from `initial`. */
export function crc32(data: Uint8Array, initial = 0): number {
  return data.length > JS_BYTES_MAX ? zlibCrc32(data, initial) : crc32Range(data, 0, data.length, initial);
}
