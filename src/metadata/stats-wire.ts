/**
 * Node statistics carried by mm.heartbeat and served by mm.cluster (docs/observability.md).
 *
 * A storage node adds a compact summary of its host counters to each heartbeat (`metrics`,
 * summary format version 1). The MM leader keeps the latest one per node in memory (soft state,
 * never in the replicated catalog) and answers it, with the node's last reported replicas, in the
 * `stats` field of mm.cluster. Both fields are optional: an older peer sends none, and a missing
 * or malformed summary means "unknown" (it never fails the heartbeat: liveness comes first).
 */
import type { NodeId } from '../lib/ids.js';
import type { ReplicaState } from './rpc.js';

export const nodeMetricsVersion = 1;
/** Histogram buckets a summary may carry (the host's latency buckets are 16). */
export const nodeMetricsBucketsMax = 64;

/** Counters of one storage node's group host, since the process started (format v1). */
export interface NodeMetricsWire {
  v: 1;
  /** Committed entries applied, all groups. */
  applied: number;
  /** Times a replica of this node became leader. */
  elections: number;
  /** Shared log appends (each one fsync): the count of the fsync histogram. */
  appends: number;
  /** Sum of the append (fsync) durations, seconds. */
  fsyncSumS: number;
  /** Upper bounds of the fsync buckets, seconds, increasing. */
  fsyncBoundsS: number[];
  /** Appends per bucket (not cumulative); one more than the bounds: the last is above the last bound. */
  fsyncCounts: number[];
}

/** What mm.cluster answers per node heard from since this MM node became leader. */
export interface NodeStatsWire {
  node: NodeId;
  /** The node's replicas as its last heartbeat reported them. */
  replicas: ReplicaState[];
  /** null: the node sent no (valid) summary. */
  metrics: NodeMetricsWire | null;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isReal = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** A valid summary, or null when absent or malformed (unknown; never an error). */
export function decodeNodeMetrics(v: unknown): NodeMetricsWire | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (o.v !== nodeMetricsVersion) return null;
  if (!isCount(o.applied) || !isCount(o.elections) || !isCount(o.appends) || !isReal(o.fsyncSumS))
    return null;
  const bounds = o.fsyncBoundsS;
  const counts = o.fsyncCounts;
  if (!Array.isArray(bounds) || !Array.isArray(counts)) return null;
  if (bounds.length > nodeMetricsBucketsMax || counts.length !== bounds.length + 1) return null;
  if (!bounds.every(isReal) || !counts.every(isCount)) return null;
  for (let i = 1; i < bounds.length; i++) if ((bounds[i] as number) <= (bounds[i - 1] as number)) return null;
  return {
    v: 1,
    applied: o.applied,
    elections: o.elections,
    appends: o.appends,
    fsyncSumS: o.fsyncSumS,
    fsyncBoundsS: bounds as number[],
    fsyncCounts: counts as number[],
  };
}
