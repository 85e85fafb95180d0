import zlib from 'node:zlib';

/** CRC-32 (zlib polynomial), from Node's native zlib (Node >= 20.15). */
export const zlib_crc32: (data: Uint8Array, initial?: number) => number = (
  zlib as unknown as { crc32: (d: Uint8Array, v?: number) => number }
).crc32;
