/**
 * Linearizable reads on the leader: a lease (renewed by majority-acknowledged heartbeat rounds,
 * starting when the round is sent) or a read-index round. Heartbeat rounds are numbered; a peer's
 * answer to round r confirms every round <= r.
 */
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Core } from './core.js';
import { quorumValue } from './quorum.js';
import type { ReadResult, ReadState } from './types.js';

interface PendingRead {
  readonly ctx: number;
  /** Assigned when its round starts (the commit index then). */
  index: number;
  /** 0 = waiting for a round to start. */
  round: number;
}

export interface ReadTracker {
  pending: PendingRead[];
  /** Confirmed reads waiting for applied >= index. */
  waitingApply: ReadState[];
  round: number;
  roundSentMs: Map<number, number>;
  confirmedRound: number;
  leaseUntilMs: number;
  /** Rounds <= this never grant a lease (a timeoutNow was sent after them). */
  leaseFloorRound: number;
}

export function newReadTracker(): ReadTracker {
  return {
    pending: [],
    waitingApply: [],
    round: 0,
    roundSentMs: new Map(),
    confirmedRound: 0,
    leaseUntilMs: 0,
    leaseFloorRound: 0,
  };
}

export function failAllReads(c: Core, error: TesseraError): void {
  const r = c.reads;
  for (const p of r.pending) c.failedReads.push({ ctx: p.ctx, error });
  for (const p of r.waitingApply) c.failedReads.push({ ctx: p.ctx, error });
  r.pending = [];
  r.waitingApply = [];
  r.leaseUntilMs = 0;
}

/** The lease is usable at monoMs. */
export function leaseValid(c: Core, monoMs: number): boolean {
  if (c.role !== 'leader' || c.transfer !== null || !c.committedInTerm()) return false;
  if (c.bugs.has('lease-read-without-lease')) return true;
  return Math.max(monoMs, c.nowMs) < c.reads.leaseUntilMs;
}

export function read(c: Core, ctx: number, monoMs: number): ReadResult {
  c.advanceTime(monoMs);
  if (c.role !== 'leader') return { ok: false, error: c.notLeader('read') };
  if (c.transfer !== null) {
    return { ok: false, error: new TesseraError('UNAVAILABLE', 'leadership transfer in progress') };
  }
  const r = c.reads;
  if (r.pending.length + r.waitingApply.length >= limits.proposalQueueMax) {
    return { ok: false, error: new TesseraError('TOO_MANY_REQUESTS', 'too many reads in flight') };
  }
  if (leaseValid(c, monoMs)) {
    r.waitingApply.push({ ctx, index: c.log.commit, via: 'lease' });
    c.releaseReads();
  } else {
    r.pending.push({ ctx, index: 0, round: 0 });
  }
  return { ok: true };
}

/**
 * A read that may be served at once, with no ReadState: the lease is valid at monoMs and the driver
 * has applied everything committed, so the state machine already holds every write acknowledged
 * before the read (the conditions a lease read's ReadState meets, checked now instead of in a later
 * Ready). False: use read().
 */
export function readNow(c: Core, monoMs: number): boolean {
  c.advanceTime(monoMs);
  return leaseValid(c, monoMs) && c.log.applied >= c.log.commit;
}

/** Reads that need a round and can get one (the leader committed an entry of its term). */
export function readsNeedRound(c: Core): boolean {
  const p = c.reads.pending;
  return p.length > 0 && p[p.length - 1]!.round === 0 && c.committedInTerm();
}

/** Start a heartbeat round: confirms leadership for reads and renews the lease. */
export function startRound(c: Core): void {
  const r = c.reads;
  r.round++;
  r.roundSentMs.set(r.round, c.nowMs);
  if (r.roundSentMs.size > limits.heartbeatRoundsTrackedMax) {
    const oldest = r.roundSentMs.keys().next().value;
    if (oldest !== undefined) r.roundSentMs.delete(oldest);
  }
  if (c.committedInTerm()) {
    for (const p of r.pending) {
      if (p.round !== 0) continue;
      p.round = r.round;
      p.index = c.log.commit;
    }
  }
  c.lastHeartbeatMs = c.nowMs;
  for (const pr of c.prs.values()) {
    const commit = Math.min(c.log.commit, pr.match);
    c.send({
      type: 'heartbeat',
      group: c.group,
      from: c.id,
      to: pr.id,
      term: c.term,
      commit: commit as never,
      round: r.round,
    });
  }
  confirmRounds(c);
}

/** Recompute the round a majority of voters acknowledged; extend the lease; release reads. */
export function confirmRounds(c: Core): void {
  const r = c.reads;
  const acks: number[] = [];
  for (const v of c.voters()) {
    if (v === c.id) acks.push(r.round);
    else acks.push(c.prs.get(v)?.ackedRound ?? 0);
  }
  if (acks.length === 0) return;
  const q = quorumValue(acks);
  if (q <= r.confirmedRound) return;
  r.confirmedRound = q;
  const sent = r.roundSentMs.get(q);
  if (sent !== undefined && q > r.leaseFloorRound && c.transfer === null) {
    const until = sent + c.t.electionTimeoutMs - c.t.leaseDriftMarginMs;
    if (until > r.leaseUntilMs) r.leaseUntilMs = until;
  }
  for (const k of r.roundSentMs.keys()) {
    if (k >= q) break;
    r.roundSentMs.delete(k);
  }
  let n = 0;
  while (n < r.pending.length && r.pending[n]!.round !== 0 && r.pending[n]!.round <= q) {
    const p = r.pending[n]!;
    r.waitingApply.push({ ctx: p.ctx, index: p.index as never, via: 'read-index' });
    n++;
  }
  if (n > 0) r.pending.splice(0, n);
  c.releaseReads();
}
