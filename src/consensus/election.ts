/**
 * Elections: pre-vote then vote, the voting rules (log at least as up-to-date, leader stickiness
 * unless a transfer), election timeouts ('self' mode, and 'directed' mode's fallback), and
 * leadership transfer (timeoutNow once the target caught up).
 */
import { TesseraError } from '../lib/errors.js';
import { type NodeId, type Term, term as toTerm } from '../lib/ids.js';
import type { Core } from './core.js';
import { quorumSize } from './quorum.js';
import type { OpResult, VoteMsg, VoteRespMsg } from './types.js';

/** Directed campaign (from the metadata manager): pre-vote, then vote at > max(term, minTerm). */
export function campaign(c: Core, minTerm: Term): OpResult {
  if (!c.isVoter()) {
    return { ok: false, error: new TesseraError('UNAVAILABLE', `replica ${c.id} is not a voter`) };
  }
  if (c.role === 'leader') return { ok: true };
  // Already campaigning for the ordered term (a repeated order): let that campaign go on.
  if ((c.role === 'precandidate' || c.role === 'candidate') && c.campaignTerm >= minTerm) return { ok: true };
  if (c.inLeaderLease()) {
    // It acknowledged a live leader recently (whose lease may rest on that): it must not vote for
    // itself either. The metadata manager moves a live leader with a leadership transfer. The order
    // is kept for one election timeout and starts at the first tick the stickiness is over.
    c.pendingCampaign = { minTerm, untilMs: c.nowMs + c.t.electionTimeoutMs };
    return {
      ok: false,
      error: new TesseraError('UNAVAILABLE', `replica ${c.id} still hears from leader ${c.leader}`),
    };
  }
  c.pendingCampaign = null;
  startPreVote(c, toTerm(Math.max(c.term + 1, minTerm)));
  return { ok: true };
}

/** A campaign order kept while stickiness held: start it now, drop it, or keep waiting. */
function tickPendingCampaign(c: Core): void {
  const p = c.pendingCampaign;
  if (p === null) return;
  const superseded = c.leader !== 0 && c.term >= p.minTerm;
  if (c.nowMs >= p.untilMs || c.role !== 'follower' || superseded || !c.isVoter()) {
    c.pendingCampaign = null;
    return;
  }
  if (c.inLeaderLease()) return;
  c.pendingCampaign = null;
  startPreVote(c, toTerm(Math.max(c.term + 1, p.minTerm)));
}

/**
 * Sends (pre-)vote requests to the other voters; with `missingOnly`, only to those that have not
 * granted this campaign (a re-ask: a voter may have refused while its stickiness still held).
 */
function requestVotes(c: Core, pre: boolean, missingOnly = false): void {
  const base = {
    type: 'vote' as const,
    group: c.group,
    from: c.id,
    term: c.campaignTerm,
    pre,
    transfer: c.campaignTransfer,
    lastIndex: c.log.lastIndex(),
    lastTerm: c.log.lastTerm(),
  };
  c.votesSentMs = c.nowMs;
  for (const v of c.voters()) {
    if (v === c.id || (missingOnly && c.votes.get(v) === true)) continue;
    // A real vote request goes out once this replica's own term and vote are durable.
    if (pre) c.send({ ...base, to: v });
    else c.msgsAfterPersist.push({ ...base, to: v });
  }
}

export function startPreVote(c: Core, t: Term): void {
  c.role = 'precandidate';
  c.leader = 0 as NodeId;
  c.campaignTerm = t;
  c.campaignTransfer = false;
  c.campaignStartMs = c.nowMs;
  c.votes = new Map([[c.id, true]]);
  c.resetElectionDeadline();
  if (tally(c).granted >= quorumSize(c.voters().length)) {
    startVote(c, t, false);
    return;
  }
  requestVotes(c, true);
}

export function startVote(c: Core, t: Term, transfer: boolean): void {
  c.becomeFollower(t, 0 as NodeId);
  c.role = 'candidate';
  c.vote = c.id;
  c.campaignTerm = t;
  c.campaignTransfer = transfer;
  c.campaignStartMs = c.nowMs;
  c.votes = new Map([[c.id, true]]);
  if (tally(c).granted >= quorumSize(c.voters().length)) {
    c.becomeLeader();
    return;
  }
  requestVotes(c, false);
}

function tally(c: Core): { granted: number; rejected: number } {
  let granted = 0;
  let rejected = 0;
  for (const v of c.voters()) {
    const g = c.votes.get(v);
    if (g === true) granted++;
    else if (g === false) rejected++;
  }
  return { granted, rejected };
}

/** A (pre-)vote request; the caller already handled terms (a higher-term real vote made us follow). */
export function handleVote(c: Core, m: VoteMsg): void {
  const reply = (granted: boolean, term: Term): void => {
    const r: VoteRespMsg = {
      type: 'voteResp',
      group: c.group,
      from: c.id,
      to: m.from,
      term,
      pre: m.pre,
      granted,
    };
    c.sendAfterPersist(r);
  };
  if (m.term < c.term) {
    reply(false, c.term);
    return;
  }
  const logOk = c.bugs.has('vote-without-log-check') || c.log.isUpToDate(m.lastIndex, m.lastTerm);
  const sticky = !m.transfer && c.inLeaderLease() && c.leader !== m.from;
  if (!m.pre && m.term > c.term) {
    reply(false, c.term); // sticky: the caller kept our term
    return;
  }
  if (m.pre) {
    const ok = m.term > c.term && logOk && !sticky && mayVote(c);
    reply(ok, ok ? m.term : c.term);
    return;
  }
  const canVote = c.vote === m.from || (c.vote === 0 && c.leader === 0);
  if (canVote && logOk && mayVote(c)) {
    c.vote = m.from;
    c.resetElectionDeadline();
    reply(true, c.term);
    return;
  }
  reply(false, c.term);
}

/**
 * Whether this replica answers (pre-)votes. A replica that believes it is a learner still votes
 * (as etcd does): a candidate asks only replicas that are voters in ITS view, which means the
 * promotion is committed and this replica has not applied it yet. Without this, a group whose
 * leader committed its own removal could be left unable to elect (simulator seed 56
 * --remove-leaders). A removed replica never votes. The candidate counts only its own voters.
 */
function mayVote(c: Core): boolean {
  return !c.ms.removed;
}

export function handleVoteResp(c: Core, m: VoteRespMsg): void {
  const campaigning = m.pre ? c.role === 'precandidate' : c.role === 'candidate';
  if (!campaigning) return;
  if (!m.granted && m.term > c.term) {
    c.becomeFollower(m.term, 0 as NodeId);
    return;
  }
  if (m.granted && m.term !== c.campaignTerm) return; // a stale answer
  c.votes.set(m.from, m.granted);
  const { granted, rejected } = tally(c);
  const q = quorumSize(c.voters().length);
  if (granted >= q) {
    if (m.pre) startVote(c, c.campaignTerm, false);
    else c.becomeLeader();
  } else if (rejected >= q) {
    c.becomeFollower(c.term, 0 as NodeId);
  }
}

/** Election timers: 'self' mode campaigns after a randomized timeout; 'directed' after the fallback. */
export function tickElection(c: Core): void {
  if (c.role === 'leader' || !c.isVoter()) return;
  const et = c.t.electionTimeoutMs;
  if (c.role === 'precandidate' || c.role === 'candidate') {
    if (c.nowMs - c.campaignStartMs < et) {
      // Bounded by the campaign's window: re-ask the voters that have not granted it yet.
      if (c.nowMs - c.votesSentMs >= c.t.voteRetryMs) requestVotes(c, c.role === 'precandidate', true);
      return;
    }
    // The campaign did not win in time: give up (directed) or let the timer retry (self).
    c.becomeFollower(c.term, 0 as NodeId);
    return;
  }
  tickPendingCampaign(c);
  if (c.role !== 'follower') return;
  const last = Math.max(c.lastLeaderContactMs, c.electionResetMs);
  if (c.nowMs - last >= c.electionRandMs) startPreVote(c, toTerm(c.term + 1));
}

// ---------------------------------------------------------------------------------------------
// Leadership transfer

export function transferLeadership(c: Core, to: NodeId): OpResult {
  if (c.role !== 'leader') return { ok: false, error: c.notLeader('transfer') };
  if (to === c.id) return { ok: true };
  const pr = c.prs.get(to);
  if (pr === undefined || !pr.voter) {
    return { ok: false, error: new TesseraError('BAD_REQUEST', `node ${to} is not a voter of this group`) };
  }
  if (c.transfer !== null) {
    return {
      ok: false,
      error: new TesseraError('UNAVAILABLE', 'a leadership transfer is already in progress'),
    };
  }
  c.transfer = { to, deadlineMs: c.nowMs + c.t.electionTimeoutMs, sent: false };
  maybeSendTimeoutNow(c);
  return { ok: true };
}

/** Send timeoutNow once the target has the whole log; from then on the lease is void. */
export function maybeSendTimeoutNow(c: Core): void {
  const tr = c.transfer;
  if (tr === null || tr.sent) return;
  const pr = c.prs.get(tr.to);
  if (pr === undefined || pr.match < c.log.lastIndex()) return;
  tr.sent = true;
  c.reads.leaseFloorRound = c.reads.round;
  c.reads.leaseUntilMs = 0;
  c.send({ type: 'timeoutNow', group: c.group, from: c.id, to: tr.to, term: c.term });
}

export function handleTimeoutNow(c: Core): void {
  if (!c.isVoter() || c.role === 'leader') return;
  startVote(c, toTerm(c.term + 1), true);
}
