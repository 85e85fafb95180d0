/**
 * Cluster-wide metrics at the request manager's GET /metrics (docs/observability.md): the cluster
 * view (mm.cluster, with the MM leader's heartbeat stats) rendered in the Prometheus text format
 * with node / group labels. Fetched lazily at scrape time and cached briefly, so a scrape costs at
 * most one MM call per `cacheMs` whatever the scrape rate (and /metrics is public).
 */
import { isTesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { ClusterView } from './backend.js';

type Labels = Record<string, string | number>;

class FetchTimeout extends Error {}

const escapeLabel = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(String(v))}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Builds one exposition: each family once (HELP, TYPE), then its samples. */
class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'gauge' | 'counter' | 'histogram', help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, labels: Labels, value: number): this {
    this.lines.push(`${name}${labelText(labels)} ${Number.isFinite(value) ? String(value) : 'NaN'}`);
    return this;
  }

  /** A histogram series from per-bucket (not cumulative) counts; counts has one more slot than bounds. */
  histogram(
    name: string,
    labels: Labels,
    bounds: readonly number[],
    counts: readonly number[],
    sum: number,
  ): this {
    let cumulative = 0;
    for (let i = 0; i <= bounds.length; i++) {
      cumulative += counts[i] ?? 0;
      const le = i < bounds.length ? String(bounds[i]) : '+Inf';
      this.sample(`${name}_bucket`, { ...labels, le }, cumulative);
    }
    this.sample(`${name}_sum`, labels, sum);
    return this.sample(`${name}_count`, labels, cumulative);
  }

  text(): string {
    return this.lines.length === 0 ? '' : `${this.lines.join('\n')}\n`;
  }
}

function nodeFamilies(x: Exposition, view: ClusterView): void {
  x.family('tessera_node_up', 'gauge', 'Whether the node is up (1) as the metadata manager sees it.');
  for (const n of view.nodes)
    x.sample('tessera_node_up', { node: n.id, role: n.role }, n.state === 'down' ? 0 : 1);
  x.family(
    'tessera_node_heartbeat_age_seconds',
    'gauge',
    'Since the metadata manager last heard from the node.',
  );
  for (const n of view.nodes)
    if (n.heartbeatAgeMs !== null)
      x.sample('tessera_node_heartbeat_age_seconds', { node: n.id, role: n.role }, n.heartbeatAgeMs / 1000);
  const reporting = view.nodes.flatMap((n) => (n.metrics ? [{ id: n.id, m: n.metrics }] : []));
  const counter = (name: string, help: string, get: (m: (typeof reporting)[number]['m']) => number): void => {
    x.family(name, 'counter', help);
    for (const { id, m } of reporting) x.sample(name, { node: id }, get(m));
  };
  counter(
    'tessera_node_entries_applied_total',
    'Committed entries applied by the node (all groups).',
    (m) => m.entriesApplied,
  );
  counter(
    'tessera_node_elections_won_total',
    'Times a replica on the node became leader.',
    (m) => m.electionsWon,
  );
  counter(
    'tessera_node_log_appends_total',
    'Shared log appends (one fsync each) on the node.',
    (m) => m.logAppends,
  );
  x.family('tessera_node_fsync_seconds', 'histogram', 'Shared log append (fsync) latency on the node.');
  for (const { id, m } of reporting)
    x.histogram(
      'tessera_node_fsync_seconds',
      { node: id },
      m.fsyncBoundsSeconds,
      m.fsyncCounts,
      m.fsyncSumSeconds,
    );
}

function groupFamilies(x: Exposition, view: ClusterView): void {
  const groups = view.groups;
  x.family('tessera_group_leader', 'gauge', 'Node id of the group leader in the catalog (0: none).');
  for (const g of groups) x.sample('tessera_group_leader', { group: g.id }, g.leader ?? 0);
  x.family('tessera_group_term', 'gauge', 'Term of the group leader in the catalog.');
  for (const g of groups) x.sample('tessera_group_term', { group: g.id }, g.term);
  x.family('tessera_group_members', 'gauge', 'Members (voters and learners) of the group.');
  for (const g of groups) x.sample('tessera_group_members', { group: g.id }, g.members.length);
  const replicas = groups.flatMap((g) => (g.replicas ?? []).map((r) => ({ group: g.id, r })));
  x.family(
    'tessera_group_replication_lag_entries',
    'gauge',
    "Leader's last log index minus the replica's applied index.",
  );
  for (const { group, r } of replicas)
    if (r.lagEntries !== null)
      x.sample('tessera_group_replication_lag_entries', { group, node: r.node }, r.lagEntries);
  x.family('tessera_group_applied_index', 'gauge', 'Applied log index of each replica, as last reported.');
  for (const { group, r } of replicas)
    x.sample('tessera_group_applied_index', { group, node: r.node }, r.applied);
  x.family('tessera_group_commit_index', 'gauge', 'Commit index of each replica, as last reported.');
  for (const { group, r } of replicas)
    x.sample('tessera_group_commit_index', { group, node: r.node }, r.commit);
}

/** The cluster families for one view (pure). */
export function clusterMetricsText(view: ClusterView): string {
  const x = new Exposition();
  x.family(
    'tessera_cluster_scrape_success',
    'gauge',
    'Whether the cluster state was fetched for this scrape.',
  );
  x.sample('tessera_cluster_scrape_success', {}, 1);
  x.family('tessera_metadata_leader', 'gauge', 'Node id of the metadata manager leader (0: unknown).');
  x.sample('tessera_metadata_leader', {}, view.metadata.leader ?? 0);
  nodeFamilies(x, view);
  groupFamilies(x, view);
  x.family('tessera_table_shards', 'gauge', 'Shards of each table.');
  for (const t of view.tables) x.sample('tessera_table_shards', { table: t.name }, t.shards.length);
  return x.text();
}

/** What a scrape shows when the cluster state could not be fetched. */
export function clusterMetricsFailureText(): string {
  return new Exposition()
    .family(
      'tessera_cluster_scrape_success',
      'gauge',
      'Whether the cluster state was fetched for this scrape.',
    )
    .sample('tessera_cluster_scrape_success', {}, 0)
    .text();
}

export interface ClusterMetricsOptions {
  /** A result (success or failure) is reused this long (default limits.rmClusterMetricsCacheMs). */
  cacheMs?: number;
  /** A fetch slower than this counts as failed (default limits.rmClusterMetricsTimeoutMs). */
  timeoutMs?: number;
  /** Monotonic ms (tests). */
  now?: () => number;
  onError?: (e: unknown) => void;
}

/** The cluster part of /metrics: one fetch at a time, the result cached for `cacheMs`. */
export class ClusterMetrics {
  private cached: { atMs: number; text: string } | null = null;
  private running: Promise<string> | null = null;
  private readonly cacheMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  fetches = 0;

  constructor(
    private readonly fetch: () => Promise<ClusterView>,
    private readonly opts: ClusterMetricsOptions = {},
  ) {
    this.cacheMs = opts.cacheMs ?? limits.rmClusterMetricsCacheMs;
    this.timeoutMs = opts.timeoutMs ?? limits.rmClusterMetricsTimeoutMs;
    this.now = opts.now ?? (() => performance.now());
  }

  text(): Promise<string> {
    const c = this.cached;
    if (c !== null && this.now() - c.atMs < this.cacheMs) return Promise.resolve(c.text);
    if (this.running === null) {
      this.running = this.refresh().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async refresh(): Promise<string> {
    this.fetches++;
    let text: string;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FetchTimeout('cluster state fetch timed out')), this.timeoutMs);
      });
      text = clusterMetricsText(await Promise.race([this.fetch(), timeout]));
    } catch (e) {
      if (!isTesseraError(e) && !(e instanceof FetchTimeout)) throw e;
      this.opts.onError?.(e);
      text = clusterMetricsFailureText();
    } finally {
      clearTimeout(timer);
    }
    this.cached = { atMs: this.now(), text };
    return text;
  }
}
