/**
 * Replica replacement on real processes: a dev cluster of one group of 3 plus one spare with
 * `--replace-after 2`; a follower is stopped (SIGSTOP) for longer than that while a writer keeps
 * writing; the control plane replaces it by the spare (catalog membership changes), the spare
 * catches up, and after the stop every member of the group holds the same records. Every
 * acknowledged write is read back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTesseraError } from '../../src/lib/errors.js';
import { ChaosCluster, sleep } from './chaos-cluster.js';
import { compareReplicas } from './chaos-replicas.js';
import { waitFor } from './dev-cluster.js';

const keysMax = 400;

describe('replica replacement (real processes)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-chaos-replace-'));
  let cluster: ChaosCluster | undefined;
  let writing = false;
  let writer: Promise<void> = Promise.resolve();

  afterAll(async () => {
    writing = false;
    await writer;
    await cluster?.stop().catch(() => undefined);
    if (process.env.CHAOS_KEEP === '1') console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  /** Writes k0, k1, ... in turn; remembers the value of each acknowledged write. */
  const write = async (c: ChaosCluster, acked: Map<string, string>): Promise<void> => {
    for (let n = 0; writing && n < keysMax * 10; n++) {
      const key = `k${n % keysMax}`;
      const value = `v${n}`;
      try {
        await c.client.put('rep', key, value);
        acked.set(key, value);
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        acked.delete(key); // indeterminate: not checked
      }
      await sleep(5);
    }
  };

  it('replaces a stopped follower by the spare, which ends with the same data', async () => {
    const c = await ChaosCluster.start({
      dir,
      groups: 1,
      spares: 1,
      replaceAfterS: 2,
      readyTimeoutMs: 90_000,
    });
    cluster = c;
    await c.client.createTable('rep', { engine: 'lsm' });
    const before = await c.waitLeader('rep');
    // dev is ready once the group has a leader; the spare may still be registering.
    let spare: { id: number } | undefined;
    await waitFor(
      'a spare storage node',
      async () => {
        spare = (await c.view()).nodes.find((n) => n.role === 'storage' && n.state === 'spare');
        return spare !== undefined;
      },
      30_000,
    );
    const acked = new Map<string, string>();
    writing = true;
    writer = write(c, acked);
    await sleep(1_000);

    const victim = before.members.find((m) => m !== before.leader) as number;
    const pid = c.pidOf(victim, 'storage');
    c.pause(pid);
    try {
      await waitFor(
        `node ${victim} replaced by spare ${spare?.id}`,
        async () => {
          const g = await c.groupOfTable('rep').catch(() => null);
          return g !== null && !g.members.includes(victim) && g.members.includes(spare?.id as number);
        },
        60_000,
      );
    } finally {
      c.resume(pid);
    }
    await sleep(1_000);
    writing = false;
    await writer;
    expect(acked.size).toBeGreaterThan(50);

    await c.waitConverged(30_000);
    const group = await c.groupOfTable('rep');
    expect(group.members).toHaveLength(3);
    for (const [key, value] of acked) {
      const it = await c.client.get('rep', key);
      expect(Buffer.from(it?.value ?? []).toString(), key).toBe(value);
    }
    const groups = (await c.view()).groups;
    await c.stop();
    cluster = undefined;
    const cmp = await compareReplicas(dir, groups);
    console.log(cmp.summary.join('\n'));
    expect(cmp.mismatches).toEqual([]);
    expect(cmp.summary).toHaveLength(3);
    expect(cmp.summary.some((l) => l.includes(`node ${spare?.id}:`))).toBe(true);
  }, 200_000);
});
