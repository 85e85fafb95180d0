/**
 * The 16-byte sequence id (seq): `[8 bytes ns since epoch | 4 bytes counter | 4 bytes node id]`,
 * big-endian, compared as unsigned bytes. Pure: no node:* imports, no clock.
 */
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { NodeId, Seq } from '../lib/ids.js';

export const SEQ_BYTES = 16;
/** The top bit of the timestamp is reserved (engines may use it as a tombstone flag). */
export const SEQ_TIMESTAMP_NS_MAX = (1n << 63n) - 1n;
export const SEQ_COUNTER_MAX = 0xffff_ffff;

/** The lowest seq: below every seq a sequencer issues. */
export const ZERO_SEQ: Seq = new Uint8Array(SEQ_BYTES) as Seq;

export function makeSeq(timestampNs: bigint, counter: number, node: NodeId | number): Seq {
  assert(
    timestampNs >= 0n && timestampNs <= SEQ_TIMESTAMP_NS_MAX,
    `seq timestamp out of range: ${timestampNs}`,
  );
  assert(Number.isInteger(counter) && counter >= 0 && counter <= SEQ_COUNTER_MAX, 'seq counter out of range');
  assert(Number.isInteger(node) && node >= 0 && node <= 0xffff_ffff, 'seq node id out of range');
  const b = new Uint8Array(SEQ_BYTES);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, timestampNs);
  v.setUint32(8, counter);
  v.setUint32(12, node);
  return b as Seq;
}

/** Checks a byte string is a well-formed seq (16 bytes, top bit clear) and brands it. */
export function asSeq(b: Uint8Array): Seq {
  assert(b.length === SEQ_BYTES, `seq must be ${SEQ_BYTES} bytes, got ${b.length}`);
  assert((b[0]! & 0x80) === 0, 'seq top bit must be 0');
  return b as Seq;
}

function view(s: Seq): DataView {
  return new DataView(s.buffer, s.byteOffset, s.byteLength);
}

export function seqTimestampNs(s: Seq): bigint {
  return view(s).getBigUint64(0);
}

export function seqCounter(s: Seq): number {
  return view(s).getUint32(8);
}

export function seqNodeId(s: Seq): NodeId {
  return view(s).getUint32(12) as NodeId;
}

/** Unsigned byte order: negative if a < b, 0 if equal, positive if a > b. */
export function compareSeq(a: Seq, b: Seq): number {
  assert(a.length === SEQ_BYTES && b.length === SEQ_BYTES, 'compareSeq: not a seq');
  for (let i = 0; i < SEQ_BYTES; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

export function seqMax(a: Seq, b: Seq): Seq {
  return compareSeq(a, b) >= 0 ? a : b;
}

const hexDigits = '0123456789abcdef';

export function seqToHex(s: Seq): string {
  assert(s.length === SEQ_BYTES, 'seqToHex: not a seq');
  let out = '';
  for (let i = 0; i < SEQ_BYTES; i++) {
    const x = s[i]!;
    out += hexDigits[x >> 4]! + hexDigits[x & 15]!;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  return -1;
}

/** Parses 32 lowercase hex characters; INVALID_SEQ on anything else (an operating error: user input). */
export function seqFromHex(hex: string): Seq {
  const bad = (): TesseraError =>
    new TesseraError('INVALID_SEQ', `not a sequence id: ${JSON.stringify(hex)}`);
  if (typeof hex !== 'string' || hex.length !== SEQ_BYTES * 2) throw bad();
  const b = new Uint8Array(SEQ_BYTES);
  for (let i = 0; i < SEQ_BYTES; i++) {
    const hi = hexValue(hex.charCodeAt(2 * i));
    const lo = hexValue(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw bad();
    b[i] = (hi << 4) | lo;
  }
  if ((b[0]! & 0x80) !== 0) throw bad();
  return b as Seq;
}
