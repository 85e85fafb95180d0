import { execFileSync } from 'node:child_process';
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

describe('npm run sim (CLI)', () => {
  const run = (args: string[]): string =>
    execFileSync(process.execPath, ['--import', 'tsx', 'test/sim/main.ts', ...args], { encoding: 'utf8' });

  it('lists the planted bugs', () => {
    const names = run(['--list-bugs']).trim().split('\n');
    expect(names.length).toBeGreaterThanOrEqual(6);
    expect(names).toEqual([...simBugs]);
  });

  it('ends --json output with the summary line', () => {
    const lines = run(['--seeds', '2', '--seed', '5', '--json', '--fault-ms', '2000']).trim().split('\n');
    const last = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
    expect(last).toMatchObject({ seeds: 2, violations: 0, first_failing_seed: null });
    expect(last.ops).toBeGreaterThan(0);
    expect(last.seeds_per_min).toBeGreaterThan(0);
  });

  it('prints the seed, the replay command and the trace of a failure', () => {
    let out = '';
    try {
      run(['--seed', '1', '--bug', 'commit-without-majority']);
    } catch (e) {
      out = String((e as { stdout?: string }).stdout);
    }
    expect(out).toContain('seed 1: VIOLATION');
    expect(out).toContain('replay: npm run sim -- --seed 1 --bug commit-without-majority');
    expect(out.split('\n').filter((l) => l.startsWith('t=')).length).toBeGreaterThan(20);
  });
});
