/**
 * The metrics summary a storage node adds to its mm.heartbeat (src/metadata/stats-wire.ts, v1):
 * a snapshot of its group host's counters (entries applied, elections won, log appends and the
 * fsync latency histogram). Read from the host's series in the registry (HostMetrics returns the
 * very children the host increments), so the hot path is untouched: this costs one small copy
 * per heartbeat.
 */
import { HostMetrics } from '../host/metrics.js';
import type { NodeId } from '../lib/ids.js';
import { defaultRegistry, type Histogram, type Registry } from '../lib/metrics.js';
import type { NodeMetricsWire } from '../metadata/stats-wire.js';

const byNode = new WeakMap<Registry, Map<NodeId, HostMetrics>>();

function hostMetrics(node: NodeId, registry: Registry): HostMetrics {
  let nodes = byNode.get(registry);
  if (nodes === undefined) {
    nodes = new Map();
    byNode.set(registry, nodes);
  }
  let m = nodes.get(node);
  if (m === undefined) {
    m = new HostMetrics(registry, String(node));
    nodes.set(node, m);
  }
  return m;
}

/** The heartbeat summary of the host of `node` (its series in `registry`). */
export function heartbeatMetrics(node: NodeId, registry: Registry = defaultRegistry): NodeMetricsWire {
  const m = hostMetrics(node, registry);
  const h = m.fsyncSeconds;
  const bounds = (registry.get('tessera_host_log_append_seconds') as Histogram).buckets;
  return {
    v: 1,
    applied: m.commits.value,
    elections: m.elections.value,
    appends: h.count,
    fsyncSumS: h.sum,
    fsyncBoundsS: [...bounds],
    fsyncCounts: [...h.counts],
  };
}
