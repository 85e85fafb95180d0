import { describe, expect, it } from 'vitest';
import { runSeed, type SeedResult, type SimBug, simBugs } from './cluster.js';

/** The default fault phase (10 s simulated) costs ~0.1-0.3 s of CPU per seed. */
const faultMs = 10_000;
/** Each bug is usually found in the first few seeds; the budget leaves a wide margin. */
const seedsPerBugMax = 150;

function firstViolation(bug: SimBug, seedsMax: number): SeedResult | null {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const r = runSeed({ seed, bugs: [bug], faultMs });
    if (!r.ok) return r;
  }
  return null;
}

describe('planted bugs: the simulator has teeth', () => {
  for (const bug of simBugs) {
    it(`finds planted bug ${bug}`, () => {
      const r = firstViolation(bug, seedsPerBugMax);
      expect(r, `no violation found for ${bug}`).not.toBeNull();
      expect(r?.trace.length).toBeGreaterThan(0);
      // The failing seed replays exactly: same violation, at the same event.
      const again = runSeed({ seed: r!.seed, bugs: [bug], faultMs });
      expect([again.invariant, again.message, again.events]).toEqual([r?.invariant, r?.message, r?.events]);
    });
  }
});
