/**
 * Joins the MM leader's soft state (mm.cluster `stats`: each node's last heartbeat summary and
 * replicas, src/metadata/stats-wire.ts) to the cluster view: metrics per node, replicas with their
 * replication lag per group. Pure. Missing stats leave the fields absent (unknown).
 */
import type { NodeId } from '../lib/ids.js';
import type { ReplicaState } from '../metadata/rpc.js';
import type { NodeMetricsWire, NodeStatsWire } from '../metadata/stats-wire.js';
import type { ClusterGroup, ClusterView, GroupReplica, NodeMetrics } from './backend.js';

export function nodeMetrics(m: NodeMetricsWire): NodeMetrics {
  return {
    entriesApplied: m.applied,
    electionsWon: m.elections,
    logAppends: m.appends,
    fsyncSumSeconds: m.fsyncSumS,
    fsyncBoundsSeconds: [...m.fsyncBoundsS],
    fsyncCounts: [...m.fsyncCounts],
  };
}

/** The last index of the group's leader: the catalog's leader, else the reported leader of the highest term. */
function leaderLastIndex(g: ClusterGroup, reports: readonly [NodeId, ReplicaState][]): number | null {
  if (g.leader !== null) {
    const own = reports.find(([n]) => n === g.leader);
    if (own !== undefined) return own[1].lastIndex;
  }
  let best: ReplicaState | null = null;
  for (const [, r] of reports) if (r.role === 'leader' && (best === null || r.term > best.term)) best = r;
  return best === null ? null : best.lastIndex;
}

function groupReplicas(g: ClusterGroup, byNode: ReadonlyMap<NodeId, NodeStatsWire>): GroupReplica[] {
  const reports: [NodeId, ReplicaState][] = [];
  for (const m of g.members) {
    const r = byNode.get(m)?.replicas.find((x) => x.group === g.id);
    if (r !== undefined) reports.push([m, r]);
  }
  const last = leaderLastIndex(g, reports);
  return reports.map(([node, r]) => ({
    node,
    role: r.role,
    term: r.term,
    lastIndex: r.lastIndex,
    commit: r.commit,
    applied: r.applied,
    lagEntries: last === null ? null : Math.max(0, last - r.applied),
  }));
}

/** The view with `metrics` on nodes and `replicas` on groups, from mm.cluster's stats (if any). */
export function withStats(view: ClusterView, stats: readonly NodeStatsWire[] | undefined): ClusterView {
  if (stats === undefined) return view;
  const byNode = new Map<NodeId, NodeStatsWire>();
  for (const s of stats) byNode.set(s.node, s);
  return {
    ...view,
    nodes: view.nodes.map((n) => {
      const s = byNode.get(n.id);
      return s === undefined ? n : { ...n, metrics: s.metrics === null ? null : nodeMetrics(s.metrics) };
    }),
    groups: view.groups.map((g) => ({ ...g, replicas: groupReplicas(g, byNode) })),
  };
}

/** The extra fields of a node in GET /v1/cluster: `metrics` when the view has it (null = unknown). */
export function nodeStatsJson(m: NodeMetrics | null | undefined): Record<string, unknown> {
  if (m === undefined) return {};
  if (m === null) return { metrics: null };
  return {
    metrics: {
      entries_applied: m.entriesApplied,
      elections_won: m.electionsWon,
      log_appends: m.logAppends,
      fsync_sum_s: m.fsyncSumSeconds,
      fsync_bounds_s: m.fsyncBoundsSeconds,
      fsync_counts: m.fsyncCounts,
    },
  };
}

/** The extra fields of a group in GET /v1/cluster: `replicas` when the view has them. */
export function groupStatsJson(replicas: readonly GroupReplica[] | undefined): Record<string, unknown> {
  if (replicas === undefined) return {};
  return {
    replicas: replicas.map((r) => ({
      node: r.node,
      role: r.role,
      term: r.term,
      last_index: r.lastIndex,
      commit: r.commit,
      applied: r.applied,
      lag: r.lagEntries,
    })),
  };
}
