/**
 * Log replication: proposals, pipelined and batched appends, follower append handling, commit at a
 * majority of voters (only entries of the current term directly), heartbeats, check-quorum and the
 * fsync-stall step-down.
 */
import { TesseraError } from '../lib/errors.js';
import type { LogIndex, NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Core } from './core.js';
import { maybeSendTimeoutNow } from './election.js';
import type { Progress } from './progress.js';
import { quorumSize, quorumValue } from './quorum.js';
import { confirmRounds, readsNeedRound, startRound } from './read.js';
import { sendSnapshot } from './snapshot.js';
import type { AppendMsg, AppendRespMsg, HeartbeatMsg, HeartbeatRespMsg, ProposeResult } from './types.js';

export function propose(c: Core, commands: readonly Uint8Array[], wallNs: bigint): ProposeResult {
  if (c.role !== 'leader') return { ok: false, error: c.notLeader('propose') };
  if (c.transfer !== null) {
    return { ok: false, error: new TesseraError('UNAVAILABLE', 'leadership transfer in progress') };
  }
  const uncommitted = c.log.lastIndex() - c.log.commit;
  if (uncommitted + commands.length > c.t.uncommittedMax) {
    return { ok: false, error: new TesseraError('TOO_MANY_REQUESTS', 'too many uncommitted entries') };
  }
  for (const d of commands) {
    if (d.length > limits.consensusEntryBytesMax) {
      return { ok: false, error: new TesseraError('RECORD_TOO_LARGE', `command of ${d.length} bytes`) };
    }
  }
  c.wallNs = wallNs;
  const entries = c.appendLocal('command', commands, wallNs);
  const seqs = entries.map((e) => e.seq);
  return { ok: true, term: c.term, firstIndex: (c.log.lastIndex() - entries.length + 1) as LogIndex, seqs };
}

// ---------------------------------------------------------------------------------------------
// Leader side

/** Called at ready(): send what each peer can take now (batches form by themselves). */
export function flushLeader(c: Core): void {
  if (c.role !== 'leader') return;
  maybeCommit(c);
  if (c.role !== 'leader') return;
  for (const pr of c.prs.values()) {
    while (pr.canSend(c.t.inflightMax) && sendAppend(c, pr)) {}
  }
  if (readsNeedRound(c)) startRound(c);
}

/** True when a flush would send something. */
export function leaderHasWork(c: Core): boolean {
  if (c.role !== 'leader') return false;
  if (readsNeedRound(c)) return true;
  const last = c.log.lastIndex();
  for (const pr of c.prs.values()) {
    if (!pr.canSend(c.t.inflightMax)) continue;
    if (pr.state === 'probe' || pr.next <= last || pr.sentCommit < c.log.commit) return true;
  }
  return false;
}

/** Send one append to `pr`; true if the peer may take another one right away. */
function sendAppend(c: Core, pr: Progress): boolean {
  const log = c.log;
  const last = log.lastIndex();
  if (pr.state === 'replicate' && pr.next > last && pr.sentCommit >= log.commit) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = log.term(prevIndex);
  if (prevTerm === undefined) {
    sendSnapshot(c, pr);
    return false;
  }
  const entries = pr.next <= last ? log.slice(pr.next, last, c.t.batchBytesMax) : [];
  const m: AppendMsg = {
    type: 'append',
    group: c.group,
    from: c.id,
    to: pr.id,
    term: c.term,
    prevIndex: prevIndex as LogIndex,
    prevTerm,
    commit: log.commit,
    entries,
  };
  c.send(m);
  pr.sentCommit = log.commit;
  if (pr.state === 'probe') {
    pr.probeSent = true;
    return false;
  }
  if (entries.length === 0) return false;
  pr.next = entries[entries.length - 1]!.index + 1;
  pr.inflight.push(pr.next - 1);
  return true;
}

export function maybeCommit(c: Core): void {
  if (c.role !== 'leader') return;
  let q: number;
  if (c.bugs.has('commit-without-majority')) {
    q = c.log.lastIndex();
  } else {
    const matches: number[] = [];
    for (const v of c.voters()) matches.push(v === c.id ? c.log.persisted : (c.prs.get(v)?.match ?? 0));
    if (matches.length === 0) return;
    q = quorumValue(matches);
  }
  if (q > c.log.commit && c.log.term(q) === c.term) c.commitTo(q);
}

export function handleAppendResp(c: Core, m: AppendRespMsg): void {
  const pr = c.prs.get(m.from);
  if (pr === undefined) return;
  pr.lastAckMs = c.nowMs;
  if (m.reject) {
    if (pr.state === 'replicate' && m.index > pr.match) pr.becomeProbe(Math.min(m.index, m.hint + 1));
    else if (pr.state === 'probe' && m.index === pr.next - 1) pr.becomeProbe(Math.min(m.index, m.hint + 1));
    return;
  }
  if (m.index > c.log.lastIndex()) return; // not from this leader's log
  if (m.index > pr.match) pr.match = m.index;
  if (pr.state === 'probe') pr.becomeReplicate();
  else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeReplicate();
  else if (pr.state === 'replicate') {
    pr.freeTo(m.index);
    if (pr.next <= pr.match) pr.next = pr.match + 1;
  }
  maybeCommit(c);
  maybeSendTimeoutNow(c);
}

export function handleHeartbeatResp(c: Core, m: HeartbeatRespMsg): void {
  const pr = c.prs.get(m.from);
  if (pr === undefined) return;
  pr.lastAckMs = c.nowMs;
  if (m.round > pr.ackedRound && m.round <= c.reads.round) pr.ackedRound = m.round;
  confirmRounds(c);
  // Liveness: resume a probe; re-probe a stream that stopped moving (lost appends or answers).
  const stuck = pr.match < c.log.lastIndex() && pr.match === pr.matchAtLastHeartbeat;
  if (pr.state === 'probe') pr.probeSent = false;
  else if (pr.state === 'replicate' && stuck) pr.becomeProbe(pr.match + 1);
  else if (pr.state === 'snapshot' && c.nowMs - pr.snapshotSentMs >= 2 * c.t.electionTimeoutMs) {
    pr.becomeProbe(pr.match + 1);
  }
  pr.matchAtLastHeartbeat = pr.match;
}

/** Check-quorum: a majority of voters (itself included) was heard from within the election timeout. */
function quorumActive(c: Core): boolean {
  const since = c.nowMs - c.t.electionTimeoutMs;
  let active = 0;
  for (const v of c.voters()) {
    if (v === c.id || (c.prs.get(v)?.lastAckMs ?? -Infinity) > since) active++;
  }
  return active >= quorumSize(c.voters().length);
}

/** Leader timers (every tick): check-quorum, fsync stall, transfer deadline, heartbeat rounds. */
export function tickLeader(c: Core): void {
  if (c.role !== 'leader') return;
  const oldest = c.unpersisted[0];
  const stalled = oldest !== undefined && c.nowMs - oldest.ms > c.t.fsyncStallMaxMs;
  if (!quorumActive(c) || stalled) {
    c.becomeFollower(c.term, 0 as NodeId);
    return;
  }
  if (c.transfer !== null && c.nowMs >= c.transfer.deadlineMs) c.transfer = null;
  if (c.nowMs - c.lastHeartbeatMs >= c.t.heartbeatIntervalMs) startRound(c);
}

// ---------------------------------------------------------------------------------------------
// Follower side

function reply(c: Core, m: AppendMsg | HeartbeatMsg, reject: boolean, index: number, hint: number): void {
  c.sendAfterPersist(c.appendResp(m.from, reject, index as LogIndex, hint as LogIndex));
}

/** An append from the leader of our term (or, with the planted bug, from a stale one). */
export function handleAppend(c: Core, m: AppendMsg): void {
  const log = c.log;
  const stale = m.term < c.term;
  if (!stale) c.lastLeaderContactMs = c.nowMs;
  let prevIndex: number = m.prevIndex;
  let prevTerm: number = m.prevTerm;
  let entries = m.entries;
  if (prevIndex < log.commit && !stale) {
    // The committed prefix matches every leader's log: skip the overlap.
    const skip = log.commit - prevIndex;
    if (skip >= entries.length) {
      reply(c, m, false, log.commit, 0);
      return;
    }
    entries = entries.slice(skip);
    prevIndex = log.commit;
    prevTerm = log.term(prevIndex)!;
  }
  if (prevIndex < log.snap.index || log.term(prevIndex) !== prevTerm) {
    reply(c, m, true, m.prevIndex, conflictHint(c, prevIndex));
    return;
  }
  const lastNew = log.appendAfter(prevIndex, entries, stale);
  const lastEntry = entries[entries.length - 1];
  if (lastEntry !== undefined && !c.bugs.has('no-new-leader-seq-observe')) c.seqr.observe(lastEntry.seq);
  if (!stale) c.commitTo(Math.min(m.commit, lastNew));
  reply(c, m, false, lastNew, 0);
}

/** Where the leader should probe next: before the run of the conflicting term (above commit). */
function conflictHint(c: Core, prevIndex: number): number {
  const log = c.log;
  if (prevIndex > log.lastIndex()) return log.lastIndex();
  const t = log.term(prevIndex);
  let i = prevIndex - 1;
  while (i > log.commit && log.term(i) === t) i--;
  return Math.max(i, log.commit);
}

export function handleHeartbeat(c: Core, m: HeartbeatMsg): void {
  c.lastLeaderContactMs = c.nowMs;
  c.commitTo(Math.min(m.commit, c.log.lastIndex()));
  const r: HeartbeatRespMsg = {
    type: 'heartbeatResp',
    group: c.group,
    from: c.id,
    to: m.from,
    term: c.term,
    round: m.round,
  };
  c.sendAfterPersist(r);
}
