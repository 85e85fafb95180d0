/**
 * The replica's state and its role transitions. The rules live in small modules that operate on a
 * Core: election.ts, replication.ts, read.ts, snapshot.ts, membership.ts. replica.ts is the public
 * facade (inputs and the Ready structure).
 */
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import {
  type GroupId,
  type LogIndex,
  logIndex,
  type NodeId,
  type Seq,
  type Term,
  term as toTerm,
} from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Prng } from '../lib/prng.js';
import { RaftLog } from './log.js';
import { commitMembershipChanges, initialMembershipState, type MembershipState } from './membership.js';
import { Progress } from './progress.js';
import { isVoter } from './quorum.js';
import type { ReadTracker } from './read.js';
import { newReadTracker, failAllReads } from './read.js';
import type {
  AppendRespMsg,
  ConsensusBug,
  ElectionMode,
  Entry,
  EntryKind,
  FailedRead,
  HardState,
  Message,
  ReadState,
  ReplicaConfig,
  RestoredState,
  Role,
  SequencerLike,
  SnapshotMeta,
  SoftState,
} from './types.js';

const noBugs: ReadonlySet<ConsensusBug> = new Set();
const zeroSeq = new Uint8Array(16) as Seq;

export interface Timing {
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly leaseDriftMarginMs: number;
  readonly directedFallbackMs: number;
  readonly fsyncStallMaxMs: number;
  readonly inflightMax: number;
  readonly batchBytesMax: number;
  readonly uncommittedMax: number;
  readonly voteRetryMs: number;
}

function timing(c: ReplicaConfig): Timing {
  const t: Timing = {
    heartbeatIntervalMs: c.heartbeatIntervalMs ?? limits.heartbeatIntervalMs,
    electionTimeoutMs: c.electionTimeoutMs ?? limits.electionTimeoutMs,
    leaseDriftMarginMs: c.leaseDriftMarginMs ?? limits.leaseDriftMarginMs,
    directedFallbackMs: c.directedFallbackMs ?? limits.directedFallbackMs,
    fsyncStallMaxMs: c.fsyncStallMaxMs ?? limits.fsyncStallMaxMs,
    inflightMax: c.inflightMax ?? limits.appendEntriesInflightMax,
    batchBytesMax: c.batchBytesMax ?? limits.appendEntriesBatchBytesMax,
    uncommittedMax: c.uncommittedMax ?? limits.proposalQueueMax,
    voteRetryMs: c.voteRetryMs ?? limits.voteRetryMs,
  };
  assert(t.heartbeatIntervalMs > 0 && t.electionTimeoutMs > t.heartbeatIntervalMs, 'bad timeouts');
  assert(t.leaseDriftMarginMs >= 0 && t.leaseDriftMarginMs < t.electionTimeoutMs, 'bad lease margin');
  assert(t.directedFallbackMs >= t.electionTimeoutMs, 'directedFallbackMs below the election timeout');
  assert(t.inflightMax >= 1 && t.batchBytesMax >= 1 && t.uncommittedMax >= 1, 'bad limits');
  assert(t.voteRetryMs > 0 && t.voteRetryMs < t.electionTimeoutMs, 'bad vote retry interval');
  return t;
}

export class Core {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly mode: ElectionMode;
  readonly t: Timing;
  readonly bugs: ReadonlySet<ConsensusBug>;
  readonly seqr: SequencerLike;
  readonly prng: Prng;

  term: Term;
  vote: NodeId;
  leader: NodeId = 0 as NodeId;
  role: Role = 'follower';
  readonly log: RaftLog;
  ms: MembershipState;

  // Time
  nowMs = 0;
  wallNs = 0n;
  private ticked = false;
  /** Votes are refused before this (restarted replica: it may have promised a lease). */
  refuseVotesUntilMs = 0;
  lastLeaderContactMs = 0;
  /** The election timer restarts at electionResetMs and fires electionRandMs after it (or contact). */
  electionResetMs = 0;
  electionRandMs = 0;
  /** Candidate / pre-candidate: the term being campaigned for, the transfer flag and the tally. */
  campaignTerm: Term;
  campaignTransfer = false;
  campaignStartMs = 0;
  /** When (pre-)vote requests last went out (re-sent to non-granting voters every voteRetryMs). */
  votesSentMs = 0;
  votes = new Map<NodeId, boolean>();
  /**
   * A directed campaign ordered while this replica still heard from a leader: it starts at the
   * first tick the stickiness is over (the order's term), unless a leader at that term or above
   * shows up or the order lapses (one election timeout).
   */
  pendingCampaign: { minTerm: Term; untilMs: number } | null = null;

  // Leader state
  prs = new Map<NodeId, Progress>();
  leaderSinceMs = 0;
  lastHeartbeatMs = 0;
  transfer: { to: NodeId; deadlineMs: number; sent: boolean } | null = null;
  reads: ReadTracker;

  // Outputs
  msgs: Message[] = [];
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  failedReads: FailedRead[] = [];
  snapshotToInstall: SnapshotMeta | null = null;
  prevHard: HardState;
  prevSoft: SoftState;
  /** Ready numbers not yet persisted with the monoMs they were handed out (fsync stall). */
  unpersisted: { number: number; ms: number }[] = [];

  constructor(cfg: ReplicaConfig, restored: RestoredState = {}) {
    this.id = cfg.id;
    this.group = cfg.group;
    this.mode = cfg.electionMode;
    this.t = timing(cfg);
    this.bugs = cfg.bugs ?? noBugs;
    this.seqr = cfg.sequencer;
    this.prng = cfg.prng;
    const m0 = restored.snapshot?.membership ?? cfg.initialMembership;
    assert(m0.voters.length > 0, 'a membership needs at least one voter');
    assert(
      new Set([...m0.voters, ...m0.learners]).size === m0.voters.length + m0.learners.length,
      'voters and learners must be distinct',
    );
    const hs = restored.hardState ?? { term: toTerm(0), vote: 0 as NodeId, commit: logIndex(0) };
    this.term = hs.term;
    this.vote = hs.vote;
    this.campaignTerm = hs.term;
    const snap: SnapshotMeta = restored.snapshot ?? {
      index: logIndex(0),
      term: toTerm(0),
      membership: cfg.initialMembership,
      highestSeq: zeroSeq,
    };
    const applied = restored.appliedIndex ?? snap.index;
    this.log = new RaftLog(snap, restored.entries ?? [], hs.commit, applied);
    this.ms = initialMembershipState(snap);
    commitMembershipChanges(this, snap.index);
    if (!this.bugs.has('no-new-leader-seq-observe')) {
      this.seqr.observe(snap.highestSeq);
      this.seqr.observe(this.log.lastSeq());
    }
    this.reads = newReadTracker();
    this.prevHard = this.hardState();
    this.prevSoft = this.softState();
  }

  // -------------------------------------------------------------------------------------------
  // Views

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commit };
  }

  softState(): SoftState {
    return { role: this.role, leader: this.leader, term: this.term, removed: this.ms.removed };
  }

  isVoter(): boolean {
    return isVoter(this.ms.membership, this.id) && !this.ms.removed;
  }

  voters(): readonly NodeId[] {
    return this.ms.membership.voters;
  }

  /** The leader committed an entry of its own term (its no-op): commit is up to date. */
  committedInTerm(): boolean {
    return this.log.term(this.log.commit) === this.term;
  }

  /** Heard from a live leader within the election timeout (leader stickiness). */
  inLeaderLease(): boolean {
    if (this.role === 'leader') return true;
    if (this.nowMs < this.refuseVotesUntilMs) return true;
    return this.leader !== 0 && this.nowMs - this.lastLeaderContactMs < this.t.electionTimeoutMs;
  }

  notLeader(what: string): TesseraError {
    return new TesseraError('NOT_LEADER', `${what}: replica ${this.id} is not the leader`, {
      leader: this.leader,
      term: this.term,
    });
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  send(m: Message): void {
    this.msgs.push(m);
  }

  /** Our answer to an append, heartbeat or snapshot from `to`, at our current term. */
  appendResp(to: NodeId, reject: boolean, index: LogIndex, hint: LogIndex): AppendRespMsg {
    return { type: 'appendResp', group: this.group, from: this.id, to, term: this.term, reject, index, hint };
  }

  /** An answer that promises durability (append acks, votes): sent only after the Ready persisted. */
  sendAfterPersist(m: Message): void {
    if (this.bugs.has('ack-before-fsync')) this.msgs.push(m);
    else this.msgsAfterPersist.push(m);
  }

  // -------------------------------------------------------------------------------------------
  // Time

  advanceTime(monoMs: number, wallNs?: bigint): void {
    assert(Number.isFinite(monoMs), 'monoMs must be finite');
    if (!this.ticked) {
      this.ticked = true;
      this.nowMs = monoMs;
      this.lastLeaderContactMs = monoMs;
      if (this.term > 0) this.refuseVotesUntilMs = monoMs + this.t.electionTimeoutMs;
      this.resetElectionDeadline();
    }
    if (monoMs > this.nowMs) this.nowMs = monoMs;
    if (wallNs !== undefined) this.wallNs = wallNs; // the sequencer keeps seqs monotonic
  }

  resetElectionDeadline(): void {
    const et = this.t.electionTimeoutMs;
    const base = this.mode === 'self' ? et : this.t.directedFallbackMs;
    this.electionResetMs = this.nowMs;
    this.electionRandMs = base + this.prng.int(0, et - 1);
  }

  // -------------------------------------------------------------------------------------------
  // Role transitions

  becomeFollower(term: Term, leader: NodeId): void {
    assert(term >= this.term, 'term going back');
    const wasLeader = this.role === 'leader';
    if (term > this.term) {
      this.term = term;
      this.vote = 0 as NodeId;
    }
    this.role = 'follower';
    this.leader = leader;
    this.votes.clear();
    if (wasLeader) this.stopLeading();
    if (leader !== 0) this.lastLeaderContactMs = this.nowMs;
    this.resetElectionDeadline();
  }

  private stopLeading(): void {
    this.prs.clear();
    this.transfer = null;
    failAllReads(this, this.notLeader('read'));
  }

  becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.role = 'leader';
    this.leader = this.id;
    this.votes.clear();
    this.leaderSinceMs = this.nowMs;
    this.lastHeartbeatMs = -Infinity;
    this.transfer = null;
    this.reads = newReadTracker();
    this.rebuildProgress();
    if (!this.bugs.has('no-new-leader-seq-observe')) {
      this.seqr.observe(this.log.snap.highestSeq);
      this.seqr.observe(this.log.lastSeq());
    }
    // The previous leader may have left a membership change uncommitted: wait for the no-op.
    this.ms.pendingIndex = this.log.lastIndex();
    this.appendLocal('noop', [new Uint8Array(0)]);
  }

  /** (Re)create the leader's progress for every member but itself, keeping what is known. */
  rebuildProgress(): void {
    const m = this.ms.membership;
    const next = new Map<NodeId, Progress>();
    for (const id of [...m.voters, ...m.learners]) {
      if (id === this.id) continue;
      const old = this.prs.get(id);
      const pr = old ?? new Progress(id, true, this.log.lastIndex() + 1, this.nowMs);
      pr.voter = m.voters.includes(id);
      next.set(id, pr);
    }
    this.prs = next;
  }

  /** Leader: append entries of its term, each with a fresh seq. */
  appendLocal(kind: EntryKind, datas: readonly Uint8Array[], wallNs = this.wallNs): Entry[] {
    assert(this.role === 'leader', 'appendLocal on a non-leader');
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = new Array(datas.length);
    for (let k = 0; k < datas.length; k++) {
      entries[k] = {
        index: (first + k) as LogIndex,
        term: this.term,
        kind,
        seq: this.seqr.next(wallNs),
        data: datas[k]!,
      };
    }
    this.log.append(entries);
    return entries;
  }

  // -------------------------------------------------------------------------------------------
  // Commit (any role): apply committed membership changes and release read states

  commitTo(index: number): void {
    if (index <= this.log.commit) return;
    assert(index <= this.log.lastIndex(), `commit ${index} beyond the log`);
    const from = this.log.commit;
    this.log.commit = index as LogIndex;
    commitMembershipChanges(this, from);
  }

  /** Read states whose index is applied. */
  releaseReads(): void {
    const w = this.reads.waitingApply;
    if (w.length === 0) return;
    let k = 0;
    while (k < w.length && w[k]!.index <= this.log.applied) {
      this.readStates.push(w[k]!);
      k++;
    }
    if (k > 0) w.splice(0, k);
  }
}
