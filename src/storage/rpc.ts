/**
 * The storage node's RPC contract (docs/storage.md), version 1. Requests and responses travel as
 * transport requests (src/transport) of the kinds below; payloads are msgpack ARRAYS (positional,
 * no field names) whose first element is the payload version (1). Operating errors are not
 * payloads: the handler throws a TesseraError and the transport delivers {code, message, detail}
 * as an error-response (NOT_LEADER detail: {leader, address?, term}; CONDITION_FAILED detail:
 * {currentSeq?: 32 hex}; STALE_SHARD detail: {epoch?: the shard's current epoch}).
 *
 * Callers: kv.* from request managers (role 'request' only); ctl.* from metadata nodes (role
 * 'metadata' only). Anything else is refused with BAD_REQUEST_MANAGER / FORBIDDEN.
 */
import { Packr } from 'msgpackr';
import type { Membership, MembershipChange } from '../consensus/types.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Seq, ShardId, TableId, Term } from '../lib/ids.js';
import { groupId, logIndex, nodeId, shardId, tableId, term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';

export const storageRpcVersion = 1;

/** Transport kinds (u16) of the storage node. 0x0100..0x01ff belong to the host. */
export const StorageKind = {
  kvPut: 0x0200,
  kvGet: 0x0201,
  kvDelete: 0x0202,
  kvScan: 0x0203,
  ctlCampaign: 0x0210,
  ctlMembership: 0x0211,
  ctlTransfer: 0x0212,
  ctlCheck: 0x0213,
  ctlPropose: 0x0214,
  ctlHostGroup: 0x0215,
  ctlDropGroup: 0x0216,
  ctlStatus: 0x0217,
} as const;
export type StorageKindName = keyof typeof StorageKind;

export type EngineName = 'btree' | 'lsm';

// ---------------------------------------------------------------------------------------------
// kv.*

/** The shard a data request targets, as the request manager's catalog sees it. */
export interface ShardTarget {
  readonly group: GroupId;
  readonly shard: ShardId;
  /** The shard's epoch in the caller's catalog; must equal the group's current one (else STALE_SHARD). */
  readonly epoch: number;
  /** The caller's catalog version; below the one that assigned the shard: BAD_REQUEST_MANAGER. */
  readonly catalogVersion: number;
  /** Time budget left, in ms (the node gives up with TIMEOUT after it; reads only, writes keep going). */
  readonly deadlineMs: number;
}

/** client: a random non-zero u64 per request manager; number: grows per client. */
export interface RpcRequestId {
  readonly client: bigint;
  readonly number: number;
}

export type RpcCondition =
  | { readonly type: 'none' }
  | { readonly type: 'ifMatch'; readonly seq: Seq }
  | { readonly type: 'ifNoneMatch' };

export interface KvPutRequest extends ShardTarget {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly condition: RpcCondition;
  readonly request: RpcRequestId;
}
export interface KvDeleteRequest extends ShardTarget {
  readonly key: Uint8Array;
  readonly condition: RpcCondition;
  readonly request: RpcRequestId;
}
export interface KvGetRequest extends ShardTarget {
  readonly key: Uint8Array;
}
export interface KvScanRequest extends ShardTarget {
  /** Inclusive; clamped to the shard's range. */
  readonly start: Uint8Array;
  /** Exclusive; null = the shard's end. Clamped to the shard's range. */
  readonly end: Uint8Array | null;
  /** 1..limits.scanLimitMax items. */
  readonly limit: number;
  /** Stop after about this many key+value bytes (at least one item). */
  readonly bytesMax: number;
}

/** kv.put / kv.delete answer: the seq of the write (the tombstone's for a delete). */
export interface KvWriteResult {
  readonly seq: Seq;
}
/** kv.get answer: null value and seq when the key is absent (or a tombstone). */
export interface KvGetResult {
  readonly value: Uint8Array | null;
  readonly seq: Seq | null;
}
export interface KvScanItem {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly seq: Seq;
}
/** next: the key to continue from (inside this shard), or null when the shard's part of the range is done. */
export interface KvScanResult {
  readonly items: KvScanItem[];
  readonly next: Uint8Array | null;
}

// ---------------------------------------------------------------------------------------------
// ctl.* (metadata manager -> storage node)

/** Catalog entries the MM commits through a group's log (ctl.propose). */
export type CatalogEntry =
  | {
      readonly type: 'assignShard';
      readonly shard: ShardId;
      readonly table: TableId;
      readonly engine: EngineName;
      /** Inclusive; empty = unbounded. */
      readonly start: Uint8Array;
      /** Exclusive; empty = unbounded. */
      readonly end: Uint8Array;
      readonly epoch: number;
      /** The catalog version of this assignment (requests from an older view: BAD_REQUEST_MANAGER). */
      readonly catalogVersion: number;
    }
  | { readonly type: 'dropTable'; readonly table: TableId };

export interface CtlCampaign {
  readonly group: GroupId;
  readonly minTerm: Term;
}
export interface CtlMembership {
  readonly group: GroupId;
  readonly change: MembershipChange;
}
export interface CtlTransfer {
  readonly group: GroupId;
  readonly to: NodeId;
}
export interface CtlCheck {
  readonly group: GroupId;
}
/** Deep check answer: a no-op committed through the group at `index`, and the disk probe. */
export interface CtlCheckResult {
  readonly index: LogIndex;
  readonly diskOk: boolean;
  readonly elapsedMs: number;
}
export interface CtlPropose {
  readonly group: GroupId;
  readonly entry: CatalogEntry;
}
export interface CtlProposeResult {
  readonly index: LogIndex;
}
export type ElectionModeName = 'directed' | 'self';
export interface MemberAddress {
  readonly node: NodeId;
  /** "host:port" of the member's storage listener. */
  readonly address: string;
}
export interface CtlHostGroup {
  readonly group: GroupId;
  readonly membership: Membership;
  readonly addresses: readonly MemberAddress[];
  readonly mode: ElectionModeName;
}
export interface CtlDropGroup {
  readonly group: GroupId;
}
/** Per hosted replica (also the heartbeat's per-replica part). */
export interface ReplicaReport {
  readonly group: GroupId;
  readonly term: Term;
  readonly role: 'follower' | 'precandidate' | 'candidate' | 'leader';
  readonly leader: NodeId;
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
}
export interface CtlStatusResult {
  readonly node: NodeId;
  readonly diskOk: boolean;
  readonly replicas: ReplicaReport[];
}

// ---------------------------------------------------------------------------------------------
// codec

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: false });

/** msgpack of `[version, ...fields]`, copied out of msgpackr's shared buffer. */
export function packPayload(fields: readonly unknown[]): Uint8Array {
  return new Uint8Array(packr.pack([storageRpcVersion, ...fields]));
}

function bad(what: string): never {
  throw new TesseraError('BAD_REQUEST', `storage rpc: ${what}`);
}

/** Unpacks a payload into its fields (version checked). */
export function unpackPayload(payload: Uint8Array, fieldsMin: number): unknown[] {
  return unpackFields(payload, fieldsMin).slice(1);
}

/** unpackPayload without the copy: the fields start at index 1 (index 0 is the checked version). */
function unpackFields(payload: Uint8Array, fieldsMin: number): unknown[] {
  let v: unknown;
  try {
    v = packr.unpack(payload);
  } catch {
    return bad('malformed payload');
  }
  if (!Array.isArray(v) || v.length < 1 + fieldsMin) return bad('payload is not a field array');
  if (v[0] !== storageRpcVersion) return bad(`unsupported version ${String(v[0])}`);
  return v;
}

/** Field readers: check the type and range, throw BAD_REQUEST otherwise. */
export const read = {
  uint(x: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x > max)
      return bad(`${what}: not an integer`);
    return x;
  },
  bytes(x: unknown, what: string, maxLength: number, minLength = 0): Uint8Array {
    if (!(x instanceof Uint8Array)) return bad(`${what}: not bytes`);
    if (x.length < minLength || x.length > maxLength) return bad(`${what}: length ${x.length}`);
    return x;
  },
  seq(x: unknown, what: string): Seq {
    return read.bytes(x, what, 16, 16) as Seq;
  },
  str(x: unknown, what: string, maxLength: number): string {
    if (typeof x !== 'string' || x.length > maxLength) return bad(`${what}: not a string`);
    return x;
  },
  array(x: unknown, what: string, maxLength: number): unknown[] {
    if (!Array.isArray(x) || x.length > maxLength) return bad(`${what}: not an array`);
    return x;
  },
  group: (x: unknown): GroupId => groupId(read.uint(x, 'group', 0xffff_ffff)),
  node: (x: unknown): NodeId => nodeId(read.uint(x, 'node', 0xffff_ffff)),
};

const targetFields = (t: ShardTarget): unknown[] => [
  t.group,
  t.shard,
  t.epoch,
  t.catalogVersion,
  t.deadlineMs,
];

/** The target's fields from f[at]. */
function readTarget(f: unknown[], at = 0): ShardTarget {
  return {
    group: read.group(f[at]),
    shard: shardId(read.uint(f[at + 1], 'shard', 0xffff_ffff)),
    epoch: read.uint(f[at + 2], 'epoch'),
    catalogVersion: read.uint(f[at + 3], 'catalogVersion'),
    deadlineMs: read.uint(f[at + 4], 'deadlineMs'),
  };
}

/**
 * A payload's field array up to the target, for the hot encoders to push the rest onto (push,
 * not a spread: spreading an iterable goes through the iterator protocol per element).
 */
const targetHead = (t: ShardTarget): unknown[] => [
  storageRpcVersion,
  t.group,
  t.shard,
  t.epoch,
  t.catalogVersion,
  t.deadlineMs,
];

const conditionFields = (c: RpcCondition): unknown =>
  c.type === 'none' ? 0 : c.type === 'ifNoneMatch' ? 1 : c.seq;

function readCondition(x: unknown): RpcCondition {
  if (x === 0) return { type: 'none' };
  if (x === 1) return { type: 'ifNoneMatch' };
  return { type: 'ifMatch', seq: read.seq(x, 'ifMatch') };
}

function readRequestId(client: unknown, number: unknown): RpcRequestId {
  if (typeof client !== 'bigint' || client <= 0n || client >= 1n << 64n) return bad('request client id');
  return { client, number: read.uint(number, 'request number') };
}

const key = (x: unknown): Uint8Array => read.bytes(x, 'key', limits.keyBytesMax, 1);

export const encodeKvPut = (r: KvPutRequest): Uint8Array =>
  encodeKvPutAt(r, r.key, r.value, r.condition, r.request);
/** encodeKvPut without building a request object (the request manager's hot path). */
export function encodeKvPutAt(
  t: ShardTarget,
  k: Uint8Array,
  value: Uint8Array,
  c: RpcCondition,
  request: RpcRequestId,
): Uint8Array {
  const f = targetHead(t);
  f.push(k, value, conditionFields(c), request.client, request.number);
  return new Uint8Array(packr.pack(f));
}
export function decodeKvPut(p: Uint8Array): KvPutRequest {
  const f = unpackFields(p, 10); // f[0] is the version
  return {
    ...readTarget(f, 1),
    key: key(f[6]),
    value: read.bytes(f[7], 'value', limits.valueBytesMax),
    condition: readCondition(f[8]),
    request: readRequestId(f[9], f[10]),
  };
}

export const encodeKvDelete = (r: KvDeleteRequest): Uint8Array =>
  encodeKvDeleteAt(r, r.key, r.condition, r.request);
/** encodeKvDelete without building a request object (see encodeKvPutAt). */
export function encodeKvDeleteAt(
  t: ShardTarget,
  k: Uint8Array,
  c: RpcCondition,
  request: RpcRequestId,
): Uint8Array {
  const f = targetHead(t);
  f.push(k, conditionFields(c), request.client, request.number);
  return new Uint8Array(packr.pack(f));
}
export function decodeKvDelete(p: Uint8Array): KvDeleteRequest {
  const f = unpackFields(p, 9);
  return {
    ...readTarget(f, 1),
    key: key(f[6]),
    condition: readCondition(f[7]),
    request: readRequestId(f[8], f[9]),
  };
}

export const encodeKvGet = (r: KvGetRequest): Uint8Array => encodeKvGetAt(r, r.key);
/** encodeKvGet without building a request object (the request manager's hot path). */
export function encodeKvGetAt(t: ShardTarget, k: Uint8Array): Uint8Array {
  const f = targetHead(t);
  f.push(k);
  return new Uint8Array(packr.pack(f));
}
export function decodeKvGet(p: Uint8Array): KvGetRequest {
  const f = unpackFields(p, 6);
  return { ...readTarget(f, 1), key: key(f[6]) };
}

export const encodeKvScan = (r: KvScanRequest): Uint8Array =>
  packPayload([...targetFields(r), r.start, r.end, r.limit, r.bytesMax]);
export function decodeKvScan(p: Uint8Array): KvScanRequest {
  const f = unpackPayload(p, 9);
  return {
    ...readTarget(f),
    start: read.bytes(f[5], 'start', limits.keyBytesMax),
    end: f[6] === null ? null : read.bytes(f[6], 'end', limits.keyBytesMax),
    limit: read.uint(f[7], 'limit', limits.scanLimitMax) || bad('limit 0'),
    bytesMax: read.uint(f[8], 'bytesMax', limits.scanBytesMax) || bad('bytesMax 0'),
  };
}

export const encodeKvWriteResult = (r: KvWriteResult): Uint8Array => packPayload([r.seq]);
export const decodeKvWriteResult = (p: Uint8Array): KvWriteResult => ({
  seq: read.seq(unpackPayload(p, 1)[0], 'seq'),
});

export const encodeKvGetResult = (r: KvGetResult): Uint8Array => packPayload([r.value, r.seq]);
export function decodeKvGetResult(p: Uint8Array): KvGetResult {
  const f = unpackFields(p, 2);
  if (f[1] === null) return { value: null, seq: null };
  return { value: read.bytes(f[1], 'value', limits.valueBytesMax), seq: read.seq(f[2], 'seq') };
}

export const encodeKvScanResult = (r: KvScanResult): Uint8Array =>
  packPayload([r.items.flatMap((i) => [i.key, i.value, i.seq]), r.next]);
export function decodeKvScanResult(p: Uint8Array): KvScanResult {
  const f = unpackPayload(p, 2);
  const flat = read.array(f[0], 'items', 3 * limits.scanLimitMax);
  if (flat.length % 3 !== 0) return bad('items');
  const items: KvScanItem[] = [];
  for (let i = 0; i < flat.length; i += 3) {
    items.push({
      key: key(flat[i]),
      value: read.bytes(flat[i + 1], 'value', limits.valueBytesMax),
      seq: read.seq(flat[i + 2], 'seq'),
    });
  }
  return { items, next: f[1] === null ? null : key(f[1]) };
}

// ---- catalog entries (also the format of these entries in the group's log, see kv-sm.ts)

const engineCode = (e: EngineName): number => (e === 'btree' ? 1 : 2);
function readEngine(x: unknown): EngineName {
  if (x === 1) return 'btree';
  if (x === 2) return 'lsm';
  return bad('engine');
}

export function catalogEntryFields(e: CatalogEntry): unknown[] {
  if (e.type === 'dropTable') return [2, e.table];
  return [1, e.shard, e.table, engineCode(e.engine), e.start, e.end, e.epoch, e.catalogVersion];
}

export function readCatalogEntry(f: unknown[]): CatalogEntry {
  const type = f[0];
  if (type === 2) return { type: 'dropTable', table: tableId(read.uint(f[1], 'table', 0xffff_ffff)) };
  if (type !== 1) return bad(`catalog entry type ${String(type)}`);
  return {
    type: 'assignShard',
    shard: shardId(read.uint(f[1], 'shard', 0xffff_fffe)),
    table: tableId(read.uint(f[2], 'table', 0xffff_ffff)),
    engine: readEngine(f[3]),
    start: read.bytes(f[4], 'start', limits.keyBytesMax),
    end: read.bytes(f[5], 'end', limits.keyBytesMax),
    epoch: read.uint(f[6], 'epoch'),
    catalogVersion: read.uint(f[7], 'catalogVersion'),
  };
}

// ---- ctl.*

export const encodeCtlCampaign = (r: CtlCampaign): Uint8Array => packPayload([r.group, r.minTerm]);
export function decodeCtlCampaign(p: Uint8Array): CtlCampaign {
  const f = unpackPayload(p, 2);
  return { group: read.group(f[0]), minTerm: term(read.uint(f[1], 'minTerm')) };
}

const changeCodes = { 'add-learner': 1, promote: 2, remove: 3 } as const;
export const encodeCtlMembership = (r: CtlMembership): Uint8Array =>
  packPayload([r.group, changeCodes[r.change.type], r.change.node]);
export function decodeCtlMembership(p: Uint8Array): CtlMembership {
  const f = unpackPayload(p, 3);
  const type = (['add-learner', 'promote', 'remove'] as const)[read.uint(f[1], 'change', 3) - 1];
  if (type === undefined) return bad('membership change type');
  return { group: read.group(f[0]), change: { type, node: read.node(f[2]) } };
}

export const encodeCtlTransfer = (r: CtlTransfer): Uint8Array => packPayload([r.group, r.to]);
export function decodeCtlTransfer(p: Uint8Array): CtlTransfer {
  const f = unpackPayload(p, 2);
  return { group: read.group(f[0]), to: read.node(f[1]) };
}

export const encodeCtlGroup = (r: CtlCheck | CtlDropGroup): Uint8Array => packPayload([r.group]);
export function decodeCtlGroup(p: Uint8Array): CtlCheck {
  return { group: read.group(unpackPayload(p, 1)[0]) };
}

export const encodeCtlCheckResult = (r: CtlCheckResult): Uint8Array =>
  packPayload([r.index, r.diskOk, r.elapsedMs]);
export function decodeCtlCheckResult(p: Uint8Array): CtlCheckResult {
  const f = unpackPayload(p, 3);
  return {
    index: logIndex(read.uint(f[0], 'index')),
    diskOk: f[1] === true,
    elapsedMs: read.uint(f[2], 'elapsedMs'),
  };
}

export const encodeCtlPropose = (r: CtlPropose): Uint8Array =>
  packPayload([r.group, ...catalogEntryFields(r.entry)]);
export function decodeCtlPropose(p: Uint8Array): CtlPropose {
  const f = unpackPayload(p, 3);
  return { group: read.group(f[0]), entry: readCatalogEntry(f.slice(1)) };
}

export const encodeIndexResult = (r: { index: LogIndex }): Uint8Array => packPayload([r.index]);
export const decodeIndexResult = (p: Uint8Array): { index: LogIndex } => ({
  index: logIndex(read.uint(unpackPayload(p, 1)[0], 'index')),
});

/** An empty success answer. */
export const encodeEmpty = (): Uint8Array => packPayload([]);

export function encodeCtlHostGroup(r: CtlHostGroup): Uint8Array {
  return packPayload([
    r.group,
    r.membership.voters,
    r.membership.learners,
    r.addresses.flatMap((a) => [a.node, a.address]),
    r.mode === 'directed' ? 1 : 2,
  ]);
}

export function readMembers(x: unknown, what: string): NodeId[] {
  return read.array(x, what, limits.groupVotersMax * 4).map(read.node);
}

export function readAddresses(x: unknown): MemberAddress[] {
  const flat = read.array(x, 'addresses', limits.groupVotersMax * 8);
  const out: MemberAddress[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    out.push({
      node: read.node(flat[i]),
      address: read.str(flat[i + 1], 'address', limits.nodeAddressLengthMax),
    });
  }
  return out;
}

export function decodeCtlHostGroup(p: Uint8Array): CtlHostGroup {
  const f = unpackPayload(p, 5);
  const mode = f[4] === 1 ? 'directed' : f[4] === 2 ? 'self' : bad('mode');
  return {
    group: read.group(f[0]),
    membership: { voters: readMembers(f[1], 'voters'), learners: readMembers(f[2], 'learners') },
    addresses: readAddresses(f[3]),
    mode,
  };
}

const roleCodes = ['follower', 'precandidate', 'candidate', 'leader'] as const;

export const replicaReportFields = (r: ReplicaReport): unknown[] => [
  r.group,
  r.term,
  roleCodes.indexOf(r.role),
  r.leader,
  r.lastIndex,
  r.lastTerm,
  r.commit,
  r.applied,
];

export function readReplicaReport(x: unknown): ReplicaReport {
  const f = read.array(x, 'replica', 16);
  const role = roleCodes[read.uint(f[2], 'role', 3)] ?? bad('role');
  return {
    group: read.group(f[0]),
    term: term(read.uint(f[1], 'term')),
    role,
    leader: read.node(f[3]),
    lastIndex: logIndex(read.uint(f[4], 'lastIndex')),
    lastTerm: term(read.uint(f[5], 'lastTerm')),
    commit: logIndex(read.uint(f[6], 'commit')),
    applied: logIndex(read.uint(f[7], 'applied')),
  };
}

export const encodeCtlStatusResult = (r: CtlStatusResult): Uint8Array =>
  packPayload([r.node, r.diskOk, r.replicas.map(replicaReportFields)]);
export function decodeCtlStatusResult(p: Uint8Array): CtlStatusResult {
  const f = unpackPayload(p, 3);
  return {
    node: read.node(f[0]),
    diskOk: f[1] === true,
    replicas: read.array(f[2], 'replicas', limits.catalogGroupsMax).map(readReplicaReport),
  };
}
