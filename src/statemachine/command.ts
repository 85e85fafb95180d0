/**
 * Commands of the replicated key-value state machine and their binary codec (version 1). Pure.
 *
 *   version u8 (=1) | type u8 | client u64 | request number u64 | body
 *   put (1):       engine u8 | table u32 | keyspace u32 | condition | key len u16 | key | value len u32 | value
 *   delete (2):    engine u8 | table u32 | keyspace u32 | condition | key len u16 | key
 *   noop (3):      (nothing)
 *   dropTable (4): table u32 | n u16 | (engine u8 | keyspace u32) * n
 *   condition:     0 none | 1 ifMatch + seq 16 | 2 ifNoneMatch
 *   engine:        1 btree | 2 lsm
 * Client 0 means "no request id" (internal commands): never de-duplicated.
 */
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { Seq, TableId } from '../lib/ids.js';
import { tableId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { EngineKind, KeyspaceId } from '../engine/types.js';
import { keyspaceId, keyspaceIdMax } from '../engine/types.js';

export const commandVersion = 1;
const seqBytes = 16;

/** A request id: the client (random u64, 0 = none) and its request number (grows per client). */
export interface RequestId {
  readonly client: bigint;
  readonly number: number;
}

export const noRequest: RequestId = { client: 0n, number: 0 };

export type Condition =
  | { readonly type: 'none' }
  | { readonly type: 'ifMatch'; readonly seq: Seq }
  | { readonly type: 'ifNoneMatch' };

export const always: Condition = { type: 'none' };

export interface ShardRef {
  readonly engine: EngineKind;
  readonly keyspace: KeyspaceId;
}

export type Command =
  | {
      readonly type: 'put';
      readonly request: RequestId;
      readonly table: TableId;
      readonly engine: EngineKind;
      readonly keyspace: KeyspaceId;
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly condition: Condition;
    }
  | {
      readonly type: 'delete';
      readonly request: RequestId;
      readonly table: TableId;
      readonly engine: EngineKind;
      readonly keyspace: KeyspaceId;
      readonly key: Uint8Array;
      readonly condition: Condition;
    }
  | { readonly type: 'noop'; readonly request: RequestId }
  | {
      readonly type: 'dropTable';
      readonly request: RequestId;
      readonly table: TableId;
      /** The table's keyspaces in this group (the catalog knows them when the drop is proposed). */
      readonly shards: readonly ShardRef[];
    };

const typeCodes = { put: 1, delete: 2, noop: 3, dropTable: 4 } as const;
const engineCodes = { btree: 1, lsm: 2 } as const;
const u64Max = (1n << 64n) - 1n;

function checkRequest(r: RequestId): void {
  assert(r.client >= 0n && r.client <= u64Max, 'client id is a u64');
  assert(Number.isSafeInteger(r.number) && r.number >= 0, 'request number is a safe integer');
}

function conditionBytes(c: Condition): number {
  return c.type === 'ifMatch' ? 1 + seqBytes : 1;
}

function bodyBytes(c: Command): number {
  switch (c.type) {
    case 'put':
      return 9 + conditionBytes(c.condition) + 2 + c.key.length + 4 + c.value.length;
    case 'delete':
      return 9 + conditionBytes(c.condition) + 2 + c.key.length;
    case 'noop':
      return 0;
    case 'dropTable':
      return 6 + 5 * c.shards.length;
  }
}

export function encodeCommand(c: Command): Uint8Array {
  checkRequest(c.request);
  if (c.type === 'put' || c.type === 'delete') {
    assert(c.key.length >= 1 && c.key.length <= limits.keyBytesMax, 'command key length');
  }
  if (c.type === 'put') assert(c.value.length <= limits.valueBytesMax, 'command value length');
  if (c.type === 'dropTable') assert(c.shards.length <= 0xffff, 'too many shards');
  const out = new Uint8Array(18 + bodyBytes(c));
  const view = new DataView(out.buffer);
  out[0] = commandVersion;
  out[1] = typeCodes[c.type];
  view.setBigUint64(2, c.request.client);
  view.setBigUint64(10, BigInt(c.request.number));
  let at = 18;
  if (c.type === 'put' || c.type === 'delete') {
    out[at] = engineCodes[c.engine];
    view.setUint32(at + 1, c.table);
    view.setUint32(at + 5, c.keyspace);
    at += 9;
    out[at++] = c.condition.type === 'none' ? 0 : c.condition.type === 'ifMatch' ? 1 : 2;
    if (c.condition.type === 'ifMatch') {
      assert(c.condition.seq.length === seqBytes, 'ifMatch seq');
      out.set(c.condition.seq, at);
      at += seqBytes;
    }
    view.setUint16(at, c.key.length);
    out.set(c.key, at + 2);
    at += 2 + c.key.length;
    if (c.type === 'put') {
      view.setUint32(at, c.value.length);
      out.set(c.value, at + 4);
      at += 4 + c.value.length;
    }
  } else if (c.type === 'dropTable') {
    view.setUint32(at, c.table);
    view.setUint16(at + 4, c.shards.length);
    at += 6;
    for (const s of c.shards) {
      out[at] = engineCodes[s.engine];
      view.setUint32(at + 1, s.keyspace);
      at += 5;
    }
  }
  assert(at === out.length, 'command length');
  return out;
}

function bad(what: string): never {
  throw new TesseraError('CORRUPTION', `command: ${what}`);
}

/** A bounds-checked reader over one command. */
class Reader {
  private at = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): number {
    if (this.at + n > this.buf.length) bad('truncated');
    const at = this.at;
    this.at += n;
    return at;
  }
  u8 = (): number => this.view.getUint8(this.need(1));
  u16 = (): number => this.view.getUint16(this.need(2));
  u32 = (): number => this.view.getUint32(this.need(4));
  u64 = (): bigint => this.view.getBigUint64(this.need(8));
  bytes = (n: number): Uint8Array => {
    const at = this.need(n);
    return this.buf.slice(at, at + n);
  };
  end(): void {
    if (this.at !== this.buf.length) bad('trailing bytes');
  }
}

function readKeyspace(r: Reader): KeyspaceId {
  const n = r.u32();
  if (n > keyspaceIdMax) bad(`keyspace ${n}`);
  return keyspaceId(n);
}

function engineOf(code: number): EngineKind {
  if (code === 1) return 'btree';
  if (code === 2) return 'lsm';
  return bad(`unknown engine ${code}`);
}

function readCondition(r: Reader): Condition {
  const c = r.u8();
  if (c === 0) return always;
  if (c === 1) return { type: 'ifMatch', seq: r.bytes(seqBytes) as Seq };
  if (c === 2) return { type: 'ifNoneMatch' };
  return bad(`unknown condition ${c}`);
}

export function decodeCommand(data: Uint8Array): Command {
  const r = new Reader(data);
  const version = r.u8();
  if (version !== commandVersion) bad(`unsupported version ${version}`);
  const type = r.u8();
  const client = r.u64();
  const number = r.u64();
  if (number > BigInt(Number.MAX_SAFE_INTEGER)) bad('request number');
  const request = { client, number: Number(number) };
  let c: Command;
  if (type === typeCodes.put || type === typeCodes.delete) {
    const engine = engineOf(r.u8());
    const table = tableId(r.u32());
    const keyspace = readKeyspace(r);
    const condition = readCondition(r);
    const key = r.bytes(r.u16());
    if (key.length === 0 || key.length > limits.keyBytesMax) bad('key length');
    if (type === typeCodes.put) {
      const value = r.bytes(r.u32());
      c = { type: 'put', request, table, engine, keyspace, key, value, condition };
    } else {
      c = { type: 'delete', request, table, engine, keyspace, key, condition };
    }
  } else if (type === typeCodes.noop) {
    c = { type: 'noop', request };
  } else if (type === typeCodes.dropTable) {
    const table = tableId(r.u32());
    const n = r.u16();
    const shards: ShardRef[] = [];
    for (let i = 0; i < n; i++) shards.push({ engine: engineOf(r.u8()), keyspace: readKeyspace(r) });
    c = { type: 'dropTable', request, table, shards };
  } else {
    return bad(`unknown type ${type}`);
  }
  r.end();
  return c;
}
