import { describe, expect, it } from 'vitest';
import { fnv1a64, keyName, ScrambledZipfian, Uniform, Zipfian, zeta } from '../../src/bench/zipfian.js';
import { Prng } from '../../src/lib/prng.js';

function counts(draw: () => number, items: number, samples: number): number[] {
  const c = new Array<number>(items).fill(0);
  for (let i = 0; i < samples; i++) {
    const k = draw();
    expect(Number.isInteger(k) && k >= 0 && k < items).toBe(true);
    c[k]! += 1;
  }
  return c;
}

describe('zipfian key chooser', () => {
  it('zeta sums the generalized harmonic series', () => {
    expect(zeta(1, 0.99)).toBe(1);
    expect(zeta(3, 1 - 1e-12)).toBeCloseTo(1 + 1 / 2 + 1 / 3, 9);
  });

  it('draws ranks with the frequencies of a Zipf law (theta 0.99)', () => {
    const items = 1000;
    const samples = 200_000;
    const z = new Zipfian(items);
    const prng = new Prng(42);
    const c = counts(() => z.next(prng), items, samples);
    // Ranks 0 and 1 are drawn exactly (rank 0 is about 13% of the draws for 1,000 items); beyond
    // them YCSB's formula is a continuous approximation, so check the cumulative shares instead.
    for (const r of [0, 1]) {
      const expected = z.probability(r) * samples;
      expect(Math.abs(c[r]! - expected)).toBeLessThan(expected * 0.05);
    }
    for (const k of [10, 100, 500]) {
      const share = c.slice(0, k).reduce((a, b) => a + b, 0) / samples;
      expect(Math.abs(share - zeta(k, z.theta) / z.zetan)).toBeLessThan(0.03);
    }
    // Skew: the top 10% of ranks take most of the draws; the bottom half takes little.
    const top = c.slice(0, 100).reduce((a, b) => a + b, 0);
    const bottom = c.slice(500).reduce((a, b) => a + b, 0);
    expect(top / samples).toBeGreaterThan(0.6);
    expect(bottom / samples).toBeLessThan(0.15);
    expect(c[0]!).toBeGreaterThan(c[1]!);
    expect(c[1]!).toBeGreaterThan(c[9]!);
  });

  it('rank() is monotone in u and stays in range', () => {
    const z = new Zipfian(100);
    let last = 0;
    for (let u = 0; u < 1; u += 0.001) {
      const r = z.rank(u);
      expect(r).toBeGreaterThanOrEqual(last);
      expect(r).toBeLessThan(100);
      last = r;
    }
    expect(z.rank(0)).toBe(0);
    expect(z.rank(0.999999)).toBe(99);
  });

  it('scrambling keeps the skew but spreads hot keys over the key space', () => {
    const items = 1000;
    const samples = 100_000;
    const s = new ScrambledZipfian(items);
    const prng = new Prng(7);
    const c = counts(() => s.next(prng), items, samples);
    const sorted = [...c].sort((a, b) => b - a);
    expect(sorted[0]! / samples).toBeGreaterThan(0.1);
    // The hottest key is where FNV sends rank 0, not key 0.
    expect(c.indexOf(sorted[0]!)).toBe(Number(fnv1a64(0) % BigInt(items)));
    expect(c.indexOf(sorted[0]!)).not.toBe(0);
  });

  it('fnv1a64 matches the reference FNV-1a 64 values', () => {
    // FNV-1a over 8 zero bytes, and over the bytes 01 00 .. 00.
    expect(fnv1a64(0).toString(16)).toBe('a8c7f832281a39c5');
    expect(fnv1a64(1)).not.toBe(fnv1a64(0));
  });

  it('uniform draws are flat', () => {
    const items = 10;
    const u = new Uniform(items);
    const prng = new Prng(3);
    const c = counts(() => u.next(prng), items, 50_000);
    for (const n of c) expect(Math.abs(n - 5000)).toBeLessThan(400);
  });

  it('key names match the Go loadgen', () => {
    expect(keyName('', 42)).toBe('user0000000042');
    expect(keyName('bench/', 0)).toBe('bench/user0000000000');
  });

  it('refuses nonsense sizes', () => {
    expect(() => new Zipfian(1)).toThrow();
    expect(() => new Uniform(0)).toThrow();
    expect(() => new Zipfian(10, 1)).toThrow();
  });
});
