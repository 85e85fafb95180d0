/**
 * Leader management for one group: recognise a live, healthy leader (and have the catalog follow
 * it), doubt it (deep check), or, when there is none, pick the healthy voter with the most
 * up-to-date log and order it to campaign above every term seen. Pure.
 */
import type { GroupId, NodeId, Term } from '../lib/ids.js';
import { term as toTerm } from '../lib/ids.js';
import type { GroupRecord } from '../metadata/types.js';
import { isHealthy, liveHeartbeat } from './liveness.js';
import type {
  CampaignOrder,
  CampaignReason,
  ControlAction,
  ControlInput,
  ControlMemory,
  DeepCheck,
  DoubtReason,
  ReplicaReport,
} from './types.js';

export interface LeaderInfo {
  readonly node: NodeId;
  readonly report: ReplicaReport;
}

export interface GroupAnalysis {
  readonly group: GroupRecord;
  /** Reports of live members for this group, by node. */
  readonly reports: ReadonlyMap<NodeId, ReplicaReport>;
  /** Highest term known: the catalog's and every member's last report (live or not). */
  readonly maxTerm: number;
  /** A live, healthy leader that passed (or is not failing) its checks. */
  readonly leader: LeaderInfo | null;
  /** Why there is no valid leader (null when there is one). */
  readonly reason: CampaignReason | null;
  /** The leader that claims the role but is not valid (unhealthy or failed its check). */
  readonly deposed: NodeId | null;
}

export interface MutableMemory {
  campaigns: Map<GroupId, CampaignOrder>;
  deepChecks: Map<GroupId, DeepCheck>;
}

function checkFailed(input: ControlInput, check: DeepCheck | undefined, claim: LeaderInfo): boolean {
  if (check === undefined || check.leader !== claim.node || check.term !== claim.report.term) return false;
  if (check.ok === false) return true;
  return check.ok === null && input.nowMs - check.requestedAtMs > input.config.deepCheckTimeoutMs;
}

/** The live voter claiming leadership at the highest term (lowest id on a tie). */
function claimedLeader(g: GroupRecord, reports: ReadonlyMap<NodeId, ReplicaReport>): LeaderInfo | null {
  let best: LeaderInfo | null = null;
  for (const m of g.members) {
    const r = reports.get(m.node);
    if (m.role !== 'voter' || r === undefined || r.role !== 'leader') continue;
    if (best === null || r.term > best.report.term) best = { node: m.node, report: r };
  }
  return best;
}

export function analyzeGroup(input: ControlInput, g: GroupRecord, memory: MutableMemory): GroupAnalysis {
  const reports = new Map<NodeId, ReplicaReport>();
  let maxTerm: number = g.term;
  for (const m of g.members) {
    // Terms count from every report, even a silent node's last one: a campaign goes above them all.
    const r = input.heartbeats.get(m.node)?.replicas.find((x) => x.group === g.id);
    if (r === undefined) continue;
    maxTerm = Math.max(maxTerm, r.term);
    if (liveHeartbeat(input, m.node) !== undefined) reports.set(m.node, r);
  }
  const base = { group: g, reports, maxTerm };
  const claim = claimedLeader(g, reports);
  // One leader per term: a claim at the catalog's term by another node than its leader is not
  // believed (a campaign at a higher term settles it).
  const believable =
    claim !== null &&
    (claim.report.term > g.term ||
      (claim.report.term === g.term && (g.leader === null || g.leader === claim.node)));
  if (claim !== null && believable) {
    if (!isHealthy(input, claim.node))
      return { ...base, leader: null, reason: 'leader-unhealthy', deposed: claim.node };
    if (checkFailed(input, memory.deepChecks.get(g.id), claim)) {
      return { ...base, leader: null, reason: 'leader-failed-check', deposed: claim.node };
    }
    return { ...base, leader: claim, reason: null, deposed: null };
  }
  let reason: CampaignReason = 'no-leader';
  if (g.term === 0 && g.leader === null && maxTerm === 0) reason = 'new-group';
  else if (g.leader !== null && liveHeartbeat(input, g.leader) === undefined)
    reason = 'leader-missed-heartbeats';
  return { ...base, leader: null, reason, deposed: null };
}

function doubtOf(input: ControlInput, a: GroupAnalysis, leader: LeaderInfo): DoubtReason | null {
  const hb = liveHeartbeat(input, leader.node);
  if (hb === undefined) return null;
  if (input.nowMs - hb.lastSeenMs > 2 * input.config.heartbeatIntervalMs) return 'leader-late';
  if (hb.health.stalled) return 'leader-stalled';
  if (a.maxTerm > leader.report.term) return 'higher-term-seen';
  return null;
}

/** A deep check is due unless one runs for this leader, or one passed not long ago. */
function deepCheckDue(input: ControlInput, check: DeepCheck | undefined, leader: LeaderInfo): boolean {
  if (check === undefined || check.leader !== leader.node || check.term !== leader.report.term) return true;
  if (check.ok === null) return false;
  return check.ok === true && input.nowMs - (check.doneAtMs ?? 0) >= input.config.deepCheckIntervalMinMs;
}

/** Actions for a group that has a valid leader: record it, doubt it. */
function leaderPresent(
  input: ControlInput,
  a: GroupAnalysis,
  leader: LeaderInfo,
  memory: MutableMemory,
  inGrace: boolean,
): ControlAction[] {
  const out: ControlAction[] = [];
  const g = a.group;
  const t = leader.report.term;
  if (g.leader !== leader.node || g.term !== t) {
    const command = { type: 'setGroupLeader' as const, group: g.id, leader: leader.node, term: t };
    out.push({ kind: 'recordLeader', group: g.id, leader: leader.node, term: t, command });
  }
  const order = memory.campaigns.get(g.id);
  if (order !== undefined && t >= order.term) memory.campaigns.delete(g.id);
  const check = memory.deepChecks.get(g.id);
  if (check !== undefined && (check.leader !== leader.node || check.term !== t))
    memory.deepChecks.delete(g.id);
  if (inGrace) return out;
  const doubt = doubtOf(input, a, leader);
  if (doubt !== null && deepCheckDue(input, memory.deepChecks.get(g.id), leader)) {
    out.push({ kind: 'deepCheck', group: g.id, leader: leader.node, term: t, reason: doubt });
    memory.deepChecks.set(g.id, {
      leader: leader.node,
      term: t,
      requestedAtMs: input.nowMs,
      ok: null,
      doneAtMs: null,
    });
  }
  return out;
}

/**
 * The healthy voter with the most up-to-date log (last term, then last index; lowest id on a tie),
 * other than `skip`.
 */
function bestCandidate(input: ControlInput, a: GroupAnalysis, skip: NodeId | null): NodeId | null {
  let best: LeaderInfo | null = null;
  for (const m of a.group.members) {
    const r = a.reports.get(m.node);
    if (m.role !== 'voter' || r === undefined || r.role === 'learner') continue;
    if (m.node === a.deposed || m.node === skip || !isHealthy(input, m.node)) continue;
    const better =
      best === null ||
      r.lastLogTerm > best.report.lastLogTerm ||
      (r.lastLogTerm === best.report.lastLogTerm && r.lastLogIndex > best.report.lastLogIndex);
    if (better) best = { node: m.node, report: r };
  }
  return best?.node ?? null;
}

const moreUpToDate = (x: ReplicaReport, y: ReplicaReport): boolean =>
  x.lastLogTerm > y.lastLogTerm || (x.lastLogTerm === y.lastLogTerm && x.lastLogIndex > y.lastLogIndex);

/**
 * The ordered node reports that it campaigns, but too few live voters can grant it: a voter whose
 * log is longer in the same last term refuses it (the old leader's last appends reached it after
 * its report that chose the candidate). Only the same last term counts: a higher one may be the
 * candidate's own new term, replicated after it won and before its next report says so. The
 * candidate's report is current (nothing is appended to a campaigning replica) and the others'
 * logs only grow, so this cannot change: order the best one at once, not after the timeout.
 */
function orderHopeless(a: GroupAnalysis, order: CampaignOrder): boolean {
  const mine = a.reports.get(order.node);
  if (mine === undefined || mine.role !== 'candidate') return false;
  const voters = a.group.members.filter((m) => m.role === 'voter');
  let mayGrant = 0; // live voters that do not refuse it for its log, itself included
  for (const m of voters) {
    const r = a.reports.get(m.node);
    if (m.node === order.node) mayGrant++;
    else if (r === undefined || r.role === 'learner') continue;
    else if (!(r.lastLogTerm === mine.lastLogTerm && r.lastLogIndex > mine.lastLogIndex)) mayGrant++;
  }
  return mayGrant < Math.floor(voters.length / 2) + 1;
}

/** Actions for a group without a valid leader: order a campaign (or raise noQuorum). */
function leaderMissing(input: ControlInput, a: GroupAnalysis, memory: MutableMemory): ControlAction[] {
  const g = a.group;
  const order = memory.campaigns.get(g.id);
  if (order !== undefined && input.nowMs - order.atMs < input.config.campaignTimeoutMs) {
    // A live order is left alone unless it cannot win and a candidate with a more up-to-date
    // log is there (strictly better: re-orders never go back and forth).
    const better = orderHopeless(a, order) ? bestCandidate(input, a, order.node) : null;
    const mine = a.reports.get(order.node);
    const theirs = better === null ? undefined : a.reports.get(better);
    if (mine === undefined || theirs === undefined || !moreUpToDate(theirs, mine)) return [];
  }
  const voterIds = g.members.filter((m) => m.role === 'voter').map((m) => m.node);
  const healthy = voterIds.filter((v) => v !== a.deposed && isHealthy(input, v) && a.reports.has(v));
  const majority = Math.floor(voterIds.length / 2) + 1;
  // The last order did not produce a leader in time: pass its candidate over once (it may be cut
  // off from the other voters while its log is the longest, and would be ordered forever).
  const candidate = bestCandidate(input, a, order?.node ?? null) ?? bestCandidate(input, a, null);
  const liveVoters = voterIds.filter((v) => a.reports.has(v)).length;
  if (candidate === null || liveVoters < majority) {
    return [{ kind: 'noQuorum', group: g.id, liveVoters: healthy.length, voters: voterIds.length }];
  }
  const minTerm = toTerm(Math.max(a.maxTerm, order?.term ?? 0) + 1);
  memory.campaigns.set(g.id, { node: candidate, term: minTerm, atMs: input.nowMs });
  return [{ kind: 'campaign', group: g.id, node: candidate, minTerm, reason: a.reason ?? 'no-leader' }];
}

export function leaderActions(
  input: ControlInput,
  a: GroupAnalysis,
  memory: MutableMemory,
  inGrace: boolean,
): ControlAction[] {
  if (a.leader !== null) return leaderPresent(input, a, a.leader, memory, inGrace);
  if (inGrace) return [];
  return leaderMissing(input, a, memory);
}

/** Records the outcome of a deep check (ignored unless it is the one running for that leader/term). */
export function recordDeepCheck(
  memory: ControlMemory,
  result: { group: GroupId; leader: NodeId; term: Term; ok: boolean; atMs: number },
): ControlMemory {
  const running = memory.deepChecks.get(result.group);
  if (running === undefined || running.leader !== result.leader || running.term !== result.term)
    return memory;
  if (running.ok !== null) return memory;
  const deepChecks = new Map(memory.deepChecks);
  deepChecks.set(result.group, { ...running, ok: result.ok, doneAtMs: result.atMs });
  return { campaigns: memory.campaigns, deepChecks };
}
