/**
 * Commands: the payload of a log entry that changes a group's data (format version 1).
 *
 *   version u8 (1) | op u8 | fields (big-endian)
 *   put         (1): keyspace u32 | seq 16 | key length u16 | key | value (rest)
 *   delete      (2): keyspace u32 | seq 16 | key length u16 | key
 *   createTable (3): seq 16 | engine u8 (1 btree, 2 lsm) | name length u8 | name (utf-8)
 *   dropTable   (4): seq 16 | keyspace u32 | engine u8 | name length u8 | name
 */
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { Seq } from '../lib/ids.js';
import type { PackedWrites } from '../engine/packed.js';
import type { EngineKind, KeyspaceId } from '../engine/types.js';

export const COMMAND_VERSION = 1;
const SEQ = 16;

export type Command =
  | { op: 'put'; keyspace: KeyspaceId; seq: Seq; key: Uint8Array; value: Uint8Array }
  | { op: 'delete'; keyspace: KeyspaceId; seq: Seq; key: Uint8Array }
  | { op: 'createTable'; seq: Seq; engine: EngineKind; name: string }
  | { op: 'dropTable'; seq: Seq; keyspace: KeyspaceId; engine: EngineKind; name: string };

const opCode = { put: 1, delete: 2, createTable: 3, dropTable: 4 } as const;
const engineCode = { btree: 1, lsm: 2 } as const;

function engineOf(code: number): EngineKind {
  if (code === 1) return 'btree';
  if (code === 2) return 'lsm';
  throw new TesseraError('CORRUPTION', `command: unknown engine ${code}`);
}

export function encodeCommand(c: Command): Buffer {
  switch (c.op) {
    case 'put':
    case 'delete': {
      const valueLen = c.op === 'put' ? c.value.length : 0;
      const b = Buffer.allocUnsafe(2 + 4 + SEQ + 2 + c.key.length + valueLen);
      b[0] = COMMAND_VERSION;
      b[1] = opCode[c.op];
      b.writeUInt32BE(c.keyspace, 2);
      b.set(c.seq, 6);
      b.writeUInt16BE(c.key.length, 22);
      b.set(c.key, 24);
      if (c.op === 'put') b.set(c.value, 24 + c.key.length);
      return b;
    }
    case 'createTable':
    case 'dropTable': {
      const name = Buffer.from(c.name, 'utf8');
      assert(name.length <= 255, 'table name too long');
      const ks = c.op === 'dropTable' ? 4 : 0;
      const b = Buffer.allocUnsafe(2 + SEQ + ks + 2 + name.length);
      b[0] = COMMAND_VERSION;
      b[1] = opCode[c.op];
      b.set(c.seq, 2);
      if (c.op === 'dropTable') b.writeUInt32BE(c.keyspace, 18);
      b[18 + ks] = engineCode[c.engine];
      b[19 + ks] = name.length;
      name.copy(b, 20 + ks);
      return b;
    }
  }
}

/** Decodes a command; CORRUPTION if it is malformed (the log's CRC passed, so this is a bug or a newer writer). */
function bad(what: string): TesseraError {
  return new TesseraError('CORRUPTION', `command: ${what}`);
}

export function decodeCommand(p: Buffer): Command {
  if (p.length < 2 || p[0] !== COMMAND_VERSION) throw bad(`version ${p[0]}`);
  const op = p[1];
  if (op === opCode.put || op === opCode.delete) {
    if (p.length < 24) throw bad('short');
    const keyspace = p.readUInt32BE(2) as KeyspaceId;
    const seq = p.subarray(6, 22) as Uint8Array as Seq;
    const keyLen = p.readUInt16BE(22);
    if (24 + keyLen > p.length) throw bad('key length');
    const key = p.subarray(24, 24 + keyLen);
    if (op === opCode.delete) return { op: 'delete', keyspace, seq, key };
    return { op: 'put', keyspace, seq, key, value: p.subarray(24 + keyLen) };
  }
  if (op === opCode.createTable || op === opCode.dropTable) {
    const ks = op === opCode.dropTable ? 4 : 0;
    if (p.length < 20 + ks) throw bad('short');
    const seq = p.subarray(2, 18) as Uint8Array as Seq;
    const engine = engineOf(p[18 + ks]!);
    const nameLen = p[19 + ks]!;
    if (20 + ks + nameLen !== p.length) throw bad('name length');
    const name = p.toString('utf8', 20 + ks, 20 + ks + nameLen);
    if (op === opCode.createTable) return { op: 'createTable', seq, engine, name };
    return { op: 'dropTable', seq, keyspace: p.readUInt32BE(18) as KeyspaceId, engine, name };
  }
  throw bad(`op ${op}`);
}

/** Whether a payload is a put command (cheap peek; decodePutWrite checks the rest). */
/** Whether the payload at buf[start, end) (a range of a log read, no view) is a put command. */
export function isPutAt(buf: Buffer, start: number, end: number): boolean {
  return end - start >= 24 && buf[start] === COMMAND_VERSION && buf[start + 1] === opCode.put;
}

/** The keyspace of the put or delete command at buf[start, ...). */
export function keyspaceAt(buf: Buffer, start: number): KeyspaceId {
  return buf.readUInt32BE(start + 2) as KeyspaceId;
}

/** Where the seq of the put or delete command at buf[start, ...) starts (16 bytes). */
export const seqOffset = (start: number): number => start + 6;

/** Packs the put command at buf[start, end) (isPutAt) into `packed`: no object per write. */
export function packPutAt(buf: Buffer, start: number, end: number, packed: PackedWrites): void {
  const keyLen = buf.readUInt16BE(start + 22);
  const keyEnd = start + 24 + keyLen;
  if (keyEnd > end) throw bad('key length');
  packed.put(keyspaceAt(buf, start), buf, start + 24, keyEnd, buf, start + 6, buf, keyEnd, end);
}
