import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucketLow, bucketOf, Histogram, histogramBuckets, percentile } from '../../src/bench/stats.js';

describe('percentile (nearest rank)', () => {
  it('picks the nearest-rank sample', () => {
    const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(xs, 50)).toBe(5);
    expect(percentile(xs, 90)).toBe(9);
    expect(percentile(xs, 99)).toBe(10);
    expect(percentile(xs, 100)).toBe(10);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
  });

  it('p99 of 1..1000 is 990', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(xs, 99)).toBe(990);
    expect(percentile(xs, 50)).toBe(500);
  });

  it('refuses a percentile outside [0, 100]', () => {
    expect(() => percentile([1], 101)).toThrow();
  });
});

describe('Histogram', () => {
  it('is exact below 128 µs', () => {
    for (let v = 0; v < 128; v++) {
      expect(bucketOf(v)).toBe(v);
      expect(bucketLow(v)).toBe(v);
    }
  });

  it('buckets are ordered and contain their values', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (v) => {
        const b = bucketOf(v);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThan(histogramBuckets);
        expect(bucketLow(b)).toBeLessThanOrEqual(v);
        expect(bucketOf(v + 1)).toBeGreaterThanOrEqual(b);
        if (b + 1 < histogramBuckets) expect(bucketLow(b + 1)).toBeGreaterThan(v);
      }),
    );
  });

  it('percentiles agree with the exact ones within 1.6%', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 5_000_000 }), { minLength: 1, maxLength: 400 }),
        fc.constantFrom(50, 90, 99, 99.9),
        (xs, p) => {
          const h = new Histogram();
          for (const x of xs) h.record(x);
          const exact = percentile(
            [...xs].sort((a, b) => a - b),
            p,
          );
          expect(Math.abs(h.percentile(p) - exact)).toBeLessThanOrEqual(exact * 0.016 + 0.5);
        },
      ),
    );
  });

  it('counts, max and merge', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 100; i++) a.record(i * 10);
    for (let i = 1; i <= 100; i++) b.record(100_000);
    a.merge(b);
    expect(a.count).toBe(200);
    expect(a.percentile(100)).toBe(100_000);
    expect(a.percentile(50)).toBeGreaterThan(980);
    expect(a.percentile(50)).toBeLessThan(1020);
    expect(Math.abs(a.percentile(75) - 100_000)).toBeLessThan(1600);
    expect(new Histogram().percentile(99)).toBe(0);
  });
});
