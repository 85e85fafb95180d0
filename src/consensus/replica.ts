/**
 * The public facade of the consensus core (etcd's RawNode): inputs (tick, step, propose, campaign,
 * read, transfer, compaction, acknowledgements) and the Ready structure the driver drains.
 * The driver loop is in docs/consensus.md.
 */
import { assert } from '../lib/assert.js';
import type { LogIndex, NodeId, Term } from '../lib/ids.js';
import { Core } from './core.js';
import {
  campaign,
  handleTimeoutNow,
  handleVote,
  handleVoteResp,
  tickElection,
  transferLeadership,
} from './election.js';
import { proposeMembership } from './membership.js';
import { read, readNow } from './read.js';
import {
  flushLeader,
  handleAppend,
  handleAppendResp,
  handleHeartbeat,
  handleHeartbeatResp,
  leaderHasWork,
  maybeCommit,
  propose,
  tickLeader,
} from './replication.js';
import { compact, handleSnapshot, metaAt, reportSnapshot } from './snapshot.js';
import type {
  Message,
  MembershipChange,
  OpResult,
  ProposeResult,
  Ready,
  ReadResult,
  ReplicaConfig,
  ReplicaStatus,
  RestoredState,
  SnapshotMeta,
} from './types.js';

export class Replica {
  private readonly c: Core;
  private readyNumber = 0;

  constructor(config: ReplicaConfig, restored?: RestoredState) {
    this.c = new Core(config, restored);
  }

  get id(): NodeId {
    return this.c.id;
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  /** Advance time (monotonic ms and wall ns, both from the driver) and run the timers. */
  tick(monoMs: number, wallNs: bigint): void {
    const c = this.c;
    c.advanceTime(monoMs, wallNs);
    if (c.role === 'leader') tickLeader(c);
    else tickElection(c);
  }

  /** A message from a peer. Stale terms are rejected; a higher term makes us follow it. */
  step(m: Message): void {
    const c = this.c;
    if (m.group !== c.group || m.to !== c.id || m.from === c.id) return;
    if (m.term > c.term) {
      if (m.type === 'vote') {
        const sticky = !m.transfer && c.inLeaderLease();
        if (!m.pre && !sticky) c.becomeFollower(m.term, 0 as NodeId);
      } else if (!(m.type === 'voteResp' && m.pre && m.granted)) {
        const lead = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : 0;
        c.becomeFollower(m.term, lead as NodeId);
      }
    } else if (m.term < c.term) {
      this.stepStale(m);
      return;
    }
    this.dispatch(m);
  }

  private stepStale(m: Message): void {
    const c = this.c;
    if (m.type === 'append' && c.bugs.has('accept-stale-term-append') && c.role !== 'leader') {
      handleAppend(c, m);
    } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      // Tell the stale leader about the newer term so it steps down.
      c.send(c.appendResp(m.from, true, 0 as LogIndex, c.log.lastIndex()));
    } else if (m.type === 'vote') {
      handleVote(c, m);
    }
  }

  private dispatch(m: Message): void {
    const c = this.c;
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        if (c.role === 'leader') return; // another leader in our term: impossible
        if (c.role !== 'follower' || c.leader !== m.from) c.becomeFollower(c.term, m.from);
        if (m.type === 'append') handleAppend(c, m);
        else if (m.type === 'heartbeat') handleHeartbeat(c, m);
        else handleSnapshot(c, m);
        return;
      case 'appendResp':
        if (c.role === 'leader') handleAppendResp(c, m);
        return;
      case 'heartbeatResp':
        if (c.role === 'leader') handleHeartbeatResp(c, m);
        return;
      case 'vote':
        handleVote(c, m);
        return;
      case 'voteResp':
        handleVoteResp(c, m);
        return;
      case 'timeoutNow':
        handleTimeoutNow(c);
        return;
    }
  }

  /** Leader: append one entry per command, each with a fresh seq. */
  propose(commands: readonly Uint8Array[], wallNs: bigint): ProposeResult {
    return propose(this.c, commands, wallNs);
  }

  proposeMembership(change: MembershipChange, wallNs: bigint): ProposeResult {
    return proposeMembership(this.c, change, wallNs);
  }

  /** Directed election: pre-vote, then vote at a term above max(own term, minTerm). */
  campaign(minTerm: Term): OpResult {
    return campaign(this.c, minTerm);
  }

  /**
   * A linearizable read served now: true when the lease is valid at monoMs and everything committed
   * is applied (the caller reads its state machine at once); false: call read().
   */
  readNow(monoMs: number): boolean {
    return readNow(this.c, monoMs);
  }

  /** Linearizable read: a ReadState for ctx appears in a later Ready (or a FailedRead). */
  read(ctx: number, monoMs: number): ReadResult {
    return read(this.c, ctx, monoMs);
  }

  transferLeadership(to: NodeId): OpResult {
    return transferLeadership(this.c, to);
  }

  /** The state machine holds `index` durably (index <= applied): drop the log up to it. */
  compact(index: LogIndex): OpResult {
    return compact(this.c, index);
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    reportSnapshot(this.c, to, ok);
  }

  // -------------------------------------------------------------------------------------------
  // Outputs and acknowledgements

  hasReady(): boolean {
    const c = this.c;
    const hs = c.prevHard;
    const ss = c.prevSoft;
    return (
      c.msgs.length > 0 ||
      c.msgsAfterPersist.length > 0 ||
      c.log.hasUnstable() ||
      c.snapshotToInstall !== null ||
      hs.term !== c.term ||
      hs.vote !== c.vote ||
      hs.commit !== c.log.commit ||
      ss.role !== c.role ||
      ss.leader !== c.leader ||
      ss.term !== c.term ||
      ss.removed !== c.ms.removed ||
      c.log.hasCommitted() ||
      c.readStates.length > 0 ||
      c.failedReads.length > 0 ||
      c.log.hasDropped() ||
      leaderHasWork(c)
    );
  }

  ready(): Ready {
    const c = this.c;
    flushLeader(c);
    const number = ++this.readyNumber;
    const snapshot = c.snapshotToInstall;
    if (snapshot !== null) c.log.markSnapshot(number, snapshot);
    const entries = c.log.takeUnstable(number);
    const hs = c.hardState();
    const ph = c.prevHard;
    const hardChanged = hs.term !== ph.term || hs.vote !== ph.vote || hs.commit !== ph.commit;
    const ss = c.softState();
    const ps = c.prevSoft;
    const softChanged =
      ss.role !== ps.role || ss.leader !== ps.leader || ss.term !== ps.term || ss.removed !== ps.removed;
    c.prevHard = hs;
    c.prevSoft = ss;
    const committed = c.log.takeCommitted();
    c.releaseReads();
    if (
      entries.length > 0 ||
      snapshot !== null ||
      (hardChanged && (hs.term !== ph.term || hs.vote !== ph.vote))
    ) {
      c.unpersisted.push({ number, ms: c.nowMs });
    }
    const rd: Ready = {
      number,
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      snapshot,
      entries,
      messages: c.msgs,
      messagesAfterPersist: c.msgsAfterPersist,
      committed,
      readStates: c.readStates,
      failedReads: c.failedReads,
      dropped: c.log.takeDropped(),
    };
    c.snapshotToInstall = null;
    c.msgs = [];
    c.msgsAfterPersist = [];
    c.readStates = [];
    c.failedReads = [];
    return rd;
  }

  /** Everything persistable in the Readys numbered <= readyNumber is durable. */
  persisted(readyNumber: number): void {
    const c = this.c;
    assert(readyNumber <= this.readyNumber, `persisted(${readyNumber}): no such Ready`);
    const u = c.unpersisted;
    let k = 0;
    while (k < u.length && u[k]!.number <= readyNumber) k++;
    if (k > 0) u.splice(0, k);
    if (c.log.markPersisted(readyNumber)) maybeCommit(c);
  }

  /** The state machine applied every committed entry through `index`. */
  applied(index: LogIndex): void {
    const c = this.c;
    assert(index <= c.log.handedOut, `applied(${index}) beyond what was handed out (${c.log.handedOut})`);
    if (index > c.log.applied) c.log.applied = index;
    c.releaseReads();
  }

  /** The current snapshot / compaction point (the log starts after it), for the driver to persist. */
  snapshotMeta(): SnapshotMeta {
    return this.c.log.snap;
  }

  /**
   * The state machine's description at the index last reported with applied(): for a driver whose
   * snapshot capture runs after more applies than when the snapshot message was emitted.
   */
  appliedMeta(): SnapshotMeta {
    return metaAt(this.c, this.c.log.applied);
  }

  status(): ReplicaStatus {
    const c = this.c;
    const peers = [...c.prs.values()].map((p) => ({
      id: p.id,
      voter: p.voter,
      match: p.match as LogIndex,
      next: p.next as LogIndex,
      state: p.state,
      lastAckMs: p.lastAckMs,
    }));
    return {
      id: c.id,
      group: c.group,
      role: c.role,
      term: c.term,
      leader: c.leader,
      commit: c.log.commit,
      applied: c.log.applied,
      lastIndex: c.log.lastIndex(),
      lastTerm: c.log.lastTerm(),
      firstIndex: c.log.firstIndex(),
      persistedIndex: c.log.persisted,
      membership: c.ms.membership,
      removed: c.ms.removed,
      leaseUntilMs: c.reads.leaseUntilMs,
      peers,
    };
  }
}
