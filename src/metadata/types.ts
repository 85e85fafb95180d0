/**
 * The catalog's data model and its commands. The catalog is a deterministic replicated state
 * machine (see catalog.ts): every replica of the metadata group applies the same commands in the
 * same order and reaches the same state. Commands carry any time they need (`atMs`, wall time
 * chosen by the proposer); the state machine never reads a clock.
 */
import type { ErrorCode } from '../lib/errors.js';
import type { GroupId, NodeId, ShardId, TableId, Term } from '../lib/ids.js';

export type Engine = 'btree' | 'lsm';
export type TableState = 'active' | 'dropping' | 'dropped';
export type NodeRole = 'storage' | 'metadata' | 'request';
export type NodeState = 'up' | 'down' | 'spare' | 'removed';
export type MemberRole = 'voter' | 'learner';
export type TokenId = number;

export interface NodeCapacity {
  /** How many replicas the node may host. */
  readonly replicasMax: number;
  readonly diskBytes: number;
}

export interface NodeRecord {
  readonly id: NodeId;
  /** Stable identity of the node (kept in its data directory); one id per key, ever. */
  readonly key: string;
  address: string;
  readonly role: NodeRole;
  capacity: NodeCapacity;
  state: NodeState;
  readonly registeredAtMs: number;
}

export interface Member {
  readonly node: NodeId;
  role: MemberRole;
  /** During a replacement: the member this one replaces (cleared when the old one is removed). */
  replaces: NodeId | null;
}

export interface GroupRecord {
  readonly id: GroupId;
  /** Sorted by node id. */
  members: Member[];
  leader: NodeId | null;
  /** Only grows. 0 = no leader was ever recorded. */
  term: Term;
  readonly createdAtMs: number;
}

export interface TableRecord {
  readonly id: TableId;
  readonly name: string;
  readonly engine: Engine;
  state: TableState;
  readonly createdAtMs: number;
  droppedAtMs: number | null;
}

export interface ShardRecord {
  readonly id: ShardId;
  readonly table: TableId;
  /** Inclusive lower bound; empty = unbounded. */
  readonly start: Uint8Array;
  /** Exclusive upper bound; empty = unbounded. */
  readonly end: Uint8Array;
  group: GroupId;
  /** Grows whenever the shard splits or moves. */
  epoch: number;
}

export interface TokenRecord {
  readonly id: TokenId;
  /** sha256 of the secret, 64 lowercase hex characters (hashed by the caller). */
  readonly secretHash: string;
  readonly readOnly: boolean;
  /** Restricts the token to one table; null = all tables. */
  readonly table: string | null;
  readonly createdAtMs: number;
  /** May administer the cluster (tables, tokens, backup); implies read-write on all tables. */
  readonly admin: boolean;
}

export interface NextIds {
  node: number;
  group: number;
  table: number;
  shard: number;
  token: number;
}

/** The whole catalog. Mutated only by apply(); read through Catalog.state. */
export interface CatalogState {
  /** Grows by one with every command that changes something. */
  version: number;
  next: NextIds;
  nodes: Map<NodeId, NodeRecord>;
  groups: Map<GroupId, GroupRecord>;
  tables: Map<TableId, TableRecord>;
  shards: Map<ShardId, ShardRecord>;
  tokens: Map<TokenId, TokenRecord>;
  /** The free pool: nodes in state 'spare', sorted by id. */
  spares: NodeId[];
  // Derived indexes (not in snapshots; rebuilt on restore).
  nodeKeys: Map<string, NodeId>;
  /** Names of tables in state 'active' only: a dropping table's name can be reused. */
  tableNames: Map<string, TableId>;
  /** Shard ids of every table that is not dropped. */
  tableShards: Map<TableId, ShardId[]>;
  /** Per group (all of them): how many shards of active tables it holds (placement). */
  groupLoad: Map<GroupId, number>;
}

export type CatalogCommand =
  | {
      type: 'registerNode';
      nodeKey: string;
      address: string;
      role: NodeRole;
      capacity: NodeCapacity;
      atMs: number;
    }
  | { type: 'markNode'; node: NodeId; state: 'up' | 'down' | 'removed' }
  | { type: 'addSpare'; node: NodeId }
  | { type: 'takeSpare'; node?: NodeId | undefined }
  | { type: 'createGroup'; members: NodeId[]; atMs: number }
  | { type: 'setGroupLeader'; group: GroupId; leader: NodeId | null; term: Term }
  | { type: 'addLearner'; group: GroupId; node: NodeId; replaces: NodeId | null }
  | { type: 'promote'; group: GroupId; node: NodeId }
  | { type: 'removeMember'; group: GroupId; node: NodeId }
  | { type: 'createTable'; name: string; engine: Engine; atMs: number }
  | { type: 'dropTable'; name: string; atMs: number }
  | { type: 'finishDropTable'; table: TableId }
  | { type: 'splitShard'; shard: ShardId; key: Uint8Array; targetGroup: GroupId }
  | { type: 'moveShard'; shard: ShardId; targetGroup: GroupId }
  | {
      type: 'createToken';
      secretHash: string;
      readOnly: boolean;
      table: string | null;
      atMs: number;
      /** Default false. */
      admin?: boolean | undefined;
    }
  | { type: 'revokeToken'; token: TokenId };

export type CommandType = CatalogCommand['type'];

/** What each command answers on success. */
export interface CommandValues {
  registerNode: { node: NodeId; created: boolean };
  markNode: { node: NodeId; state: NodeState };
  addSpare: { node: NodeId };
  takeSpare: { node: NodeId };
  createGroup: { group: GroupId };
  setGroupLeader: { group: GroupId; leader: NodeId | null; term: Term };
  addLearner: { group: GroupId; node: NodeId };
  promote: { group: GroupId; node: NodeId };
  removeMember: { group: GroupId; node: NodeId };
  createTable: { table: TableId; shard: ShardId; group: GroupId };
  dropTable: { table: TableId; groups: GroupId[] };
  finishDropTable: { table: TableId };
  splitShard: { left: ShardId; right: ShardId; epoch: number };
  moveShard: { shard: ShardId; epoch: number };
  createToken: { token: TokenId };
  revokeToken: { token: TokenId };
}

export type CommandResult<T extends CommandType = CommandType> =
  | { ok: true; version: number; changed: boolean; value: CommandValues[T] }
  | { ok: false; version: number; code: ErrorCode; message: string };
