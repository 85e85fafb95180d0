import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { simBugs } from './cluster.js';

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
