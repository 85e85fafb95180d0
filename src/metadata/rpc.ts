/**
 * The metadata manager's RPC contract, version 1 (docs/metadata.md, "RPC"). Requests and responses
 * travel as transport request/response frames (src/transport) whose kind says which call it is;
 * payloads are msgpack maps with `v: 1`. Errors are the transport's error-responses
 * `{code, message, detail}`: a follower answers NOT_LEADER with `detail {leader, leaderAddress}`
 * (leader 0 = unknown).
 *
 * Authentication: every caller is an authenticated cluster member (it proved the cluster secret).
 * A node that has no id yet connects with the provisional node id 0xffffffff (`provisionalNodeId`;
 * 0 is accepted too) and may call ONLY mm.register; it then reconnects with the id it got. MM nodes have the fixed ids 1..mmNodeIdMax (15); the
 * catalog gives storage and request nodes ids from 16, never reused.
 */
import { Packr } from 'msgpackr';
import { TesseraError } from '../lib/errors.js';
import { type GroupId, groupId, type LogIndex, type NodeId, nodeId, type Term } from '../lib/ids.js';
import { decodeNodeMetrics, type NodeMetricsWire, type NodeStatsWire } from './stats-wire.js';

export const mmRpcVersion = 1;

/** The transport identity of a node that has not registered yet (it may only call mm.register). */
export const provisionalNodeId = 0xffff_ffff as NodeId;

export function isProvisional(id: number): boolean {
  return id === 0 || id === provisionalNodeId;
}

/** Transport kinds of the MM's calls (u16; 0x0300..0x03ff belong to the metadata manager). */
export const MmKind = {
  register: 0x0301,
  heartbeat: 0x0302,
  catalog: 0x0303,
  createTable: 0x0304,
  dropTable: 0x0305,
  describe: 0x0306,
  cluster: 0x0307,
  tokens: 0x0308,
  backup: 0x0309,
  restore: 0x030a,
} as const;
export type MmCall = keyof typeof MmKind;

// ---- Payloads -------------------------------------------------------------------------------

export type MmNodeRole = 'storage' | 'request';
export type EngineName = 'btree' | 'lsm';

export interface RegisterRequest {
  role: MmNodeRole;
  /** Stable identity of the node, kept in its data directory (1..nodeKeyLengthMax characters). */
  nodeKey: string;
  /** Where other members reach it, host:port. */
  address: string;
  pid: number;
  capacity: { replicasMax: number; diskBytes: number };
}
export interface RegisterResponse {
  node: NodeId;
  /** False when the key was known: the same id again. */
  created: boolean;
}

/** One hosted replica, as the storage node reports it (the same fields as storage/rpc.ts ReplicaReport). */
export interface ReplicaState {
  group: GroupId;
  term: Term;
  role: 'follower' | 'precandidate' | 'candidate' | 'leader';
  /** 0 = unknown. */
  leader: NodeId;
  lastIndex: LogIndex;
  lastTerm: Term;
  commit: LogIndex;
  applied: LogIndex;
}
export interface HeartbeatRequest {
  node: NodeId;
  pid: number;
  address: string;
  /** The node's disk write probe passed. */
  diskOk: boolean;
  /** The node's watchdog saw an fsync stall (asks for a deep check). Optional, default false. */
  stalled?: boolean;
  replicas: ReplicaState[];
  /** The node's host counters (stats-wire.ts, summary v1). Optional: missing or malformed = unknown. */
  metrics?: NodeMetricsWire | null;
}
export interface MemberAddressWire {
  node: NodeId;
  address: string;
}
export interface Assignment {
  group: GroupId;
  membership: { voters: NodeId[]; learners: NodeId[] };
  addresses: MemberAddressWire[];
  mode: 'directed' | 'self';
  /** As the catalog knows it (0 = none). */
  leader: NodeId;
  term: Term;
}
export interface HeartbeatResponse {
  /** The node's state in the catalog: 'removed' means stop and never come back under this id. */
  state: 'up' | 'down' | 'spare' | 'removed';
  /** Every group this node is a member of (voter or learner); a hosted group not listed was left. */
  assignments: Assignment[];
  heartbeatIntervalMs: number;
  catalogVersion: number;
}

export interface CatalogRequest {
  /** Answer at once when the catalog is past this version, else wait up to waitMs for a change. */
  sinceVersion: number;
  waitMs: number;
}
export interface ShardWire {
  shard: number;
  start: Uint8Array;
  end: Uint8Array;
  epoch: number;
  group: GroupId;
}
export interface TableWire {
  id: number;
  name: string;
  engine: EngineName;
  /** Sorted by start; they tile the key space. */
  shards: ShardWire[];
}
export interface GroupWire {
  id: GroupId;
  voters: NodeId[];
  learners: NodeId[];
  leader: NodeId;
  term: Term;
}
export interface NodeWire {
  id: NodeId;
  role: 'storage' | 'metadata' | 'request';
  address: string;
  state: 'up' | 'down' | 'spare' | 'removed';
}
export interface RoutingWire {
  tables: TableWire[];
  groups: GroupWire[];
  nodes: NodeWire[];
}
export interface CatalogResponse {
  version: number;
  /** null: unchanged since sinceVersion (the wait ended). */
  view: RoutingWire | null;
}

export interface CreateTableRequest {
  name: string;
  engine: EngineName;
}
export interface TableResponse {
  table: TableWire;
  version: number;
}
export interface NameRequest {
  name: string;
}
export interface DropTableResponse {
  table: number;
  version: number;
}

export interface ClusterNodeWire {
  id: NodeId;
  role: 'storage' | 'metadata' | 'request';
  addr: string;
  pid: number | null;
  state: 'up' | 'down' | 'spare' | 'removed';
  /** Since the MM leader last heard from it; null if never (or MM nodes). */
  heartbeatAgeMs: number | null;
}
export interface ClusterResponse {
  metadata: { leader: NodeId; members: NodeId[] };
  nodes: ClusterNodeWire[];
  groups: GroupWire[];
  tables: TableWire[];
  version: number;
  /** Soft state of the MM leader: latest heartbeat stats per node (stats-wire.ts). Optional. */
  stats?: NodeStatsWire[];
}

export type TokenRole = 'admin' | 'read-write' | 'read-only';
export interface TokenWire {
  id: number;
  /** sha256 of the secret, 64 lowercase hex; the secret itself never reaches the MM. */
  hash: string;
  role: TokenRole;
  table: string | null;
  createdAtMs: number;
}
export type TokensRequest =
  | { op: 'create'; hash: string; role: TokenRole; table: string | null }
  | { op: 'list' }
  | { op: 'revoke'; id: number }
  | { op: 'verify'; hash: string };
export interface TokensResponse {
  /** create, verify (null: no such token) */
  token?: TokenWire | null;
  /** list */
  tokens?: TokenWire[];
}

export interface BackupResponse {
  /** A backup file, format v1 (backup.ts). */
  bytes: Uint8Array;
  version: number;
}
export interface RestoreRequest {
  bytes: Uint8Array;
}
export interface VersionResponse {
  version: number;
}

/** Request and response payload of each call. */
export interface MmCalls {
  register: [RegisterRequest, RegisterResponse];
  heartbeat: [HeartbeatRequest, HeartbeatResponse];
  catalog: [CatalogRequest, CatalogResponse];
  createTable: [CreateTableRequest, TableResponse];
  dropTable: [NameRequest, DropTableResponse];
  describe: [NameRequest, TableResponse];
  cluster: [Record<string, never>, ClusterResponse];
  tokens: [TokensRequest, TokensResponse];
  backup: [Record<string, never>, BackupResponse];
  restore: [RestoreRequest, VersionResponse];
}

// ---- Codec ----------------------------------------------------------------------------------

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

function bad(call: string, what: string): never {
  throw new TesseraError('BAD_REQUEST', `mm.${call}: ${what}`);
}

/** Encodes a request or response of `call` (the envelope carries the version). */
export function encodeMm(payload: object): Uint8Array {
  return packr.pack({ v: mmRpcVersion, ...payload });
}

function decodeEnvelope(call: string, bytes: Uint8Array): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = packr.unpack(bytes);
  } catch {
    bad(call, 'payload is not msgpack');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) bad(call, 'payload is not a map');
  const o = doc as Record<string, unknown>;
  if (o.v !== mmRpcVersion) bad(call, `unsupported version ${String(o.v)}`);
  return o;
}

const isU32 = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff_ffff;
const isSafe = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length >= 1 && v.length <= max;
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function need(call: string, ok: boolean, what: string): void {
  if (!ok) bad(call, what);
}

const replicaRoles = ['follower', 'precandidate', 'candidate', 'leader'];

function decodeReplica(call: string, r: unknown): ReplicaState {
  need(call, typeof r === 'object' && r !== null, 'replica');
  const o = r as Record<string, unknown>;
  need(
    call,
    isU32(o.group) && isSafe(o.term) && isU32(o.leader) && replicaRoles.includes(o.role as string),
    'replica',
  );
  need(
    call,
    isSafe(o.lastIndex) && isSafe(o.lastTerm) && isSafe(o.commit) && isSafe(o.applied),
    'replica positions',
  );
  return {
    group: groupId(o.group as number),
    term: o.term as Term,
    role: o.role as ReplicaState['role'],
    leader: nodeId(o.leader as number),
    lastIndex: o.lastIndex as LogIndex,
    lastTerm: o.lastTerm as Term,
    commit: o.commit as LogIndex,
    applied: o.applied as LogIndex,
  };
}

/** Decodes and validates a request on the MM side (BAD_REQUEST when malformed). */
export function decodeMmRequest<C extends MmCall>(call: C, bytes: Uint8Array): MmCalls[C][0] {
  const o = decodeEnvelope(call, bytes);
  switch (call) {
    case 'register':
      need(call, o.role === 'storage' || o.role === 'request', 'role');
      need(call, isStr(o.nodeKey, 128) && isStr(o.address, 256) && isU32(o.pid), 'nodeKey/address/pid');
      need(call, typeof o.capacity === 'object' && o.capacity !== null, 'capacity');
      need(
        call,
        isU32((o.capacity as Record<string, unknown>).replicasMax) &&
          isSafe((o.capacity as Record<string, unknown>).diskBytes),
        'capacity',
      );
      break;
    case 'heartbeat':
      need(call, isU32(o.node) && isU32(o.pid) && isStr(o.address, 256), 'node/pid/address');
      need(call, typeof o.diskOk === 'boolean' && Array.isArray(o.replicas), 'diskOk/replicas');
      return {
        node: nodeId(o.node as number),
        pid: o.pid as number,
        address: o.address as string,
        diskOk: o.diskOk === true,
        stalled: o.stalled === true,
        replicas: (o.replicas as unknown[]).map((r) => decodeReplica(call, r)),
        ...(o.metrics === undefined ? {} : { metrics: decodeNodeMetrics(o.metrics) }),
      } as MmCalls[C][0];
    case 'catalog':
      need(call, isSafe(o.sinceVersion) && isU32(o.waitMs), 'sinceVersion/waitMs');
      break;
    case 'createTable':
      need(call, typeof o.name === 'string' && typeof o.engine === 'string', 'name/engine');
      break;
    case 'dropTable':
    case 'describe':
      need(call, typeof o.name === 'string', 'name');
      break;
    case 'tokens':
      decodeTokensRequest(o);
      break;
    case 'restore':
      need(call, isBytes(o.bytes), 'bytes');
      break;
  }
  return o as unknown as MmCalls[C][0];
}

function decodeTokensRequest(o: Record<string, unknown>): void {
  const isHash = (h: unknown): boolean => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h);
  switch (o.op) {
    case 'create':
      need('tokens', isHash(o.hash), 'hash');
      need('tokens', ['admin', 'read-write', 'read-only'].includes(o.role as string), 'role');
      need('tokens', o.table === null || typeof o.table === 'string', 'table');
      return;
    case 'list':
      return;
    case 'revoke':
      need('tokens', isU32(o.id), 'id');
      return;
    case 'verify':
      need('tokens', isHash(o.hash), 'hash');
      return;
    default:
      bad('tokens', 'op');
  }
}

/** Decodes a response on the caller's side (BAD_REQUEST when not version 1 msgpack). */
export function decodeMmResponse<C extends MmCall>(call: C, bytes: Uint8Array): MmCalls[C][1] {
  const { v: _v, ...rest } = decodeEnvelope(call, bytes);
  return rest as unknown as MmCalls[C][1];
}

/** The error detail of a NOT_LEADER answer. */
export interface NotLeaderDetail {
  /** 0 = unknown. */
  leader: number;
  leaderAddress: string | null;
}
