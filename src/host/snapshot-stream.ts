/**
 * Snapshot streaming frames (kind HOST_SNAPSHOT_KIND), payload version 1:
 * `u8 version=1 | u8 type (1 chunk, 2 done) | u32 group | u64 index | u32 number | bytes`,
 * bytes = the chunk data, or for 'done' the encoded consensus snapshot message.
 */
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex } from '../lib/ids.js';

export const SNAPSHOT_FRAME_VERSION = 1;
const HEADER_BYTES = 1 + 1 + 4 + 8 + 4;
const TWO32 = 0x1_0000_0000;

export interface SnapshotFrame {
  readonly type: 'chunk' | 'done';
  readonly group: GroupId;
  readonly index: LogIndex;
  readonly number: number;
  readonly bytes: Uint8Array;
}

export function encodeSnapshotFrame(f: SnapshotFrame): Uint8Array {
  const buf = new Uint8Array(HEADER_BYTES + f.bytes.length);
  const v = new DataView(buf.buffer);
  v.setUint8(0, SNAPSHOT_FRAME_VERSION);
  v.setUint8(1, f.type === 'chunk' ? 1 : 2);
  v.setUint32(2, f.group);
  v.setUint32(6, Math.floor(f.index / TWO32));
  v.setUint32(10, f.index >>> 0);
  v.setUint32(14, f.number);
  buf.set(f.bytes, HEADER_BYTES);
  return buf;
}

export function decodeSnapshotFrame(buf: Uint8Array): SnapshotFrame {
  const bad = (why: string) => new TesseraError('BAD_REQUEST', `bad snapshot frame: ${why}`);
  if (buf.length < HEADER_BYTES) throw bad('short');
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint8(0) !== SNAPSHOT_FRAME_VERSION) throw bad('unknown version');
  const t = v.getUint8(1);
  if (t !== 1 && t !== 2) throw bad('unknown type');
  const index = v.getUint32(6) * TWO32 + v.getUint32(10);
  if (!Number.isSafeInteger(index)) throw bad('index out of range');
  return {
    type: t === 1 ? 'chunk' : 'done',
    group: v.getUint32(2) as GroupId,
    index: index as LogIndex,
    number: v.getUint32(14),
    bytes: buf.subarray(HEADER_BYTES),
  };
}

/** An async iterable over buffered chunks (the install side). */
export async function* iterateChunks(chunks: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const c of chunks) yield c;
}
