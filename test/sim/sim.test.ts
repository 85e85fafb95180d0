import { describe, expect, it } from 'vitest';
import { runSeed, simBugs } from './cluster.js';

/** The default fault phase (10 s simulated) costs ~0.1-0.3 s of CPU per seed. */
const faultMs = 10_000;
describe('simulator', () => {
  it('replays a seed exactly', () => {
    const a = runSeed({ seed: 7, faultMs: 3000 });
    const b = runSeed({ seed: 7, faultMs: 3000 });
    expect(a.ok).toBe(true);
    expect(b.events).toBe(a.events);
    expect(b.ops).toBe(a.ops);
    expect(b.simulatedMs).toBe(a.simulatedMs);
    expect(a.ops).toBeGreaterThan(20);
  });

  it('finds no violation without planted bugs', () => {
    const failures: string[] = [];
    let ops = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = runSeed({ seed, faultMs });
      ops += r.ops;
      if (!r.ok) failures.push(`seed ${seed}: ${r.invariant}: ${r.message?.slice(0, 500)}`);
    }
    expect(failures).toEqual([]);
    expect(ops).toBeGreaterThan(5000);
  });

  it('lists at least six planted bugs', () => {
    expect(simBugs.length).toBeGreaterThanOrEqual(6);
    expect(simBugs).toContain('retry-without-dedup');
  });
});
