/**
 * A simulated metadata manager for directed elections: nodes heartbeat it with the status of their
 * replicas (over the simulated network, so it can be partitioned away); when a group's leader has
 * been silent for `heartbeatsMissedMax` intervals it tells the replica with the most up-to-date log
 * it heard from to campaign, at a term above every term it has seen. It waits a grace period after
 * it starts before it judges anyone.
 */
import type { MembershipChange, ReplicaStatus } from '../../src/consensus/types.js';
import type { GroupId, NodeId } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';

interface Report {
  at: number;
  status: ReplicaStatus;
}

/** Replacing `remove` by `add`: add as learner, promote once caught up, remove the old one. */
interface Replacement {
  readonly add: NodeId;
  readonly remove: NodeId;
  /** If `remove` leads, remove it directly (it steps down) instead of moving leadership first. */
  readonly direct: boolean;
  lastOrderAt: number;
}

interface GroupView {
  readonly members: readonly NodeId[];
  replacement: Replacement | null;
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
  /** Membership change orders to a group's leader (over the network). */
  changeMembership(group: GroupId, leader: NodeId, change: MembershipChange): void;
  /** Creates a replica of `group` on node `node` (before it is added as a learner). */
  addReplica(group: GroupId, node: NodeId): void;
  /** Deletes the replica of `group` on `node` (after its removal committed). */
  dropReplica(group: GroupId, node: NodeId): void;
  /** Always remove a leader directly (else half of the replacements move leadership first). */
  readonly removeLeaders: boolean;
  /** Every storage node (spares are those not in a group). */
  readonly nodes: readonly NodeId[];
  /** Chance per heartbeat interval and group of starting a replica replacement (while `rebalancing`). */
  readonly replaceRate: number;
  /** Chance per heartbeat interval and group of a rebalancing transfer (while `rebalancing`). */
  readonly transferRate: number;
  readonly prng: Prng;
  trace(text: () => string): void;
}

export class SimMetadataManager {
  private readonly groups = new Map<GroupId, GroupView>();
  campaignsOrdered = 0;
  transfersOrdered = 0;
  replacementsStarted = 0;
  replacementsDone = 0;
  /** Rebalancing by leadership transfer (off in the liveness phase). */
  rebalancing = true;

  constructor(private readonly env: MmEnv) {}

  addGroup(group: GroupId, members: readonly NodeId[]): void {
    this.groups.set(group, {
      members,
      replacement: null,
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
        this.stepReplacement(group, g, now - silentMs);
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

  private currentLeader(g: GroupView, since: number): ReplicaStatus | undefined {
    let leader: ReplicaStatus | undefined;
    for (const r of g.reports.values()) {
      if (r.at >= since && r.status.role === 'leader' && r.status.term >= g.maxTerm) leader = r.status;
    }
    return leader;
  }

  /**
   * Replica replacement, one step per heartbeat interval, driven by what the leader reports
   * (orders may be lost: they are repeated). Starts now and then while `rebalancing`.
   */
  private stepReplacement(group: GroupId, g: GroupView, since: number): void {
    const leader = this.currentLeader(g, since);
    if (leader === undefined) return;
    const now = this.env.now();
    const r = g.replacement;
    if (r === null) {
      if (!this.rebalancing || !this.env.prng.chance(this.env.replaceRate)) return;
      const spares = this.env.nodes.filter((n) => !g.members.includes(n));
      if (spares.length === 0) return;
      const add = this.env.prng.pick(spares);
      const remove = this.env.prng.pick(g.members);
      const direct = this.env.removeLeaders || this.env.prng.chance(0.5);
      g.replacement = { add, remove, direct, lastOrderAt: -1e9 };
      this.replacementsStarted++;
      this.env.trace(() => `mm: g${group} replaces n${remove} by n${add}`);
      this.env.addReplica(group, add);
      return;
    }
    const m = leader.membership;
    const order = (change: MembershipChange): void => {
      if (now - r.lastOrderAt < 5 * this.env.heartbeatIntervalMs) return;
      r.lastOrderAt = now;
      this.env.changeMembership(group, leader.id, change);
    };
    if (!m.voters.includes(r.add) && !m.learners.includes(r.add)) order({ type: 'add-learner', node: r.add });
    else if (m.learners.includes(r.add)) {
      const caughtUp = leader.peers.some((p) => p.id === r.add && p.match >= leader.commit);
      if (caughtUp) order({ type: 'promote', node: r.add });
    } else if (m.voters.includes(r.remove) || m.learners.includes(r.remove)) {
      if (r.remove !== leader.id || r.direct) order({ type: 'remove', node: r.remove });
      else if (now - r.lastOrderAt >= 5 * this.env.heartbeatIntervalMs) {
        // Move leadership off the replica first (the other half removes the leader directly).
        r.lastOrderAt = now;
        const to = this.env.prng.pick(m.voters.filter((v) => v !== leader.id));
        this.env.trace(
          () => `mm: g${group} moves leadership off n${leader.id} (to n${to}) before removing it`,
        );
        this.env.transfer(group, leader.id, to);
      }
    } else {
      this.env.trace(() => `mm: g${group} replacement of n${r.remove} by n${r.add} done`);
      g.replacement = null;
      this.replacementsDone++;
      this.env.dropReplica(group, r.remove);
    }
  }

  /** Now and then moves a healthy leader elsewhere (rebalancing), by leadership transfer. */
  private maybeRebalance(group: GroupId, g: GroupView, since: number): void {
    if (!this.rebalancing || !this.env.prng.chance(this.env.transferRate)) return;
    const leader = this.currentLeader(g, since);
    if (leader === undefined || g.replacement !== null) return;
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
