/**
 * Keys are bytes, and travel in URLs percent-encoded byte by byte (RFC 3986). These never go
 * through UTF-8 strings: `%FF` decodes to the byte 0xFF. Shared by the HTTP API and the client.
 */
import { TesseraError } from './errors.js';

const hexDigit = (c: number): number => {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
};

/**
 * Decodes %XX escapes to raw bytes. Other characters stand for themselves; a raw URL from Node's
 * HTTP parser holds one char per byte (latin1), so a char code above 0x7F is that byte. `+` is a
 * plus sign, not a space. Malformed escapes are BAD_REQUEST.
 */
export function percentDecodeBytes(s: string, what = 'path segment'): Uint8Array {
  const out = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexDigit(s.charCodeAt(i + 1));
      const lo = hexDigit(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw new TesseraError('BAD_REQUEST', `malformed percent-escape in ${what}`);
      out[n++] = hi * 16 + lo;
      i += 2;
    } else if (c > 0xff) {
      throw new TesseraError('BAD_REQUEST', `non-byte character in ${what}`);
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

const unreserved = new Uint8Array(256);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~')
  unreserved[ch.charCodeAt(0)] = 1;
const hex = '0123456789ABCDEF';

/** Percent-encodes every byte except [A-Za-z0-9-_~] (so `.` and `..` never look like dot-segments). */
export function percentEncodeBytes(b: Uint8Array): string {
  let s = '';
  for (const byte of b) {
    if (unreserved[byte] === 1) s += String.fromCharCode(byte);
    else s += `%${hex[byte >> 4]}${hex[byte & 15]}`;
  }
  return s;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');

/** The UTF-8 text of the bytes, or null when they are not valid UTF-8. */
export function utf8OrNull(b: Uint8Array): string | null {
  try {
    return utf8Fatal.decode(b);
  } catch {
    return null;
  }
}

/** A key (or bound) as JSON: `text` exact when valid UTF-8 (else with U+FFFD), and always base64. */
export function keyToJson(b: Uint8Array): { text: string; b64: string } {
  const text = utf8OrNull(b) ?? utf8Lossy.decode(b);
  return { text, b64: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') };
}

/** The smallest byte string greater than every string with this prefix, or null if none (all 0xFF). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i] as number;
    if (byte !== 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i] = byte + 1;
      return end;
    }
  }
  return null;
}
