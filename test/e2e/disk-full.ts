/**
 * `npm run chaos:disk-full` (root, and `mount` allowed; not in CI): the whole dev cluster on a
 * tmpfs that fills up, then grows. 32 clients write 1,000-byte values until the disk is full and
 * the writes are refused, then the tmpfs grows; the check: no process died (a storage node's exit
 * 75, its asked-for restart to reopen a failed engine, excepted), writes are taken again, and
 * every acknowledged write reads back with its value. Bounded: ~3-4 minutes, loopback only.
 *
 *   npm run chaos:disk-full [-- --size-mb 300]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isAlive, readClusterJson, startDev, stopDev, waitFor } from './dev-cluster.js';

const { values } = parseArgs({ options: { 'size-mb': { type: 'string', default: '300' } } });
const sizeMb = Number(values['size-mb']);
const valueBytes = 1000;
const clients = 32;
const say = (s: string): void => {
  process.stdout.write(`disk-full: ${s}\n`);
};

const mnt = mkdtempSync(path.join(tmpdir(), 'tessera-disk-full-'));
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', mnt]);
} catch (e) {
  say(`needs root and mount (${(e as Error).message.split('\n')[0]})`);
  rmSync(mnt, { recursive: true, force: true });
  process.exit(2);
}

const dir = path.join(mnt, 'd');
let failed = false;
const fail = (why: string): void => {
  failed = true;
  say(`FAIL: ${why}`);
};

try {
  const dev = await startDev(dir, ['--port', '7191'], 60_000);
  const token = readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
  const auth = { authorization: `Bearer ${token}` };
  const url = (key: string): string => `${dev.url}/v1/tables/t/items/${key}`;
  await fetch(`${dev.url}/v1/tables/t`, { method: 'PUT', headers: auth, body: '{"engine":"btree"}' });
  const value = Buffer.alloc(valueBytes, 'v');
  const acked: string[] = [];
  let next = 0;

  /** Writes until `stop()` says so; returns the answers by status and error code. */
  async function load(stop: (refusedInARow: number) => boolean): Promise<Map<string, number>> {
    const codes = new Map<string, number>();
    let refusedInARow = 0;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (!stop(refusedInARow)) {
          const key = `key${String(next++).padStart(8, '0')}`;
          let code: string;
          try {
            const r = await fetch(url(key), { method: 'PUT', headers: auth, body: value });
            const text = await r.text();
            code = r.status === 200 ? 'ok' : `${r.status} ${/"code":"(\w+)"/.exec(text)?.[1] ?? '?'}`;
          } catch (e) {
            code = `fetch ${(e as Error).message}`;
          }
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === 'ok') {
            acked.push(key);
            refusedInARow = 0;
          } else {
            refusedInARow++;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }),
    );
    return codes;
  }

  const fillEnd = Date.now() + 150_000;
  say(`filling a ${sizeMb} MiB tmpfs with ${clients} clients`);
  const filling = await load((refused) => refused >= 200 || Date.now() > fillEnd);
  say(`while filling: ${JSON.stringify([...filling])}`);
  const df = execFileSync('df', ['-m', mnt]).toString().trim().split('\n').pop();
  say(`disk: ${df}`);
  if (!filling.has('ok')) fail('no write was acknowledged before the disk filled');

  const dead = readClusterJson(dir).filter((p) => p.pid !== null && !isAlive(p.pid));
  if (dev.proc.exitCode !== null) fail('the dev supervisor died');
  if (dead.length > 0) fail(`processes died: ${dead.map((p) => `${p.role} ${p.id}`).join(', ')}`);

  execFileSync('mount', ['-o', `remount,size=${sizeMb * 4}m`, mnt]);
  say(`grew the tmpfs to ${sizeMb * 4} MiB; waiting for writes to be taken again`);
  await waitFor(
    'a write to be taken',
    async () =>
      (await fetch(url('probe'), { method: 'PUT', headers: auth, body: 'x' }).catch(() => null))?.status ===
      200,
    90_000,
  );
  const afterEnd = Date.now() + 10_000;
  const after = await load(() => Date.now() > afterEnd);
  say(`after growing: ${JSON.stringify([...after])}`);

  let missing = 0;
  let wrong = 0;
  for (let k = 0; k < acked.length; k += 64) {
    await Promise.all(
      acked.slice(k, k + 64).map(async (key) => {
        const r = await fetch(url(key), { headers: auth });
        const body = Buffer.from(await r.arrayBuffer());
        if (r.status === 404) missing++;
        else if (r.status !== 200 || !body.equals(value)) wrong++;
      }),
    );
  }
  say(`acknowledged ${acked.length}, missing ${missing}, wrong ${wrong}`);
  if (missing + wrong > 0) fail('acknowledged writes lost or changed');
  const restarts = dev
    .output()
    .split('\n')
    .filter((l) => / exited \(/.test(l));
  for (const l of restarts) say(`supervisor: ${l.trim()}`);
  if (restarts.some((l) => !/exited \(code 75\)/.test(l)))
    fail('a process exited other than to reopen an engine');
  await stopDev(dev.proc);
} catch (e) {
  fail((e as Error).message);
} finally {
  try {
    execFileSync('umount', [mnt]);
  } catch {
    // left mounted: say so
    say(`could not unmount ${mnt}`);
  }
  rmSync(mnt, { recursive: true, force: true });
}
say(failed ? 'FAILED' : 'passed');
process.exit(failed ? 1 : 0);
