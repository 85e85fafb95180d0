/**
 * Snapshot stream format, version 1 (engine-neutral: a btree snapshot installs into an lsm instance).
 * Every chunk: "TS" | version u8 | type u8 | chunk number u32 | payload | crc32 u32 (of all before).
 *   type 1 header:  group u32 | index u64 | seq 16 | flags u8 (bit 0: meta) | n u32 | keyspace u32 * n
 *   type 2 records: count u32 | record * count
 *       data record: 1 u8 | keyspace u32 | key length u16 | key | raw seq 16 (top bit: tombstone)
 *                    | value length u32 | value
 *       meta record: 2 u8 | key length u16 | key | value length u32 | value
 *   type 3 trailer: total records u64
 * Chunk numbers run 0, 1, 2, ...; a reader refuses gaps, a bad crc, a missing trailer (CORRUPTION).
 */
import { crc32 } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { groupId, logIndex } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { keyspaceId, type KeyspaceId } from './types.js';
import { copyRange, seqBytes } from './keys.js';

export const snapshotVersion = 1;
const typeHeader = 1;
const typeRecords = 2;
const typeTrailer = 3;
const chunkOverheadBytes = 2 + 1 + 1 + 4 + 4;

export interface SnapshotHeader {
  readonly group: GroupId;
  readonly index: LogIndex;
  readonly seq: Seq;
  readonly meta: boolean;
  readonly keyspaces: readonly KeyspaceId[];
}

export type SnapshotRecord =
  | {
      readonly type: 'data';
      readonly keyspace: KeyspaceId;
      readonly key: Uint8Array;
      readonly raw: Uint8Array;
    }
  | { readonly type: 'meta'; readonly key: Uint8Array; readonly value: Uint8Array };

function frame(type: number, chunkNo: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(chunkOverheadBytes + payload.length);
  const view = new DataView(out.buffer);
  out[0] = 0x54; // T
  out[1] = 0x53; // S
  out[2] = snapshotVersion;
  out[3] = type;
  view.setUint32(4, chunkNo);
  out.set(payload, 8);
  view.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)));
  return out;
}

/** Builds the chunks of a snapshot, in order. */
export class SnapshotWriter {
  private chunkNo = 0;
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  private count = 0;
  private total = 0;

  header(h: SnapshotHeader): Uint8Array {
    const payload = new Uint8Array(4 + 8 + seqBytes + 1 + 4 + 4 * h.keyspaces.length);
    const view = new DataView(payload.buffer);
    view.setUint32(0, h.group);
    view.setBigUint64(4, BigInt(h.index));
    payload.set(h.seq, 12);
    payload[12 + seqBytes] = h.meta ? 1 : 0;
    view.setUint32(13 + seqBytes, h.keyspaces.length);
    h.keyspaces.forEach((ks, i) => {
      view.setUint32(17 + seqBytes + 4 * i, ks);
    });
    return frame(typeHeader, this.chunkNo++, payload);
  }

  /** Adds a record; returns a chunk when enough bytes are gathered. */
  add(r: SnapshotRecord): Uint8Array | undefined {
    const body =
      r.type === 'data'
        ? new Uint8Array(1 + 4 + 2 + r.key.length + seqBytes + 4 + (r.raw.length - seqBytes))
        : new Uint8Array(1 + 2 + r.key.length + 4 + r.value.length);
    const view = new DataView(body.buffer);
    let at = 0;
    body[at++] = r.type === 'data' ? 1 : 2;
    if (r.type === 'data') {
      view.setUint32(at, r.keyspace);
      at += 4;
    }
    view.setUint16(at, r.key.length);
    body.set(r.key, at + 2);
    at += 2 + r.key.length;
    if (r.type === 'data') {
      body.set(r.raw.subarray(0, seqBytes), at);
      view.setUint32(at + seqBytes, r.raw.length - seqBytes);
      body.set(r.raw.subarray(seqBytes), at + seqBytes + 4);
    } else {
      view.setUint32(at, r.value.length);
      body.set(r.value, at + 4);
    }
    this.parts.push(body);
    this.partBytes += body.length;
    this.count++;
    this.total++;
    return this.partBytes >= limits.snapshotChunkBytes ? this.flush() : undefined;
  }

  /** The pending records as a chunk, if any. */
  flush(): Uint8Array | undefined {
    if (this.count === 0) return undefined;
    const payload = new Uint8Array(4 + this.partBytes);
    new DataView(payload.buffer).setUint32(0, this.count);
    let at = 4;
    for (const p of this.parts) {
      payload.set(p, at);
      at += p.length;
    }
    this.parts = [];
    this.partBytes = 0;
    this.count = 0;
    return frame(typeRecords, this.chunkNo++, payload);
  }

  trailer(): Uint8Array {
    const payload = new Uint8Array(8);
    new DataView(payload.buffer).setBigUint64(0, BigInt(this.total));
    return frame(typeTrailer, this.chunkNo++, payload);
  }
}

function bad(what: string): never {
  throw new TesseraError('CORRUPTION', `snapshot stream: ${what}`);
}

export type ParsedChunk =
  | { readonly type: 'header'; readonly header: SnapshotHeader }
  | { readonly type: 'records'; readonly records: SnapshotRecord[] }
  | { readonly type: 'trailer'; readonly total: number };

/** Validates and parses chunks in order. */
export class SnapshotReader {
  private chunkNo = 0;
  private total = 0;
  private done = false;

  parse(chunk: Uint8Array): ParsedChunk {
    if (this.done) bad('chunk after the trailer');
    if (chunk.length < chunkOverheadBytes) bad('chunk too short');
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (chunk[0] !== 0x54 || chunk[1] !== 0x53) bad('bad magic');
    if (chunk[2] !== snapshotVersion) bad(`unsupported version ${chunk[2]}`);
    if (view.getUint32(chunk.length - 4) !== crc32(chunk.subarray(0, chunk.length - 4))) bad('bad checksum');
    if (view.getUint32(4) !== this.chunkNo) bad(`chunk ${view.getUint32(4)} where ${this.chunkNo} was due`);
    const type = chunk[3];
    if ((type === typeHeader) !== (this.chunkNo === 0)) bad('the header must come first, and once');
    this.chunkNo++;
    const payload = chunk.subarray(8, chunk.length - 4);
    if (type === typeHeader) return { type: 'header', header: parseHeader(payload) };
    if (type === typeRecords) {
      const records = parseRecords(payload);
      this.total += records.length;
      return { type: 'records', records };
    }
    if (type === typeTrailer) {
      if (payload.length !== 8) bad('bad trailer');
      const total = Number(new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0));
      if (total !== this.total) bad(`trailer counts ${total} records, stream had ${this.total}`);
      this.done = true;
      return { type: 'trailer', total };
    }
    return bad(`unknown chunk type ${type}`);
  }

  get complete(): boolean {
    return this.done;
  }
}

function parseHeader(p: Uint8Array): SnapshotHeader {
  if (p.length < 17 + seqBytes) bad('header too short');
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const n = view.getUint32(13 + seqBytes);
  if (p.length !== 17 + seqBytes + 4 * n) bad('header length');
  const keyspaces: KeyspaceId[] = [];
  for (let i = 0; i < n; i++) keyspaces.push(keyspaceId(view.getUint32(17 + seqBytes + 4 * i)));
  return {
    group: groupId(view.getUint32(0)),
    index: logIndex(Number(view.getBigUint64(4))),
    seq: copyRange(p, 12, 12 + seqBytes) as Seq,
    meta: p[12 + seqBytes] === 1,
    keyspaces,
  };
}

function parseRecords(p: Uint8Array): SnapshotRecord[] {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const need = (at: number, n: number): void => {
    if (at + n > p.length) bad('record runs past its chunk');
  };
  need(0, 4);
  const count = view.getUint32(0);
  const out: SnapshotRecord[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    need(at, 1);
    const tag = p[at++];
    let keyspace = 0;
    if (tag === 1) {
      need(at, 4);
      keyspace = view.getUint32(at);
      at += 4;
    } else if (tag !== 2) bad(`unknown record tag ${tag}`);
    need(at, 2);
    const keyLen = view.getUint16(at);
    need(at + 2, keyLen);
    const key = copyRange(p, at + 2, at + 2 + keyLen);
    at += 2 + keyLen;
    const seqLen = tag === 1 ? seqBytes : 0;
    need(at, seqLen + 4);
    const valueLen = view.getUint32(at + seqLen);
    need(at + seqLen + 4, valueLen);
    if (tag === 1) {
      const raw = new Uint8Array(seqBytes + valueLen);
      raw.set(p.subarray(at, at + seqBytes), 0);
      raw.set(p.subarray(at + seqBytes + 4, at + seqBytes + 4 + valueLen), seqBytes);
      out.push({ type: 'data', keyspace: keyspaceId(keyspace), key, raw });
    } else {
      out.push({ type: 'meta', key, value: copyRange(p, at + 4, at + 4 + valueLen) });
    }
    at += seqLen + 4 + valueLen;
  }
  if (at !== p.length) bad('trailing bytes in a records chunk');
  return out;
}
