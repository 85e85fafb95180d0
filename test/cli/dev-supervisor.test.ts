import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChildSpec, nodeFlags, Supervisor } from '../../src/cli/dev-supervisor.js';
import { limits } from '../../src/lib/limits.js';
import { isAlive, readClusterJson, waitFor } from '../e2e/dev-cluster.js';

const sleeper = path.resolve(import.meta.dirname, 'fixtures', 'sleeper.mjs');

function spec(dir: string, n: number, extra: string[] = []): ChildSpec {
  return { role: 'storage', n, args: extra, dir: path.join(dir, `storage-${n}`), ports: { rpc: 1000 + n } };
}

describe('dev supervisor', () => {
  let dir = '';
  let sup: Supervisor | undefined;
  const lines: string[] = [];

  function start(stopGraceMs = 5_000): Supervisor {
    lines.length = 0;
    dir = mkdtempSync(path.join(tmpdir(), 'tessera-sup-'));
    mkdirSync(path.join(dir, 'logs'));
    sup = new Supervisor({
      dir,
      say: (l) => lines.push(l),
      restartBackoffMinMs: 50,
      stopGraceMs,
      entry: { execPath: process.execPath, args: [sleeper] },
    });
    return sup;
  }

  afterEach(async () => {
    await sup?.stop();
    sup = undefined;
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('restarts a child killed with SIGKILL and rewrites cluster.json; stop() ends them all', async () => {
    const s = start();
    s.start(spec(dir, 1));
    s.start(spec(dir, 2));
    const first = readClusterJson(dir).filter((p) => p.role === 'storage');
    expect(first.map((p) => p.ports.rpc)).toEqual([1001, 1002]);
    const victim = first[0]!.pid!;
    const other = first[1]!.pid!;
    await waitFor('children up', () => isAlive(victim) && isAlive(other), 5_000);
    process.kill(victim, 'SIGKILL');
    await waitFor(
      'restart',
      () => {
        const pid = readClusterJson(dir).find((p) => p.ports.rpc === 1001)?.pid;
        return pid !== null && pid !== undefined && pid !== victim && isAlive(pid);
      },
      10_000,
    );
    expect(lines.some((l) => l.includes('storage 1 exited (SIGKILL)'))).toBe(true);
    const restarted = readClusterJson(dir).find((p) => p.ports.rpc === 1001)!.pid!;
    await s.stop();
    expect(isAlive(restarted)).toBe(false);
    expect(isAlive(other)).toBe(false);
    expect(readClusterJson(dir).every((p) => p.role === 'dev' || p.pid === null)).toBe(true);
  });

  it('SIGKILLs a child that ignores SIGTERM after the grace period', async () => {
    const s = start(300);
    s.start(spec(dir, 1, ['stubborn']));
    const pid = readClusterJson(dir).find((p) => p.role === 'storage')!.pid!;
    await new Promise((r) => setTimeout(r, 300)); // let it install its SIGTERM handler
    await s.stop();
    expect(isAlive(pid)).toBe(false);
    expect(lines.some((l) => l.includes('restarting'))).toBe(false);
  });

  it('starts request children with the GC flags, storage and metadata children without', async () => {
    const s = start();
    s.start({ ...spec(dir, 1), role: 'request' });
    s.start(spec(dir, 2));
    s.start({ role: 'metadata', n: 1, args: [], dir: path.join(dir, 'metadata-1'), ports: { rpc: 2001 } });
    const pids = readClusterJson(dir);
    const argv = (role: string): string[] => {
      const pid = pids.find((p) => p.role === role)!.pid!;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    };
    const semi = `--max-semi-space-size=${limits.requestSemiSpaceMb}`;
    expect(argv('request')).toContain(semi);
    expect(argv('request')).toContain('--single-threaded-gc');
    expect(argv('storage')).not.toContain(semi);
    expect(argv('metadata')).not.toContain(semi);
    expect(argv('metadata')).not.toContain('--single-threaded-gc');
  });

  it("leaves the GC flags to the user's own", () => {
    expect(nodeFlags('request', [])).toEqual([
      `--max-semi-space-size=${limits.requestSemiSpaceMb}`,
      '--single-threaded-gc',
    ]);
    expect(nodeFlags('request', ['--max-semi-space-size=8', 'x.js'])).toEqual(['--single-threaded-gc']);
    expect(nodeFlags('request', ['--no-single-threaded-gc'])).toEqual([
      `--max-semi-space-size=${limits.requestSemiSpaceMb}`,
    ]);
    expect(nodeFlags('storage', [])).toEqual([]);
    expect(nodeFlags('metadata', [])).toEqual([]);
  });
});
