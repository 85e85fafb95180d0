/**
 * Cluster-wide observability, without processes: the heartbeat summary (storage side), its
 * lenient decoding (MM side), the join into the cluster view with replication lag (RM side), the
 * Prometheus exposition and its scrape-time cache, and /metrics through the Api.
 */
import { describe, expect, it } from 'vitest';
import { HostMetrics } from '../../src/host/metrics.js';
import { TesseraError } from '../../src/lib/errors.js';
import { type GroupId, groupId, type LogIndex, type NodeId, nodeId, type Term } from '../../src/lib/ids.js';
import { latencyBucketsSeconds, Registry } from '../../src/lib/metrics.js';
import { decodeMmRequest, encodeMm, type ReplicaState } from '../../src/metadata/rpc.js';
import {
  decodeNodeMetrics,
  type NodeMetricsWire,
  type NodeStatsWire,
} from '../../src/metadata/stats-wire.js';
import { Api } from '../../src/request/api.js';
import type { ClusterView } from '../../src/request/backend.js';
import { ClusterMetrics, clusterMetricsText } from '../../src/request/cluster-metrics.js';
import { groupStatsJson, nodeStatsJson, withStats } from '../../src/request/cluster-stats.js';
import { heartbeatMetrics } from '../../src/storage/heartbeat-metrics.js';
import { MemoryBackend } from '../request/memory-backend.js';
import { find, parseExposition, value } from './prom.js';

const n = (i: number): NodeId => nodeId(i);
const g = (i: number): GroupId => groupId(i);

function replica(
  group: number,
  role: ReplicaState['role'],
  lastIndex: number,
  applied: number,
): ReplicaState {
  return {
    group: g(group),
    term: 4 as Term,
    role,
    leader: n(0),
    lastIndex: lastIndex as LogIndex,
    lastTerm: 4 as Term,
    commit: applied as LogIndex,
    applied: applied as LogIndex,
  };
}

function summary(applied: number, counts: number[]): NodeMetricsWire {
  const bounds = [0.001, 0.01, 0.1];
  return {
    v: 1,
    applied,
    elections: 2,
    appends: counts.reduce((a, b) => a + b, 0),
    fsyncSumS: 0.5,
    fsyncBoundsS: bounds,
    fsyncCounts: counts,
  };
}

function baseView(): ClusterView {
  return {
    metadata: { leader: n(2), members: [n(1), n(2), n(3)] },
    nodes: [
      { id: n(1), role: 'metadata', addr: 'h:1', pid: 1, state: 'up', heartbeatAgeMs: null },
      { id: n(16), role: 'storage', addr: 'h:16', pid: 16, state: 'up', heartbeatAgeMs: 250 },
      { id: n(17), role: 'storage', addr: 'h:17', pid: 17, state: 'up', heartbeatAgeMs: 400 },
      { id: n(18), role: 'storage', addr: 'h:18', pid: null, state: 'down', heartbeatAgeMs: 9_000 },
    ],
    groups: [{ id: g(1), members: [n(16), n(17), n(18)], leader: n(16), term: 4 }],
    tables: [{ name: 't"1', engine: 'btree', shards: [] }],
  };
}

const stats: NodeStatsWire[] = [
  { node: n(16), replicas: [replica(1, 'leader', 120, 118)], metrics: summary(300, [5, 3, 1, 1]) },
  { node: n(17), replicas: [replica(1, 'follower', 119, 110)], metrics: summary(290, [9, 0, 0, 0]) },
  { node: n(18), replicas: [replica(1, 'follower', 60, 60)], metrics: null },
];

describe('heartbeat summary (storage side)', () => {
  it('snapshots the host counters of its node, fsync buckets included', () => {
    const registry = new Registry();
    const host = new HostMetrics(registry, '21'); // what the group host of node 21 increments
    host.commits.inc(7);
    host.elections.inc();
    host.fsyncSeconds.observe(0.0003);
    host.fsyncSeconds.observe(0.02);
    new HostMetrics(registry, '22').commits.inc(100); // another node in the same process
    const s = heartbeatMetrics(n(21), registry);
    expect(s).toMatchObject({ v: 1, applied: 7, elections: 1, appends: 2 });
    expect(s.fsyncSumS).toBeCloseTo(0.0203, 9);
    expect(s.fsyncBoundsS).toEqual(latencyBucketsSeconds);
    expect(s.fsyncCounts.length).toBe(latencyBucketsSeconds.length + 1);
    expect(s.fsyncCounts.reduce((a, b) => a + b, 0)).toBe(2);
    expect(decodeNodeMetrics(s)).toEqual(s);
    host.commits.inc(3);
    expect(heartbeatMetrics(n(21), registry).applied).toBe(10); // a fresh snapshot each time
  });
});

describe('decoding (MM side): missing or malformed = unknown, never an error', () => {
  const hb = { node: 16, pid: 3, address: 'h:1', diskOk: true, replicas: [] };
  it('keeps a valid summary and accepts heartbeats without one (older nodes)', () => {
    const good = summary(5, [1, 0, 0, 0]);
    expect(decodeMmRequest('heartbeat', encodeMm({ ...hb, metrics: good })).metrics).toEqual(good);
    expect(decodeMmRequest('heartbeat', encodeMm(hb)).metrics).toBeUndefined();
  });
  it.each([
    ['another version', { ...summary(1, [1, 0, 0, 0]), v: 2 }],
    ['a negative count', summary(-1, [1, 0, 0, 0])],
    ['counts not one more than bounds', summary(1, [1, 0, 0])],
    ['decreasing bounds', { ...summary(1, [1, 0, 0, 0]), fsyncBoundsS: [0.1, 0.01, 1] }],
    ['a string', 'metrics'],
  ])('%s -> null, the heartbeat still decodes', (_what, bad) => {
    const req = decodeMmRequest('heartbeat', encodeMm({ ...hb, metrics: bad }));
    expect(req.metrics).toBeNull();
    expect(req.node).toBe(16);
  });
});

describe('cluster view with stats (RM side)', () => {
  it('attaches metrics to nodes and replicas with lag = leader last index - applied', () => {
    const v = withStats(baseView(), stats);
    expect(v.nodes.find((x) => x.id === 16)?.metrics?.entriesApplied).toBe(300);
    expect(v.nodes.find((x) => x.id === 18)?.metrics).toBeNull();
    expect(v.nodes.find((x) => x.id === 1)?.metrics).toBeUndefined();
    expect(v.groups[0]?.replicas?.map((r) => [r.node, r.lagEntries])).toEqual([
      [16, 2],
      [17, 10],
      [18, 60],
    ]);
    expect(groupStatsJson(v.groups[0]?.replicas).replicas).toContainEqual({
      node: 17,
      role: 'follower',
      term: 4,
      last_index: 119,
      commit: 110,
      applied: 110,
      lag: 10,
    });
    expect(nodeStatsJson(undefined)).toEqual({});
    expect(nodeStatsJson(null)).toEqual({ metrics: null });
  });

  it('without a catalog leader, uses the reported leader of the highest term; none: lag unknown', () => {
    const view = baseView();
    (view.groups[0] as { leader: NodeId | null }).leader = null;
    expect(withStats(view, stats).groups[0]?.replicas?.map((r) => r.lagEntries)).toEqual([2, 10, 60]);
    const noLeader = stats.map((s) => ({
      ...s,
      replicas: s.replicas.map((r) => ({ ...r, role: 'follower' as const })),
    }));
    expect(withStats(view, noLeader).groups[0]?.replicas?.map((r) => r.lagEntries)).toEqual([
      null,
      null,
      null,
    ]);
  });

  it('leaves a view from an MM without stats unchanged', () => {
    const view = baseView();
    expect(withStats(view, undefined)).toBe(view);
  });
});

describe('exposition', () => {
  it('renders node and group families with labels, a valid histogram, and escapes labels', () => {
    const e = parseExposition(clusterMetricsText(withStats(baseView(), stats)));
    expect(value(e, 'tessera_cluster_scrape_success')).toBe(1);
    expect(value(e, 'tessera_metadata_leader')).toBe(2);
    expect(value(e, 'tessera_node_heartbeat_age_seconds', { node: '17', role: 'storage' })).toBe(0.4);
    expect(find(e, 'tessera_node_heartbeat_age_seconds', { node: '1' })).toEqual([]); // unknown: no sample
    expect(value(e, 'tessera_node_up', { node: '18' })).toBe(0);
    expect(value(e, 'tessera_node_up', { node: '16' })).toBe(1);
    expect(value(e, 'tessera_group_leader', { group: '1' })).toBe(16);
    expect(value(e, 'tessera_group_term', { group: '1' })).toBe(4);
    expect(value(e, 'tessera_group_members', { group: '1' })).toBe(3);
    expect(value(e, 'tessera_group_replication_lag_entries', { group: '1', node: '17' })).toBe(10);
    expect(value(e, 'tessera_group_applied_index', { group: '1', node: '18' })).toBe(60);
    expect(value(e, 'tessera_node_entries_applied_total', { node: '16' })).toBe(300);
    expect(value(e, 'tessera_node_elections_won_total', { node: '17' })).toBe(2);
    expect(find(e, 'tessera_node_entries_applied_total', { node: '18' })).toEqual([]); // no summary
    expect(e.types.get('tessera_node_fsync_seconds')).toBe('histogram');
    expect(
      find(e, 'tessera_node_fsync_seconds_bucket', { node: '16' }).map((s) => [s.labels.le, s.value]),
    ).toEqual([
      ['0.001', 5],
      ['0.01', 8],
      ['0.1', 9],
      ['+Inf', 10],
    ]);
    expect(value(e, 'tessera_node_fsync_seconds_count', { node: '16' })).toBe(10);
    expect(value(e, 'tessera_node_fsync_seconds_sum', { node: '16' })).toBe(0.5);
    expect(value(e, 'tessera_node_log_appends_total', { node: '16' })).toBe(10);
    expect(value(e, 'tessera_table_shards', { table: 't"1' })).toBe(0);
    expect(clusterMetricsText(baseView())).toContain('tessera_table_shards{table="t\\"1"} 0');
  });
});

describe('scrape-time fetch and cache', () => {
  it('fetches once per cacheMs, shares a fetch in flight, and says so when the MM fails', async () => {
    let now = 0;
    let calls = 0;
    let fail = false;
    const cm = new ClusterMetrics(
      async () => {
        calls++;
        if (fail) throw new TesseraError('UNAVAILABLE', 'no MM leader');
        return baseView();
      },
      { cacheMs: 1_000, now: () => now },
    );
    const [a, b] = await Promise.all([cm.text(), cm.text()]);
    expect(calls).toBe(1);
    expect(a).toBe(b);
    now = 999;
    await cm.text();
    expect(calls).toBe(1);
    now = 1_000;
    fail = true;
    const failed = parseExposition(await cm.text());
    expect(calls).toBe(2);
    expect(value(failed, 'tessera_cluster_scrape_success')).toBe(0);
    expect(find(failed, 'tessera_group_leader')).toEqual([]);
    await cm.text(); // a failure is cached too: a dead MM is not hammered by scrapes
    expect(calls).toBe(2);
    fail = false;
    now = 2_500;
    expect(value(parseExposition(await cm.text()), 'tessera_cluster_scrape_success')).toBe(1);
  });

  it('gives up on a fetch slower than timeoutMs', async () => {
    const cm = new ClusterMetrics(() => new Promise<ClusterView>(() => {}), { timeoutMs: 20 });
    expect(value(parseExposition(await cm.text()), 'tessera_cluster_scrape_success')).toBe(0);
  });

  it('lets a bug through (not a TesseraError): /metrics answers 500 rather than hiding it', async () => {
    const cm = new ClusterMetrics(async () => {
      throw new TypeError('bug');
    });
    await expect(cm.text()).rejects.toThrow('bug');
  });
});

describe('GET /metrics through the Api', () => {
  it('appends the cluster families to the process registry when clusterMetrics is on', async () => {
    const backend = new MemoryBackend();
    const api = new Api(backend, { registry: new Registry(), clusterMetrics: true });
    const res = await api.handle({ method: 'GET', url: '/metrics', headers: {} });
    expect(res.status).toBe(200);
    const e = parseExposition(String(res.body));
    expect(value(e, 'tessera_cluster_scrape_success')).toBe(1);
    expect(value(e, 'tessera_group_leader', { group: '1' })).toBe(12);
    expect(e.types.get('tessera_http_requests_total')).toBe('counter');
    const off = new Api(backend, { registry: new Registry() });
    const plain = await off.handle({ method: 'GET', url: '/metrics', headers: {} });
    expect(String(plain.body)).not.toContain('tessera_cluster_scrape_success');
  });
});
