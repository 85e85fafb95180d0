/**
 * On-disk format of the append-only log (format version 1).
 *
 * Segment file `<16 hex digits>.log` = segment header (16 bytes) + records.
 *   segment header: magic u32 'TSLG' | format version u32 | segment number u32 | crc32 of bytes 0..11
 * Record = header (32 bytes) + payload, all integers big-endian:
 *   0 crc u32      crc32 of bytes 4..length (header after the crc, then the payload)
 *   4 length u32   whole record length, header included
 *   8 type u8      RecordType
 *   9 version u8   record format version (1)
 *  10 reserved u16 (0)
 *  12 group u32
 *  16 term u64
 *  24 index u64
 *  32 payload
 */
import { assert } from '../lib/assert.js';
import { crc32 } from '../lib/bytes.js';
import { crc32Range } from '../lib/crc.js';

export const SEGMENT_MAGIC = 0x54534c47; // 'TSLG'
export const SEGMENT_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 32;
export const RECORD_VERSION = 1;

/** Record types: an extensible enum. New types take new numbers; numbers are never reused. */
export const RecordType = {
  /** A raft log entry (group, term, index); payload opaque. Writing index i discards the group's entries >= i. */
  Entry: 1,
  /** A group's hard state: term in the header, commit index in `index`, payload = vote u32. */
  HardState: 2,
  /** Snapshot installed at (term, index): all of the group's entries are discarded; payload opaque metadata. */
  Snapshot: 3,
  /** Written at the start of each segment for every group: its last index/term, hard state and snapshot. */
  GroupState: 4,
  /** The group is removed from this node: its state and entries are discarded. */
  GroupDrop: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];
const knownTypes = new Set<number>(Object.values(RecordType));

export function isKnownRecordType(t: number): t is RecordType {
  return knownTypes.has(t);
}

export interface RecordHeader {
  type: RecordType;
  group: number;
  term: number;
  index: number;
}

/** A safe non-negative integer as a big-endian u64 (two u32 halves, no BigInt). */
function writeU64(buf: Buffer, n: number, at: number): void {
  assert(Number.isSafeInteger(n) && n >= 0, `u64 field out of range: ${n}`);
  buf.writeUInt32BE(Math.floor(n / 0x1_0000_0000), at);
  buf.writeUInt32BE(n >>> 0, at + 4);
}

export function encodeRecord(h: RecordHeader, payload: Uint8Array): Buffer {
  const length = RECORD_HEADER_BYTES + payload.length;
  const buf = Buffer.allocUnsafe(length);
  buf.writeUInt32BE(length, 4);
  buf.writeUInt8(h.type, 8);
  buf.writeUInt8(RECORD_VERSION, 9);
  buf.writeUInt16BE(0, 10);
  buf.writeUInt32BE(h.group, 12);
  writeU64(buf, h.term, 16);
  writeU64(buf, h.index, 24);
  buf.set(payload, RECORD_HEADER_BYTES);
  buf.writeUInt32BE(crc32(buf.subarray(4)), 0);
  return buf;
}

const noPayload = Buffer.alloc(0);

export interface DecodedRecord extends RecordHeader {
  /** Offset of the record within the buffer that was decoded. */
  offset: number;
  length: number;
  /** The payload of a hard-state, snapshot or group-state record; empty for an Entry (read it with readEntries). */
  payload: Buffer;
}

/** Why a decode stopped: the bytes end inside the record (torn) or the record is invalid (corrupt). */
export type DecodeResult =
  | { ok: true; record: DecodedRecord }
  | { ok: false; reason: 'end' | 'torn' | 'corrupt' | 'unknown-type'; detail: string };

/** Decodes the record at `offset` of `buf` and checks its CRC and header. Never returns a bad record. */
export function decodeRecord(buf: Buffer, offset: number, recordBytesMax: number): DecodeResult {
  const left = buf.length - offset;
  if (left === 0) return { ok: false, reason: 'end', detail: 'end of segment' };
  if (left < RECORD_HEADER_BYTES) return { ok: false, reason: 'torn', detail: 'partial record header' };
  const length = buf.readUInt32BE(offset + 4);
  if (length < RECORD_HEADER_BYTES || length > recordBytesMax) {
    return { ok: false, reason: 'corrupt', detail: `bad record length ${length}` };
  }
  if (length > left) return { ok: false, reason: 'torn', detail: 'partial record' };
  if (!crcOk(buf, offset, length)) {
    return { ok: false, reason: 'corrupt', detail: 'record checksum mismatch' };
  }
  const type = buf.readUInt8(offset + 8);
  const version = buf.readUInt8(offset + 9);
  if (version !== RECORD_VERSION || buf.readUInt16BE(offset + 10) !== 0) {
    return { ok: false, reason: 'unknown-type', detail: `record version ${version} not supported` };
  }
  if (!isKnownRecordType(type)) return { ok: false, reason: 'unknown-type', detail: `record type ${type}` };
  // u64 as two u32 halves (no BigInt per field); a high half above 2^21 - 1 is not a safe integer.
  const term = u64At(buf, offset + 16);
  const index = u64At(buf, offset + 24);
  if (buf.readUInt32BE(offset + 16) > 0x1f_ffff || buf.readUInt32BE(offset + 24) > 0x1f_ffff) {
    return { ok: false, reason: 'corrupt', detail: 'term or index out of range' };
  }
  const group = buf.readUInt32BE(offset + 12);
  // Only the small record types' payloads are read back from a scan (entries: by readEntries).
  const payload =
    type === RecordType.Entry ? noPayload : buf.subarray(offset + RECORD_HEADER_BYTES, offset + length);
  return { ok: true, record: { type, group, term, index, offset, length, payload } };
}

/**
 * The length of the record at `offset` if it is an Entry of this format whose length fits the
 * bounds and the buffer (its CRC not checked yet), else -1. Shared by scanEntryAt and entryEndAt.
 */
function entryLengthAt(buf: Buffer, offset: number, recordBytesMax: number): number {
  if (buf.length - offset < RECORD_HEADER_BYTES) return -1;
  const length = buf.readUInt32BE(offset + 4);
  if (length < RECORD_HEADER_BYTES || length > recordBytesMax || length > buf.length - offset) return -1;
  if (buf[offset + 8] !== RecordType.Entry || buf[offset + 9] !== RECORD_VERSION) return -1;
  return buf.readUInt16BE(offset + 10) === 0 ? length : -1;
}

/** The record's CRC, summed over the range in place (no view object per record). */
function crcOk(buf: Buffer, offset: number, length: number): boolean {
  return crc32Range(buf, offset + 4, offset + length) === buf.readUInt32BE(offset);
}

/** A u64 header field (term at 16, index at 24) as two u32 halves (no BigInt per field). */
export function u64At(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

/**
 * Recovery's fast path: the length of the intact Entry record at `offset` (CRC, version, term and
 * index in range), or -1 for anything else, which decodeRecord then classifies (end, torn,
 * corrupt, another type). No object per record: a scan meets hundreds of thousands of entries.
 */
export function scanEntryAt(buf: Buffer, offset: number, recordBytesMax: number): number {
  const length = entryLengthAt(buf, offset, recordBytesMax);
  if (length < 0 || buf.readUInt32BE(offset + 16) > 0x1f_ffff || buf.readUInt32BE(offset + 24) > 0x1f_ffff)
    return -1;
  return crcOk(buf, offset, length) ? length : -1;
}

/**
 * Checks that the bytes at `offset` are an intact Entry record of (group, index, term) and returns
 * where it ends (its payload starts RECORD_HEADER_BYTES in), or -1. The read path's check of each
 * entry, without an object per record (decodeRecord is recovery's, which must say why it stopped).
 */
export function entryEndAt(
  buf: Buffer,
  offset: number,
  recordBytesMax: number,
  group: number,
  index: number,
  term: number,
): number {
  const length = entryLengthAt(buf, offset, recordBytesMax);
  if (
    length < 0 ||
    buf.readUInt32BE(offset + 12) !== group ||
    u64At(buf, offset + 16) !== term ||
    u64At(buf, offset + 24) !== index
  ) {
    return -1;
  }
  return crcOk(buf, offset, length) ? offset + length : -1;
}

export function encodeSegmentHeader(segment: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  b.writeUInt32BE(SEGMENT_MAGIC, 0);
  b.writeUInt32BE(SEGMENT_FORMAT_VERSION, 4);
  b.writeUInt32BE(segment, 8);
  b.writeUInt32BE(crc32(b.subarray(0, 12)), 12);
  return b;
}

/** 'ok', 'torn' (short, e.g. a crash during the roll), or 'corrupt'. */
export function checkSegmentHeader(b: Buffer, segment: number): 'ok' | 'torn' | 'corrupt' {
  if (b.length < SEGMENT_HEADER_BYTES) return 'torn';
  if (b.readUInt32BE(12) !== crc32(b.subarray(0, 12))) return 'corrupt';
  if (b.readUInt32BE(0) !== SEGMENT_MAGIC || b.readUInt32BE(8) !== segment) return 'corrupt';
  if (b.readUInt32BE(4) !== SEGMENT_FORMAT_VERSION) return 'corrupt';
  return 'ok';
}

export function segmentFileName(segment: number): string {
  assert(Number.isInteger(segment) && segment > 0 && segment <= 0xffff_ffff, 'bad segment number');
  return `${segment.toString(16).padStart(16, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | undefined {
  const m = /^([0-9a-f]{16})\.log$/.exec(name);
  return m ? Number.parseInt(m[1]!, 16) : undefined;
}

// Payloads of the small record types.

export interface HardState {
  term: number;
  /** Node voted for in `term`; 0 = none. */
  vote: number;
  commit: number;
}

export function encodeVote(vote: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(vote, 0);
  return b;
}

export interface SnapshotMark {
  index: number;
  term: number;
}

/** GroupState payload: flags u8 (1 = hard state, 2 = snapshot) | hard term u64 | vote u32 | commit u64 | snap index u64 | snap term u64 */
export const GROUP_STATE_PAYLOAD_BYTES = 1 + 8 + 4 + 8 + 8 + 8;

export function encodeGroupState(hard: HardState | undefined, snap: SnapshotMark | undefined): Buffer {
  const b = Buffer.alloc(GROUP_STATE_PAYLOAD_BYTES);
  b.writeUInt8((hard ? 1 : 0) | (snap ? 2 : 0), 0);
  if (hard) {
    b.writeBigUInt64BE(BigInt(hard.term), 1);
    b.writeUInt32BE(hard.vote, 9);
    b.writeBigUInt64BE(BigInt(hard.commit), 13);
  }
  if (snap) {
    b.writeBigUInt64BE(BigInt(snap.index), 21);
    b.writeBigUInt64BE(BigInt(snap.term), 29);
  }
  return b;
}

export function decodeGroupState(p: Buffer): { hard?: HardState; snap?: SnapshotMark } | undefined {
  if (p.length !== GROUP_STATE_PAYLOAD_BYTES) return undefined;
  const flags = p.readUInt8(0);
  const out: { hard?: HardState; snap?: SnapshotMark } = {};
  if (flags & 1) {
    out.hard = {
      term: Number(p.readBigUInt64BE(1)),
      vote: p.readUInt32BE(9),
      commit: Number(p.readBigUInt64BE(13)),
    };
  }
  if (flags & 2) out.snap = { index: Number(p.readBigUInt64BE(21)), term: Number(p.readBigUInt64BE(29)) };
  return out;
}
