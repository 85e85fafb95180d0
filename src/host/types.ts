/**
 * The group host's public types: the generic StateMachine a replica drives, the options of a
 * GroupHost, and the outcomes of its client calls. See docs/host.md.
 */
import type {
  ElectionMode,
  Entry,
  Membership,
  MembershipChange,
  ReplicaStatus,
  SnapshotMeta,
  SoftState,
} from '../consensus/types.js';
import type { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Seq, Term } from '../lib/ids.js';
import type { Logger } from '../lib/log.js';
import type { Registry } from '../lib/metrics.js';
import type { LogOptions } from '../log/log.js';
import type { Transport } from '../transport/transport.js';

/** Transport kinds used by the host (u16). Other modules must pick other numbers. */
export const HOST_MESSAGE_KIND = 0x0100; // one-way: an encoded consensus Message (codec.ts v1)
export const HOST_SNAPSHOT_KIND = 0x0101; // request/response: one snapshot chunk, or the final message

/** Where the state machine stands durably: replay after a restart starts after `index`. */
export interface AppliedPosition {
  /** 0 = nothing applied yet. */
  readonly index: LogIndex;
  /** The highest seq applied (16 zero bytes when nothing was applied). */
  readonly seq: Seq;
}

/**
 * A replicated state machine of one group on this node (key-value over the engines, the catalog, or
 * the tiny in-memory one of the tests). The host calls it from one group's loop at a time: apply,
 * snapshot and install never overlap for one group; checkpoint may run during an apply.
 */
export interface StateMachine<R> {
  /** The durable applied position (what survives a crash). Called once, when the group starts. */
  appliedPosition(): Promise<AppliedPosition>;
  /**
   * Applies committed entries in log order (every kind; 'noop' and 'config' only advance the
   * applied position). Entries at or below the state machine's applied index (replay after a
   * restart) must be skipped without effect. Returns one result per entry, in order (the results
   * of command entries go to their proposers). Need not be durable when it resolves.
   */
  apply(entries: readonly Entry[]): Promise<readonly R[]>;
  /**
   * Makes everything applied so far durable; resolves with the durable position. The host then
   * compacts the log below it (minus a margin). May run concurrently with apply.
   */
  checkpoint(): Promise<AppliedPosition>;
  /**
   * Captures the state as of `meta.index` (= the current applied index; the host applies nothing
   * more for this group until the promise resolves) and returns it as a stream of chunks of about
   * limits.snapshotChunkBytes. The stream may be read slowly, while later entries are applied.
   */
  snapshot(meta: SnapshotMeta): Promise<AsyncIterable<Uint8Array>>;
  /**
   * Replaces the whole state with a snapshot (chunks as produced by snapshot() on the leader).
   * Durable when it resolves: then appliedPosition() is (meta.index, meta.highestSeq). Must be
   * atomic across a crash: afterwards appliedPosition() is either the old position or the new one.
   */
  install(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /** Releases resources (the data stays). */
  close(): Promise<void>;
  /** Deletes the group's data on this node (the replica left its group). */
  destroy(): Promise<void>;
}

/** Opens (creating if absent) the state machine of a group on this node. */
export type StateMachineFactory<R> = (group: GroupId) => Promise<StateMachine<R>>;

/** Monotonic ms and wall-clock ns (since the Unix epoch); injectable for tests. */
export interface Clock {
  monoMs(): number;
  wallNs(): bigint;
}

/** Timing of the replicas (defaults: lib/limits.ts). Tests shorten them. */
export interface ReplicaTiming {
  readonly heartbeatIntervalMs?: number;
  readonly electionTimeoutMs?: number;
  readonly leaseDriftMarginMs?: number;
  readonly directedFallbackMs?: number;
  readonly fsyncStallMaxMs?: number;
}

export interface GroupHostOptions<R> {
  /** This node's id (the same as the transport's). */
  readonly nodeId: NodeId;
  /** The host's directory: the shared log in `dir/log`, group descriptors in `dir/groups`. */
  readonly dir: string;
  /** Owned by the caller (also used for other RPCs); the host registers its two kinds on it. */
  readonly transport: Transport;
  readonly stateMachines: StateMachineFactory<R>;
  /** Default: performance.now() and a process.hrtime-based wall clock (src/host/clock.ts). */
  readonly clock?: Clock;
  /** Tick period, default limits.hostTickIntervalMs. */
  readonly tickIntervalMs?: number;
  readonly timing?: ReplicaTiming;
  readonly log?: LogOptions;
  /** Checkpoint a group's state machine after this many applied entries (limits.hostCheckpointEntries). */
  readonly checkpointEntries?: number;
  /** Compaction keeps this many entries below the durable index for slow followers (limits.hostCompactionMarginEntries). */
  readonly compactionMarginEntries?: number;
  /** Seed of the replicas' PRNGs (election timeouts); default random. */
  readonly seed?: number;
  readonly logger?: Logger;
  /** Default lib/metrics.ts defaultRegistry. */
  readonly metrics?: Registry;
}

export interface AddGroupOptions {
  /** The membership of a brand-new group (ignored when the group exists on disk). */
  readonly membership: Membership;
  readonly electionMode: ElectionMode;
}

/** The fate of one proposed command. */
export type CommandOutcome<R> =
  | {
      readonly ok: true;
      readonly index: LogIndex;
      readonly term: Term;
      readonly seq: Seq;
      /** What the state machine's apply returned for this entry. */
      readonly result: R;
    }
  | {
      readonly ok: false;
      /**
       * NOT_LEADER (+ leader hint): the entry was dropped or overwritten, never applied: retry.
       * OUTCOME_UNKNOWN: leadership was lost and the entry may still commit.
       * UNAVAILABLE: the group was removed or the host closed before the outcome was known.
       */
      readonly error: TesseraError;
    };

/** Role / leader / term / removed changed for a group on this node. */
export type SoftStateListener = (group: GroupId, soft: SoftState) => void;

/**
 * The group host's client API (implemented by `GroupHost` in host.ts). Calls on a group this host
 * does not run reject / throw `GROUP_NOT_FOUND`.
 */
export interface GroupHostApi<R> {
  /** Groups this node hosts. */
  groups(): GroupId[];
  /** Starts a replica of the group (recovering it if it is on disk). Idempotent. */
  addGroup(group: GroupId, options: AddGroupOptions): Promise<void>;
  /** Stops the replica and deletes its data (log dropGroup, state machine destroy). Idempotent. */
  removeGroup(group: GroupId): Promise<void>;
  /**
   * Leader only: one entry per command. Rejects at once with NOT_LEADER (+ leader hint),
   * TOO_MANY_REQUESTS, UNAVAILABLE, RECORD_TOO_LARGE; otherwise resolves once every command has an
   * outcome: committed and applied locally (with the state machine's result), or an error.
   */
  propose(group: GroupId, commands: readonly Uint8Array[]): Promise<CommandOutcome<R>[]>;
  /** Leader only: resolves once the change is committed and applied locally. */
  proposeMembership(group: GroupId, change: MembershipChange): Promise<LogIndex>;
  /**
   * Resolves when a linearizable read may be served from the state machine (lease or read-index,
   * checked against the monotonic clock at the moment of the call). Rejects NOT_LEADER otherwise.
   */
  read(group: GroupId): Promise<void>;
  /** Directed election: pre-vote, then vote at a term above max(own term, minTerm). Throws on refusal. */
  campaign(group: GroupId, minTerm: Term): void;
  /** Leader only: hand leadership to a caught-up voter. Throws on refusal. */
  transferLeadership(group: GroupId, to: NodeId): void;
  /** The replica's status (role, term, log positions, peers' progress), or undefined. */
  status(group: GroupId): ReplicaStatus | undefined;
  /** The group's state machine on this node (for reads), or undefined. */
  stateMachine(group: GroupId): StateMachine<R> | undefined;
  /** Registers a listener of role / leader / term / removed changes. Returns an unsubscribe function. */
  onSoftState(listener: SoftStateListener): () => void;
  /** Checkpoints the group's state machine now and compacts its log (ops and tests). */
  checkpoint(group: GroupId): Promise<AppliedPosition>;
  /** Stops ticking, fails pending calls with UNAVAILABLE, closes state machines and the log. */
  close(): Promise<void>;
}
