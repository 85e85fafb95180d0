/**
 * The consensus core's public types: entries, messages, configuration, and the driver contract
 * (the Ready structure). The core is PURE: no `node:*`, no clock, no randomness but an injected
 * seeded Prng. See docs/consensus.md for the driver loop.
 */
import type { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Seq, Term } from '../lib/ids.js';
import type { Prng } from '../lib/prng.js';

// ---------------------------------------------------------------------------------------------
// Entries, membership, snapshots, hard state

/** 1 = a no-op (a new leader's first entry), 2 = a client command, 3 = a membership change. */
export type EntryKind = 'noop' | 'command' | 'config';

/**
 * One log entry. Every entry carries the seq the leader assigned when it appended it; seqs are
 * strictly increasing in log order. `data` is opaque for commands; for 'config' entries it is the
 * encoded MembershipChange (see codec.ts `encodeMembershipChange`).
 */
export interface Entry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly kind: EntryKind;
  readonly seq: Seq;
  readonly data: Uint8Array;
}

/** Voters decide (quorum = majority of voters); learners only receive the log. Disjoint sets. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One change at a time: add a learner, promote a caught-up learner to voter, remove a replica. */
export type MembershipChange =
  | { readonly type: 'add-learner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

/** Snapshot METADATA; the driver moves the data. Describes the state machine at `index`. */
export interface SnapshotMeta {
  readonly index: LogIndex;
  readonly term: Term;
  readonly membership: Membership;
  /** The highest seq applied at `index` (the seq of entry `index`, or the previous snapshot's). */
  readonly highestSeq: Seq;
}

/** Must be durable before any message in `messagesAfterPersist` of the same Ready is sent. */
export interface HardState {
  readonly term: Term;
  /** Who this replica voted for in `term`; 0 = nobody. */
  readonly vote: NodeId;
  /** Last known commit index (may be persisted lazily; it is only a hint on restart). */
  readonly commit: LogIndex;
}

// ---------------------------------------------------------------------------------------------
// Messages (all carry group, from, to, term; codec.ts encodes them, version 1)

interface Header {
  readonly group: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** Replicate entries [prevIndex+1 ..]; `commit` = the leader's commit index. */
export interface AppendMsg extends Header {
  readonly type: 'append';
  readonly prevIndex: LogIndex;
  readonly prevTerm: Term;
  readonly commit: LogIndex;
  readonly entries: readonly Entry[];
}

/**
 * Success: `index` = the last index the follower now has durably matching the leader.
 * Reject: `index` = the prevIndex that did not match; `hint` = the follower's last index.
 */
export interface AppendRespMsg extends Header {
  readonly type: 'appendResp';
  readonly reject: boolean;
  readonly index: LogIndex;
  readonly hint: LogIndex;
}

/** Leadership confirmation round `round` (leases, read-index); `commit` = min(commit, follower match). */
export interface HeartbeatMsg extends Header {
  readonly type: 'heartbeat';
  readonly commit: LogIndex;
  readonly round: number;
}

export interface HeartbeatRespMsg extends Header {
  readonly type: 'heartbeatResp';
  readonly round: number;
}

/**
 * A vote (or pre-vote) request at `term`. A pre-vote does not change anyone's term. `transfer` marks
 * the campaign of a leadership transfer: it bypasses leader stickiness.
 */
export interface VoteMsg extends Header {
  readonly type: 'vote';
  readonly pre: boolean;
  readonly transfer: boolean;
  readonly lastIndex: LogIndex;
  readonly lastTerm: Term;
}

export interface VoteRespMsg extends Header {
  readonly type: 'voteResp';
  readonly pre: boolean;
  readonly granted: boolean;
}

/**
 * The leader tells a follower to install the snapshot described by `meta`. The DRIVER intercepts
 * this message: it streams the state machine data to the follower's driver, then delivers the
 * message to the follower's core (step) once the data is there.
 */
export interface SnapshotMsg extends Header {
  readonly type: 'snapshot';
  readonly meta: SnapshotMeta;
}

/** Leadership transfer: the receiver campaigns at once (no pre-vote, transfer flag set). */
export interface TimeoutNowMsg extends Header {
  readonly type: 'timeoutNow';
}

export type Message =
  | AppendMsg
  | AppendRespMsg
  | HeartbeatMsg
  | HeartbeatRespMsg
  | VoteMsg
  | VoteRespMsg
  | SnapshotMsg
  | TimeoutNowMsg;

export type MessageType = Message['type'];

// ---------------------------------------------------------------------------------------------
// Configuration

/** The pure sequencer the core uses (src/sequencer `Sequencer` satisfies it). */
export interface SequencerLike {
  next(wallNs: bigint): Seq;
  observe(seq: Seq): void;
}

/** Each planted bug disables exactly one safety rule (for the simulator only). */
export const consensusBugs = [
  'vote-without-log-check',
  'commit-without-majority',
  'accept-stale-term-append',
  'lease-read-without-lease',
  'ack-before-fsync',
  'no-new-leader-seq-observe',
] as const;
export type ConsensusBug = (typeof consensusBugs)[number];

/** 'directed': the metadata manager calls campaign(); 'self': randomized election timeouts. */
export type ElectionMode = 'directed' | 'self';

export interface ReplicaConfig {
  readonly group: GroupId;
  readonly id: NodeId;
  /** Membership of a brand-new group (ignored when restoring from a snapshot). */
  readonly initialMembership: Membership;
  readonly electionMode: ElectionMode;
  /** The sequencer of this replica, created by the driver with the persisted applied seq. */
  readonly sequencer: SequencerLike;
  /** Seeded; used for randomized election timeouts only. */
  readonly prng: Prng;
  /** Default limits.heartbeatIntervalMs. */
  readonly heartbeatIntervalMs?: number;
  /** Default limits.electionTimeoutMs. Leader stickiness, check-quorum and the lease use it. */
  readonly electionTimeoutMs?: number;
  /** The lease is shorter than the election timeout by this margin. Default limits.leaseDriftMarginMs. */
  readonly leaseDriftMarginMs?: number;
  /** 'directed' mode: self-elect after this long without a leader. Default limits.directedFallbackMs. */
  readonly directedFallbackMs?: number;
  /** A leader whose own persistence is pending this long steps down. Default limits.fsyncStallMaxMs. */
  readonly fsyncStallMaxMs?: number;
  /** Default limits.appendEntriesInflightMax. */
  readonly inflightMax?: number;
  /** Default limits.appendEntriesBatchBytesMax. */
  readonly batchBytesMax?: number;
  /** Max entries appended but not committed (proposal backpressure). Default limits.proposalQueueMax. */
  readonly uncommittedMax?: number;
  /** A campaign re-asks the voters that did not grant it this often. Default limits.voteRetryMs. */
  readonly voteRetryMs?: number;
  readonly bugs?: ReadonlySet<ConsensusBug>;
}

/** What the driver read back from disk on restart (all optional for a brand-new replica). */
export interface RestoredState {
  readonly hardState?: HardState;
  /** The latest snapshot installed / compaction point (the log starts after it). */
  readonly snapshot?: SnapshotMeta;
  /** The durable log after the snapshot, contiguous, in order. */
  readonly entries?: readonly Entry[];
  /** The state machine's applied index (>= snapshot.index); committed entries resume after it. */
  readonly appliedIndex?: LogIndex;
}

// ---------------------------------------------------------------------------------------------
// Inputs' results and the Ready structure

export type Role = 'follower' | 'precandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly role: Role;
  /** 0 = unknown. */
  readonly leader: NodeId;
  readonly term: Term;
  /** This replica was removed from its group: it never campaigns again. */
  readonly removed: boolean;
}

/** Result of propose / proposeMembership. Rejections carry a TesseraError (NOT_LEADER + leader hint). */
export type ProposeResult =
  | { readonly ok: true; readonly term: Term; readonly firstIndex: LogIndex; readonly seqs: readonly Seq[] }
  | { readonly ok: false; readonly error: TesseraError };

/** Result of read / campaign / transferLeadership / compact. */
export type OpResult = { readonly ok: true } | { readonly ok: false; readonly error: TesseraError };
export type ReadResult = OpResult;

/** A linearizable read may be served now from the state machine (applied >= index already). */
export interface ReadState {
  readonly ctx: number;
  readonly index: LogIndex;
  readonly via: 'lease' | 'read-index';
}

/** A read that will never be confirmed (leadership lost): answer NOT_LEADER / retry elsewhere. */
export interface FailedRead {
  readonly ctx: number;
  readonly error: TesseraError;
}

/** Entries [first..last] of `term` were removed from the log: they were never committed. */
export interface DroppedRange {
  readonly first: LogIndex;
  readonly last: LogIndex;
  readonly term: Term;
}

/**
 * Everything the driver must do, drained by `replica.ready()`. The loop (docs/consensus.md):
 * 1. send `messages` now (the leader's appends go out in parallel with its own fsync);
 * 2. persist, in order: `snapshot` (install its data + meta), `entries` (overwriting from entries[0]),
 *    `hardState`;
 *    then call `replica.persisted(ready.number)` and send `messagesAfterPersist`;
 * 3. apply `committed` in order (and treat `snapshot` as applied), then `replica.applied(lastIndex)`.
 */
export interface Ready {
  /** Increases by 1 per non-empty Ready; pass it to persisted(). */
  readonly number: number;
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  /** A snapshot to install before anything else in this Ready (the log restarts after it). */
  readonly snapshot: SnapshotMeta | null;
  /** Entries to append. If entries[0].index <= the last persisted index, drop the suffix from there first. */
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  /** Committed and locally durable entries to apply, in order. */
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly failedReads: readonly FailedRead[];
  readonly dropped: readonly DroppedRange[];
}

/** Leader's view of one peer, for the metadata manager (catch-up before promote, transfer). */
export interface PeerStatus {
  readonly id: NodeId;
  readonly voter: boolean;
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly lastAckMs: number;
}

export interface ReplicaStatus {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly role: Role;
  readonly term: Term;
  readonly leader: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  /** With lastIndex: how up-to-date the log is (the metadata manager picks the best candidate). */
  readonly lastTerm: Term;
  readonly firstIndex: LogIndex;
  readonly persistedIndex: LogIndex;
  readonly membership: Membership;
  readonly removed: boolean;
  readonly leaseUntilMs: number;
  readonly peers: readonly PeerStatus[];
}
