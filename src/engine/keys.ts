/**
 * Key and value layout shared by both engines (format version 1, see docs/engine.md).
 *
 * Data key:  varint(keyspace + 1) ++ userKey        (first byte 0x01..0xff)
 * Root:      0x00                                     instance info (format version, kind)
 * Applied:   0x00 ++ varint(group + 1) ++ 0x00        group's applied position
 * Meta:      0x00 ++ varint(group + 1) ++ 0x01 ++ k   group's meta record k
 * Chain:     0x00 0x00                                btree: the commit chain (float64 LE counter)
 *
 * varint is unsigned LEB128: prefix-free, 1 byte below 127. Record value: the 16-byte seq, with the
 * top bit of its first byte set for a tombstone (a real seq's nanosecond timestamp never sets it),
 * then the value bytes (none for a tombstone).
 */
import { assert } from '../lib/assert.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { logIndex } from '../lib/ids.js';
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { EngineRecord, KeyspaceId } from './types.js';

export const formatVersion = 1;
export const seqBytes = 16;
export const tombstoneBit = 0x80;
export const zeroSeq = new Uint8Array(seqBytes) as Seq;
export const rootKey = Uint8Array.of(0x00);
/**
 * btree's commit chain: each batch queued ahead on lmdb-js's write thread commits only if the chain
 * still holds the value the batch before it set, and advances it (see LmdbEngine._writeAhead).
 * varint(group + 1) is never 0, so the key is no group's.
 */
export const chainKey = Uint8Array.of(0x00, 0x00);
const appliedTag = 0x00;
const metaTag = 0x01;

/** A plain Uint8Array copy of b[start, end) (Buffer.slice would alias; callers get owned memory). */
export function copyRange(b: Uint8Array, start = 0, end = b.length): Uint8Array {
  return new Uint8Array(b.subarray(start, end));
}

/** Stored data that fails a format check is an operating error (CORRUPTION), not a bug. */
export function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new TesseraError('CORRUPTION', `index engine: ${what}`);
}

export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Writes unsigned LEB128 of n (< 2^32 + 1) at out[at]; returns the next offset. */
export function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

export function readVarint(buf: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 6; i++) {
    const b = buf[at + i];
    assert(b !== undefined, 'varint runs past the buffer');
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
    scale *= 128;
  }
  assert(false, 'varint too long');
}

export function keyspacePrefix(keyspace: KeyspaceId): Uint8Array {
  const out = new Uint8Array(varintLength(keyspace + 1));
  writeVarint(out, 0, keyspace + 1);
  return out;
}

export function dataKey(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix, 0);
  out.set(key, prefix.length);
  return out;
}

/** The user key of a data key, given the keyspace prefix length. A view, not a copy. */
export function userKey(encoded: Uint8Array, prefixLength: number): Uint8Array {
  return encoded.subarray(prefixLength);
}

/** Splits a data key into (keyspace, user key). */
export function splitDataKey(encoded: Uint8Array): { keyspace: KeyspaceId; key: Uint8Array } {
  assert(encoded[0] !== 0x00, 'not a data key');
  const { value, next } = readVarint(encoded, 0);
  return { keyspace: (value - 1) as KeyspaceId, key: encoded.subarray(next) };
}

function groupPrefix(group: GroupId, tag: number, extra: number): { out: Uint8Array; at: number } {
  const out = new Uint8Array(1 + varintLength(group + 1) + 1 + extra);
  out[0] = 0x00;
  let at = writeVarint(out, 1, group + 1);
  out[at++] = tag;
  return { out, at };
}

export function appliedKey(group: GroupId): Uint8Array {
  return groupPrefix(group, appliedTag, 0).out;
}

export function metaKey(group: GroupId, key: Uint8Array): Uint8Array {
  const { out, at } = groupPrefix(group, metaTag, key.length);
  out.set(key, at);
  return out;
}

export function metaPrefixLength(group: GroupId): number {
  return 1 + varintLength(group + 1) + 1;
}

/** Smallest byte string greater than every string starting with `b`; undefined if none (all 0xff). */
export function successor(b: Uint8Array): Uint8Array | undefined {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const out = copyRange(b, 0, end);
  out[end - 1] = (out[end - 1] as number) + 1;
  return out;
}

export function encodeRecord(seq: Seq, value: Uint8Array | undefined): Uint8Array {
  assert(seq.length === seqBytes && ((seq[0] as number) & tombstoneBit) === 0, 'bad seq');
  const out = new Uint8Array(seqBytes + (value?.length ?? 0));
  out.set(seq, 0);
  if (value === undefined) out[0] = (out[0] as number) | tombstoneBit;
  else out.set(value, seqBytes);
  return out;
}

const slabBytes = limits.engineReadSlabBytes;
const slabCopyBytesMax = limits.engineReadSlabCopyBytesMax;
let slab = new ArrayBuffer(slabBytes);
let slabAt = 0;

/**
 * A copy of `raw` as a plain Uint8Array carved from a shared slab (as Buffer's pool does, without a
 * Buffer object: a small ArrayBuffer of its own or a Buffer view costs several times more). Reads
 * `length`, not the whole view: LMDB's fast-read buffer is larger than the record it holds.
 */
function copyOut(raw: Uint8Array): Uint8Array {
  const n = raw.length;
  const src = new Uint8Array(raw.buffer, raw.byteOffset, n);
  if (n > slabCopyBytesMax) return src.slice();
  if (slabAt + n > slabBytes) {
    slab = new ArrayBuffer(slabBytes);
    slabAt = 0;
  }
  const out = new Uint8Array(slab, slabAt, n);
  out.set(src);
  slabAt += (n + 7) & ~7;
  return out;
}

function plainView(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * The record in `raw`. `owned`: raw is the caller's to keep and change (a fresh buffer from the
 * engine), so seq and value are views into it; otherwise (a buffer the engine reuses) into a copy.
 */
export function decodeRecord(raw: Uint8Array, owned = false): EngineRecord {
  check(raw.length >= seqBytes, 'record shorter than a seq');
  const tombstone = ((raw[0] as number) & tombstoneBit) !== 0;
  check(!tombstone || raw.length === seqBytes, 'tombstone with a value');
  // A plain Uint8Array either way (not a Buffer: results compare equal whatever the engine).
  const copy = !owned ? copyOut(raw) : raw.constructor === Uint8Array ? raw : plainView(raw);
  copy[0] = (copy[0] as number) & ~tombstoneBit;
  return { seq: copy.subarray(0, seqBytes) as Seq, tombstone, value: copy.subarray(seqBytes) };
}

/** Compares the seq stored in a raw record (flag masked) with `seq`. */
export function compareRecordSeq(raw: Uint8Array, seq: Uint8Array): number {
  for (let i = 0; i < seqBytes; i++) {
    const a = i === 0 ? (raw[0] as number) & ~tombstoneBit : (raw[i] as number);
    const b = seq[i] as number;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

export interface AppliedValue {
  readonly index: LogIndex;
  readonly seq: Seq;
  readonly installing: boolean;
}

/** Applied position: version u8 | index u64 BE | seq 16 | flags u8 (bit 0: installing). */
export function encodeApplied(v: AppliedValue): Uint8Array {
  const out = new Uint8Array(1 + 8 + seqBytes + 1);
  const view = new DataView(out.buffer);
  out[0] = formatVersion;
  view.setBigUint64(1, BigInt(v.index));
  out.set(v.seq, 9);
  out[9 + seqBytes] = v.installing ? 1 : 0;
  return out;
}

export function decodeApplied(raw: Uint8Array): AppliedValue {
  check(raw.length === 1 + 8 + seqBytes + 1 && raw[0] === formatVersion, 'bad applied position record');
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const index = logIndex(Number(view.getBigUint64(1)));
  return { index, seq: copyRange(raw, 9, 9 + seqBytes) as Seq, installing: raw[9 + seqBytes] === 1 };
}

/** Root record: version u8 | kind length u8 | kind (ascii). */
/** lmdb-js compares a condition's version with the value's first 8 bytes as a float64. */
export function encodeChain(n: number): Uint8Array {
  assert(Number.isSafeInteger(n) && n >= 0, 'bad commit chain value');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, n, true);
  return out;
}

export function decodeChain(raw: Uint8Array): number {
  check(raw.length === 8, 'commit chain record length');
  const n = new DataView(raw.buffer, raw.byteOffset, 8).getFloat64(0, true);
  check(Number.isSafeInteger(n) && n >= 0, 'commit chain record value');
  return n;
}

export function encodeRoot(kind: string): Uint8Array {
  const k = new TextEncoder().encode(kind);
  const out = new Uint8Array(2 + k.length);
  out[0] = formatVersion;
  out[1] = k.length;
  out.set(k, 2);
  return out;
}

export function decodeRoot(raw: Uint8Array): { version: number; kind: string } {
  check(raw.length >= 2, 'bad root record');
  return {
    version: raw[0] as number,
    kind: new TextDecoder().decode(raw.subarray(2, 2 + (raw[1] as number))),
  };
}

/** Checks a stored root record: this format version and this engine kind, or an operating error. */
export function checkRoot(raw: Uint8Array, kind: string): void {
  const r = decodeRoot(raw);
  check(r.version === formatVersion && r.kind === kind, `unexpected root record ${r.kind} v${r.version}`);
}

/** The smallest key after `k`. */
export function nextKey(k: Uint8Array): Uint8Array {
  const out = new Uint8Array(k.length + 1);
  out.set(k, 0);
  return out;
}

/** Encoded bounds of a scan: [gte, lt) over data keys; undefined if the range is empty. */
export function scanBounds(
  prefix: Uint8Array,
  o: { readonly start?: Uint8Array; readonly end?: Uint8Array; readonly prefix?: Uint8Array },
): { gte: Uint8Array; lt: Uint8Array | undefined; skip: number } | undefined {
  let lo = o.start ?? new Uint8Array(0);
  let hi = o.end;
  if (o.prefix !== undefined && o.prefix.length > 0) {
    if (Buffer.compare(lo, o.prefix) < 0) lo = o.prefix;
    const pEnd = successor(o.prefix);
    if (pEnd !== undefined && (hi === undefined || Buffer.compare(pEnd, hi) < 0)) hi = pEnd;
  }
  if (hi !== undefined && Buffer.compare(lo, hi) >= 0) return undefined;
  return {
    gte: dataKey(prefix, lo),
    lt: hi === undefined ? successor(prefix) : dataKey(prefix, hi),
    skip: prefix.length,
  };
}
