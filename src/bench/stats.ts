/**
 * Latency statistics. `percentile` is the nearest-rank percentile of sorted samples (the same rule
 * as the Go loadgen). `Histogram` records microseconds into log-linear buckets (HdrHistogram-like,
 * 64 sub-buckets per power of two: relative error under 1.6%) so memory stays bounded however long
 * a run lasts.
 */
import { assert } from '../lib/assert.js';

export function percentile(sorted: ArrayLike<number>, p: number): number {
  assert(p >= 0 && p <= 100, `bad percentile ${p}`);
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

const subBits = 6;
const subCount = 1 << subBits;
/** Values up to 2^40 µs (12 days) fit; larger are clamped to the top bucket. */
const exponentsMax = 40;
export const histogramBuckets = (exponentsMax - subBits + 2) * subCount;

export function bucketOf(us: number): number {
  const v = Math.max(0, Math.floor(us));
  if (v < subCount) return v;
  const exp = Math.min(Math.floor(Math.log2(v)), exponentsMax);
  const shift = exp - subBits;
  const sub = Math.min(Math.floor(v / 2 ** shift), 2 * subCount - 1) - subCount;
  return (shift + 1) * subCount + sub;
}

/** The lowest value of a bucket (exact for values below 64). */
export function bucketLow(b: number): number {
  if (b < subCount) return b;
  const shift = Math.floor(b / subCount) - 1;
  return (subCount + (b % subCount)) * 2 ** shift;
}

/** The midpoint of a bucket: what a percentile reports. */
export function bucketMid(b: number): number {
  if (b < subCount) return b;
  const shift = Math.floor(b / subCount) - 1;
  return bucketLow(b) + (2 ** shift - 1) / 2;
}

export class Histogram {
  readonly counts = new Float64Array(histogramBuckets);
  count = 0;
  maxUs = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]! += 1;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < histogramBuckets; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.maxUs = Math.max(this.maxUs, other.maxUs);
  }

  /** Nearest-rank percentile in µs, to the bucket's precision. */
  percentile(p: number): number {
    assert(p >= 0 && p <= 100, `bad percentile ${p}`);
    if (this.count === 0) return 0;
    if (p === 100) return this.maxUs;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let b = 0; b < histogramBuckets; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(bucketMid(b), this.maxUs);
    }
    return this.maxUs;
  }
}
