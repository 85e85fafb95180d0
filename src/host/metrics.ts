/** The host's metrics (lib/metrics.ts): commits, elections won, fsync latency, compactions. */
import type { Counter, Histogram, Registry } from '../lib/metrics.js';
import { latencyBucketsSeconds } from '../lib/metrics.js';

type Child<T> = T extends { labels(...v: string[]): infer C } ? C : never;

export class HostMetrics {
  readonly commits: Child<Counter>;
  readonly elections: Child<Counter>;
  readonly fsyncSeconds: Child<Histogram>;
  readonly appendFailures: Child<Counter>;
  readonly compactions: Child<Counter>;
  readonly snapshotsInstalled: Child<Counter>;
  readonly snapshotsSent: Child<Counter>;
  readonly sendDropped: Child<Counter>;

  constructor(registry: Registry, node: string) {
    const counter = (name: string, help: string) =>
      (registry.get(name) as Counter | undefined) ?? registry.counter(name, help, ['node']);
    this.commits = counter('tessera_host_entries_applied_total', 'Committed entries applied').labels(node);
    this.elections = counter('tessera_host_elections_won_total', 'Times a replica became leader').labels(
      node,
    );
    this.appendFailures = counter(
      'tessera_host_log_append_failures_total',
      'Failed log appends (retried)',
    ).labels(node);
    this.compactions = counter('tessera_host_compactions_total', 'Log compactions').labels(node);
    this.snapshotsInstalled = counter('tessera_host_snapshots_installed_total', 'Snapshots installed').labels(
      node,
    );
    this.snapshotsSent = counter(
      'tessera_host_snapshots_sent_total',
      'Snapshots streamed to followers',
    ).labels(node);
    this.sendDropped = counter(
      'tessera_host_messages_dropped_total',
      'Consensus messages dropped (queue full)',
    ).labels(node);
    const hname = 'tessera_host_log_append_seconds';
    const h =
      (registry.get(hname) as Histogram | undefined) ??
      registry.histogram(hname, 'Shared log append (fsync) latency', ['node'], latencyBucketsSeconds);
    this.fsyncSeconds = h.labels(node);
  }
}
