/**
 * The request manager's view of the cluster. The HTTP layer (http.ts, api.ts) validates, checks
 * auth and formats; everything that touches data or the catalog goes through a RequestBackend.
 * The real backend (catalog cache + routing to group leaders) is wired by the cluster code; tests
 * use an in-memory one (test/request/memory-backend.ts).
 *
 * Contract for implementations (see docs/request.md):
 * - Inputs are already validated: table names match the name rules, keys are 1..keyBytesMax bytes,
 *   values at most valueBytesMax, scan limits within 1..scanLimitMax. Byte arrays are not retained
 *   by the caller after the call returns, and returned ones are not modified by the caller.
 * - Operating errors are thrown as TesseraError with a code of src/lib/errors.ts (TABLE_NOT_FOUND,
 *   TABLE_EXISTS, KEY_NOT_FOUND, CONDITION_FAILED, TOKEN_NOT_FOUND, UNAVAILABLE, TIMEOUT,
 *   OUTCOME_UNKNOWN, DISK_FULL, ...). Anything else thrown is a bug and becomes a 500.
 * - Writes carry a RequestId; a retry with the same id returns the first outcome, never writes twice.
 */
import type { GroupId, NodeId, Seq } from '../lib/ids.js';

export type Engine = 'btree' | 'lsm';
export const engines: readonly Engine[] = ['btree', 'lsm'];

export interface TableSummary {
  name: string;
  engine: Engine;
}

export interface ShardView {
  /** Inclusive start; empty = unbounded below. */
  start: Uint8Array;
  /** Exclusive end; empty = unbounded above. */
  end: Uint8Array;
  group: GroupId;
  /** Shard epoch (changes when it splits or moves). */
  epoch: number;
}

export interface TableDescription extends TableSummary {
  shards: ShardView[];
}

export interface Item {
  value: Uint8Array;
  seq: Seq;
}

export interface ScanItem extends Item {
  key: Uint8Array;
}

/** A write condition, evaluated by the group's state machine at apply time. */
export type WriteCondition = { kind: 'none' } | { kind: 'ifMatch'; seq: Seq } | { kind: 'ifNoneMatch' };

/** Identifies a client write for exactly-once retries: client id + a number unique per client. */
export interface RequestId {
  clientId: string;
  n: number;
}

export interface WriteOptions {
  condition: WriteCondition;
  requestId: RequestId;
}

export interface ScanRange {
  /** Inclusive lower bound (empty = from the first key). */
  start: Uint8Array;
  /** Exclusive upper bound, or null for no bound. */
  end: Uint8Array | null;
  /** At most this many items (1..scanLimitMax). */
  limit: number;
  /** Stop after roughly this many key+value bytes (at least one item is always returned). */
  bytesMax: number;
}

export interface ScanPage {
  /** Ascending unsigned-byte key order, all inside the range, across shards. */
  items: ScanItem[];
  /** A key > the last item and <= the first key not returned, to pass as `start`; null when done. */
  next: Uint8Array | null;
}

export type NodeRole = 'metadata' | 'storage' | 'request';
export type NodeState = 'up' | 'down' | 'spare';

export interface ClusterNode {
  id: NodeId;
  role: NodeRole;
  addr: string;
  pid: number | null;
  state: NodeState;
  /** Milliseconds since the metadata manager last heard from it; null if unknown. */
  heartbeatAgeMs: number | null;
  /** A storage node's host counters from its last heartbeat; absent or null if unknown. */
  metrics?: NodeMetrics | null;
}

/** Counters of a storage node's group host since its process started (docs/observability.md). */
export interface NodeMetrics {
  entriesApplied: number;
  electionsWon: number;
  /** Shared log appends, each one fsync. */
  logAppends: number;
  fsyncSumSeconds: number;
  /** Upper bounds of the fsync latency buckets, seconds. */
  fsyncBoundsSeconds: number[];
  /** Appends per bucket (not cumulative), one more than the bounds (the last: above the last bound). */
  fsyncCounts: number[];
}

/** One member's replica of a group, as its node last reported it. */
export interface GroupReplica {
  node: NodeId;
  role: 'follower' | 'precandidate' | 'candidate' | 'leader';
  term: number;
  lastIndex: number;
  commit: number;
  applied: number;
  /** Entries it has still to apply: the leader's last index minus its applied index; null if unknown. */
  lagEntries: number | null;
}

export interface ClusterGroup {
  id: GroupId;
  members: NodeId[];
  leader: NodeId | null;
  term: number;
  /** Members' replicas as last reported (those that reported); absent if unknown. */
  replicas?: GroupReplica[];
}

export interface ClusterView {
  metadata: { leader: NodeId | null; members: NodeId[] };
  nodes: ClusterNode[];
  groups: ClusterGroup[];
  tables: TableDescription[];
}

export type TokenRole = 'admin' | 'read-write' | 'read-only';
export const tokenRoles: readonly TokenRole[] = ['admin', 'read-write', 'read-only'];

/** What the catalog stores about a token: never the secret, only its SHA-256. */
export interface TokenRecord {
  /** Public id (16 lowercase hex), used to list and revoke. */
  id: string;
  /** sha256(secret) as 64 lowercase hex. */
  hash: string;
  role: TokenRole;
  /** Restricts the token to one table, or null for all tables. */
  table: string | null;
  /** ISO-8601 creation time. */
  createdAt: string;
}

export interface Health {
  ok: boolean;
  /** Why it can't serve, when !ok. */
  reason?: string;
}

export interface RequestBackend {
  listTables(): Promise<TableSummary[]>;
  /** TABLE_EXISTS if the name is taken. */
  createTable(name: string, engine: Engine): Promise<TableDescription>;
  /** TABLE_NOT_FOUND. */
  describeTable(name: string): Promise<TableDescription>;
  /** TABLE_NOT_FOUND. Deletes the table and all its data. */
  dropTable(name: string): Promise<void>;

  /** TABLE_NOT_FOUND, CONDITION_FAILED, OUTCOME_UNKNOWN, DISK_FULL. Returns the new seq. */
  put(table: string, key: Uint8Array, value: Uint8Array, opts: WriteOptions): Promise<Seq>;
  /** Linearizable. TABLE_NOT_FOUND; null when the key is absent. */
  get(table: string, key: Uint8Array): Promise<Item | null>;
  /** TABLE_NOT_FOUND, KEY_NOT_FOUND (absent, unconditional), CONDITION_FAILED. Returns the tombstone's seq. */
  delete(table: string, key: Uint8Array, opts: WriteOptions): Promise<Seq>;
  /** TABLE_NOT_FOUND. */
  scan(table: string, range: ScanRange): Promise<ScanPage>;

  cluster(): Promise<ClusterView>;

  /**
   * Stores the record (the caller generated the secret and hashed it). May answer the record as
   * stored when the catalog assigns its own id (then that id is the one shown and revoked).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: backends that keep the record as given answer nothing
  createToken(record: TokenRecord): Promise<TokenRecord | undefined | void>;
  listTokens(): Promise<TokenRecord[]>;
  /** TOKEN_NOT_FOUND. */
  revokeToken(id: string): Promise<void>;
  /** The record whose hash is this sha256 hex, or null. Called on every request: answer from memory. */
  verifyToken(hash: string): Promise<TokenRecord | null>;
  /**
   * Optional synchronous fast path of verifyToken: the record when the backend's in-memory copy of
   * the catalog has it now, undefined when verifyToken must be asked (unknown here, or not loaded).
   */
  cachedToken?(hash: string): TokenRecord | undefined;

  /** An opaque, versioned snapshot of the catalog (tables, shards, groups, nodes, tokens). */
  backupMetadata(): Promise<Uint8Array>;
  /** Replaces the catalog with a backup. BAD_REQUEST if the bytes are not a valid backup. */
  restoreMetadata(backup: Uint8Array): Promise<void>;

  health(): Promise<Health>;
}
