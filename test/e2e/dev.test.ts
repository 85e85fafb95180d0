/**
 * `tessera dev` end to end, on real processes: start it, use the cluster through the TypeScript
 * client (btree and lsm tables, binary keys, conditional writes, errors), kill -9 a storage child
 * and see it restarted with cluster.json rewritten, pause the metadata nodes and keep writing, stop
 * it with SIGTERM (every child gone), start it again on the same directory and read everything back.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { isAlive, readClusterJson, startDev, stopDev, waitFor } from './dev-cluster.js';

const readyTimeoutMs = 60_000;
const devArgs = ['--port', '0', '--groups', '2', '--spares', '0'];

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    if (isTesseraError(e)) return e.code;
    throw e;
  }
}

const bin = (...b: number[]): Uint8Array => new Uint8Array(b);
const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString();

describe('tessera dev (real processes)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-dev-'));
  let proc: ChildProcess | undefined;
  const childPids = new Set<number>();

  afterAll(async () => {
    if (proc !== undefined) await stopDev(proc, 5_000);
    for (const pid of childPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const remember = (): void => {
    for (const p of readClusterJson(dir)) if (p.pid !== null && p.role !== 'dev') childPids.add(p.pid);
  };

  it('serves, survives kill -9 of a storage child, stops cleanly, and restarts with its data', async () => {
    const dev = await startDev(dir, devArgs, readyTimeoutMs);
    proc = dev.proc;
    remember();
    expect(dev.dashboard).toMatch(/\/dashboard#token=tess_/);
    expect(statSync(path.join(dir, 'admin.token')).mode & 0o777).toBe(0o600);
    const procs = readClusterJson(dir);
    expect(procs.filter((p) => p.role === 'metadata').length).toBe(3);
    expect(procs.filter((p) => p.role === 'storage').length).toBe(6);
    expect(procs.filter((p) => p.role === 'request').length).toBe(1);
    for (const p of procs) expect(p.pid !== null && isAlive(p.pid)).toBe(true);

    const token = readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
    const c = new TesseraClient({ url: dev.url, token, deadlineMs: 15_000 });
    try {
      await c.createTable('bt', { engine: 'btree' });
      await c.createTable('ls', { engine: 'lsm' });
      expect(await code(c.createTable('bt'))).toBe('TABLE_EXISTS');
      expect((await c.listTables()).map((t) => `${t.name}:${t.engine}`)).toEqual(['bt:btree', 'ls:lsm']);
      const keys = [bin(0x00), bin(0x00, 0x01), bin(0x2f, 0x25), bin(0x61), bin(0xff), bin(0xff, 0xff, 0x00)];
      for (const t of ['bt', 'ls']) for (const [i, k] of keys.entries()) await c.put(t, k, `${t}-${i}`);
      const page = await c.scan('ls', { limit: 4 });
      expect(page.items.map((i) => text(i.value))).toEqual(['ls-0', 'ls-1', 'ls-2', 'ls-3']);
      const rest = await c.scan('ls', { start: page.next ?? bin(0), limit: 100 });
      expect(rest.items.map((i) => text(i.value))).toEqual(['ls-4', 'ls-5']);
      expect(rest.next).toBeNull();
      // Conditional writes.
      const cur = await c.get('bt', keys[3]!);
      expect(text(cur?.value)).toBe('bt-3');
      expect(await code(c.put('bt', keys[3]!, 'x', { ifNoneMatch: true }))).toBe('CONDITION_FAILED');
      const { seq } = await c.put('bt', keys[3]!, 'bt-3b', { ifMatch: cur!.seq });
      expect(seq > cur!.seq).toBe(true);
      expect(await code(c.put('bt', keys[3]!, 'y', { ifMatch: cur!.seq }))).toBe('CONDITION_FAILED');
      expect(await code(c.put('bt', bin(0x7a), 'new', { ifNoneMatch: true }))).toBe('OK');
      await c.delete('bt', bin(0x7a));
      expect(await c.get('bt', bin(0x7a))).toBeNull();
      expect(await code(c.delete('bt', bin(0x7a)))).toBe('KEY_NOT_FOUND');
      expect(await code(c.get('nope', bin(1)))).toBe('TABLE_NOT_FOUND');
      const bad = new TesseraClient({ url: dev.url, token: `tess_${'A'.repeat(43)}`, deadlineMs: 5_000 });
      expect(await code(bad.get('bt', bin(1)))).toBe('UNAUTHORIZED');
      bad.close();

      // kill -9 one storage child: the supervisor restarts it and rewrites cluster.json.
      const victim = readClusterJson(dir).find((p) => p.role === 'storage' && p.pid !== null);
      expect(victim).toBeDefined();
      process.kill(victim!.pid!, 'SIGKILL');
      await waitFor(
        'the storage child to be restarted',
        () => {
          const again = readClusterJson(dir).find(
            (p) => p.role === 'storage' && p.ports.rpc === victim!.ports.rpc,
          );
          return (
            again?.pid !== null && again?.pid !== undefined && again.pid !== victim!.pid && isAlive(again.pid)
          );
        },
        20_000,
      );
      remember();
      expect(text((await c.get('ls', keys[5]!))?.value)).toBe('ls-5');

      // The metadata manager paused (SIGSTOP): the request manager routes on from its catalog copy
      // and leader hints, and its health says the MM is unreachable.
      const mms = readClusterJson(dir).filter((p) => p.role === 'metadata' && p.pid !== null);
      for (const p of mms) process.kill(p.pid!, 'SIGSTOP');
      try {
        await c.put('ls', bin(0x10), 'while-mm-down');
        expect(text((await c.get('ls', bin(0x10)))?.value)).toBe('while-mm-down');
        await waitFor(
          'health to report the MM unreachable',
          async () => {
            const r = await fetch(`${dev.url}/v1/health`);
            return r.status === 503;
          },
          20_000,
        );
      } finally {
        for (const p of mms) process.kill(p.pid!, 'SIGCONT');
      }
      await waitFor('health back', async () => (await fetch(`${dev.url}/v1/health`)).status === 200, 20_000);
    } finally {
      c.close();
    }

    // Ctrl-C (SIGINT): exit 0 and every child gone.
    expect(await stopDev(dev.proc, 20_000, 'SIGINT')).toBe(0);
    proc = undefined;
    for (const pid of childPids) expect(isAlive(pid)).toBe(false);

    // Start again on the same directory: same URL, all acknowledged data back.
    const again = await startDev(dir, devArgs, readyTimeoutMs);
    proc = again.proc;
    remember();
    expect(again.url).toBe(dev.url);
    const c2 = new TesseraClient({ url: again.url, token, deadlineMs: 15_000 });
    try {
      expect((await c2.listTables()).map((t) => t.name)).toEqual(['bt', 'ls']);
      const all = await c2.scan('bt', { limit: 100 });
      expect(all.items.map((i) => text(i.value))).toEqual(['bt-0', 'bt-1', 'bt-2', 'bt-3b', 'bt-4', 'bt-5']);
      expect(text((await c2.get('ls', bin(0xff, 0xff, 0x00)))?.value)).toBe('ls-5');
      expect(text((await c2.get('ls', bin(0x10)))?.value)).toBe('while-mm-down');
    } finally {
      c2.close();
    }
    expect(await stopDev(again.proc)).toBe(0);
    proc = undefined;
  }, 150_000);
});
