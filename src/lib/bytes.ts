/** Byte-string helpers. Keys are ordered as unsigned bytes everywhere. */

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** A copy that owns its memory (decoded buffers may alias a larger input). */
export function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

export { crc32 } from './crc.js';
