/**
 * A simulated metadata manager for directed elections: nodes heartbeat it with the status of their
 * replicas (over the simulated network, so it can be partitioned away); when a group's leader has
 * been silent for `heartbeatsMissedMax` intervals it tells the replica with the most up-to-date log
 * it heard from to campaign, at a term above every term it has seen. It waits a grace period after
 * it starts before it judges anyone.
 */
import type { ReplicaStatus } from '../../src/consensus/types.js';
import type { GroupId, NodeId } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';

interface Report {
  at: number;
  status: ReplicaStatus;
}

interface GroupView {
  readonly members: readonly NodeId[];
  lastLeaderAt: number;
  maxTerm: number;
  lastCampaignAt: number;
  readonly reports: Map<NodeId, Report>;
}

export interface MmEnv {
  now(): number;
  heartbeatIntervalMs: number;
  heartbeatsMissedMax: number;
  electionTimeoutMs: number;
  graceMs: number;
  /** Sends a campaign(minTerm) order to a replica (over the network). */
  campaign(group: GroupId, node: NodeId, minTerm: number): void;
  /** Sends a leadership transfer order to a group's leader (over the network). */
  transfer(group: GroupId, leader: NodeId, to: NodeId): void;
  /** Chance per heartbeat interval and group of a rebalancing transfer (while `rebalancing`). */
  readonly transferRate: number;
  readonly prng: Prng;
  trace(text: () => string): void;
}

export class SimMetadataManager {
  private readonly groups = new Map<GroupId, GroupView>();
  campaignsOrdered = 0;
  transfersOrdered = 0;
  /** Rebalancing by leadership transfer (off in the liveness phase). */
  rebalancing = true;

  constructor(private readonly env: MmEnv) {}

  addGroup(group: GroupId, members: readonly NodeId[]): void {
    this.groups.set(group, {
      members,
      lastLeaderAt: 0,
      maxTerm: 0,
      lastCampaignAt: -1e9,
      reports: new Map(),
    });
  }

  onHeartbeat(statuses: readonly ReplicaStatus[]): void {
    const now = this.env.now();
    for (const s of statuses) {
      const g = this.groups.get(s.group);
      if (!g) continue;
      g.reports.set(s.id, { at: now, status: s });
      if (s.term > g.maxTerm) g.maxTerm = s.term;
      if (s.role === 'leader' && s.term >= g.maxTerm) g.lastLeaderAt = now;
    }
  }

  /** Called every heartbeat interval. */
  tick(): void {
    const now = this.env.now();
    if (now < this.env.graceMs) return;
    const silentMs = this.env.heartbeatIntervalMs * this.env.heartbeatsMissedMax;
    for (const [group, g] of this.groups) {
      if (now - g.lastLeaderAt <= silentMs) {
        this.maybeRebalance(group, g, now - silentMs);
        continue;
      }
      if (now - g.lastCampaignAt < this.env.electionTimeoutMs) continue;
      const best = this.pick(g, now - silentMs);
      if (best === undefined) continue;
      g.lastCampaignAt = now;
      this.campaignsOrdered++;
      const minTerm = g.maxTerm + 1;
      this.env.trace(() => `mm: g${group} leader silent, orders n${best} to campaign at >= ${minTerm}`);
      this.env.campaign(group, best, minTerm);
    }
  }

  /** Now and then moves a healthy leader elsewhere (rebalancing), by leadership transfer. */
  private maybeRebalance(group: GroupId, g: GroupView, since: number): void {
    if (!this.rebalancing || !this.env.prng.chance(this.env.transferRate)) return;
    let leader: ReplicaStatus | undefined;
    for (const r of g.reports.values()) {
      if (r.at >= since && r.status.role === 'leader' && r.status.term >= g.maxTerm) leader = r.status;
    }
    if (leader === undefined) return;
    const targets = g.members.filter((m) => m !== leader.id && (g.reports.get(m)?.at ?? -1) >= since);
    if (targets.length === 0) return;
    const to = this.env.prng.pick(targets);
    this.transfersOrdered++;
    this.env.trace(() => `mm: g${group} rebalance: n${leader.id} transfers leadership to n${to}`);
    this.env.transfer(group, leader.id, to);
  }

  /** The replica heard from recently with the longest log (then the highest term, then lowest id). */
  private pick(g: GroupView, since: number): NodeId | undefined {
    let best: ReplicaStatus | undefined;
    for (const id of g.members) {
      const r = g.reports.get(id);
      if (!r || r.at < since || r.status.removed) continue;
      const s = r.status;
      if (
        best === undefined ||
        s.lastIndex > best.lastIndex ||
        (s.lastIndex === best.lastIndex && s.term > best.term)
      ) {
        best = s;
      }
    }
    return best?.id;
  }
}
