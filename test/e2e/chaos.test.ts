/**
 * Chaos on real processes (issue 4, "Tests"): a `tessera dev` cluster (3 MM, 2 groups x 3), a
 * concurrent workload on hot keys of a btree and an lsm table, and one fault after another:
 * kill -9 of a group leader, of a follower, of the MM leader; SIGSTOP / SIGCONT of a leader;
 * a leader cut from its followers by the fault switch (split brain). Then heal, converge, and
 * check: the history is linearizable per key, no acknowledged write is lost, and the replicas of
 * each group hold the same records. CHAOS_ROUNDS=N repeats the fault sequence (npm run chaos).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChaosCluster, sleep } from './chaos-cluster.js';
import { waitFor } from './dev-cluster.js';
import { compareReplicas } from './chaos-replicas.js';
import { judge, Workload } from './chaos-workload.js';

const rounds = Math.max(1, Number(process.env.CHAOS_ROUNDS ?? '1'));
const tables = ['hot_bt', 'hot_ls'];
/** How long the workload runs under each fault before the next step. */
const faultMs = 3_000;
const settleMs = 1_500;

interface Step {
  name: string;
  /** Resolves with a detail for the log (e.g. how long until a new leader). */
  run: (c: ChaosCluster) => Promise<string | undefined>;
}

/** kill -9 the leader of `table`'s group; wait for a new leader and the restart by dev. */
const killLeader = (table: string): Step => ({
  name: `kill -9 the leader of ${table}'s group`,
  run: async (c) => {
    const g = await c.waitLeader(table);
    const pid = c.pidOf(g.leader as number, 'storage');
    const t0 = Date.now();
    c.kill9(pid);
    await c.waitLeader(table, g.term);
    const elected = Date.now() - t0;
    await c.waitRestarted(g.leader as number, 'storage', pid);
    return `new leader in the catalog after ${elected} ms`;
  },
});

const killFollower = (table: string): Step => ({
  name: `kill -9 a follower of ${table}'s group`,
  run: async (c) => {
    const g = await c.waitLeader(table);
    const f = g.members.find((m) => m !== g.leader) as number;
    const pid = c.pidOf(f, 'storage');
    c.kill9(pid);
    await sleep(faultMs);
    await c.waitRestarted(f, 'storage', pid);
    return undefined;
  },
});

const killMmLeader: Step = {
  name: 'kill -9 the MM leader',
  run: async (c) => {
    const v = await c.view();
    const leader = v.metadata.leader as number;
    const pid = c.pidOf(leader, 'metadata');
    c.kill9(pid);
    await sleep(faultMs);
    await c.waitRestarted(leader, 'metadata', pid);
    return undefined;
  },
};

const text = (b: Uint8Array | null | undefined): string => Buffer.from(b ?? []).toString();

/** Facts from the direct probes of deposed leaders, checked at the end. */
const probes = {
  staleReads: [] as string[],
  splitBrainAcks: [] as string[],
  answers: {} as Record<string, number>,
};
const count = (what: string): void => {
  probes.answers[what] = (probes.answers[what] ?? 0) + 1;
};

/** A put through the request manager, retried a few times; true once acknowledged. */
async function putAcked(c: ChaosCluster, table: string, key: string, value: string): Promise<boolean> {
  for (let i = 0; i < 4; i++) {
    try {
      await c.client.put(table, key, value);
      return true;
    } catch {
      await sleep(200);
    }
  }
  return false;
}

/**
 * SIGSTOP the leader longer than the failure detector; a write acknowledged by the new leader;
 * SIGCONT; then read the key straight from the old leader for a while: it must refuse (not
 * leader, timeout) or answer the new value, never the value from before the pause.
 */
const pauseLeader = (table: string): Step => ({
  name: `SIGSTOP / SIGCONT the leader of ${table}'s group`,
  run: async (c) => {
    const g = await c.waitLeader(table);
    const old = g.leader as number;
    const shard = await c.shardOf(g.id, old);
    expect(await putAcked(c, table, 'probe-pause', 'before')).toBe(true);
    const pid = c.pidOf(old, 'storage');
    c.pause(pid);
    const t0 = Date.now();
    let elected = 0;
    let after = false;
    try {
      await c.waitLeader(table, g.term);
      elected = Date.now() - t0;
      after = await putAcked(c, table, 'probe-pause', 'after');
    } finally {
      c.resume(pid);
    }
    for (const end = Date.now() + faultMs; Date.now() < end; ) {
      const r = await c.directGet(old, g.id, shard, 'probe-pause');
      count(r.ok ? `paused-get:${text(r.value.value)}` : `paused-get:${r.code}`);
      if (after && r.ok && text(r.value.value) !== 'after')
        probes.staleReads.push(`old leader ${old} served ${text(r.value.value)} after resume`);
      await sleep(20);
    }
    return `new leader in the catalog after ${elected} ms`;
  },
});

/**
 * Cuts the leader from both followers (it still reaches the MM and the request manager): once a
 * new leader is elected, a write sent straight to the old one must not be acknowledged, and it
 * must never become visible.
 */
const isolateLeader = (table: string): Step => ({
  name: `isolate the leader of ${table}'s group from its followers`,
  run: async (c) => {
    const g = await c.waitLeader(table);
    const old = g.leader as number;
    const shard = await c.shardOf(g.id, old);
    expect(await putAcked(c, table, 'probe-split', 'before')).toBe(true);
    for (const f of g.members.filter((m) => m !== old)) await c.cut(old, f);
    const t0 = Date.now();
    let elected = 0;
    try {
      await c.waitLeader(table, g.term);
      elected = Date.now() - t0;
      const r = await c.directPut(old, g.id, shard, 'probe-split', 'split-brain');
      count(r.ok ? 'split-put:ok' : `split-put:${r.code}`);
      if (r.ok) probes.splitBrainAcks.push(`old leader ${old} acknowledged a write while cut off`);
      await sleep(faultMs);
    } finally {
      await c.healAll();
    }
    await c.waitLeader(table);
    const it = await c.client.get(table, 'probe-split');
    expect(text(it?.value)).toBe('before');
    return `new leader in the catalog after ${elected} ms`;
  },
});

/**
 * Cuts the MM leader from the other MM nodes: the majority elects a new MM leader and catalog
 * changes go on there (a table is created during the cut); groups keep serving meanwhile.
 */
const isolateMmLeader: Step = {
  name: 'isolate the MM leader from the other MM nodes',
  run: async (c) => {
    const v = await c.view();
    const old = v.metadata.leader as number;
    for (const m of v.metadata.members.filter((x) => x !== old)) await c.cut(old, m);
    const t0 = Date.now();
    let created = 0;
    try {
      await waitFor(
        'a table created while the MM leader is cut off',
        async () => {
          try {
            await c.client.createTable(`during_mm_cut_${++mmCuts}`, { engine: 'lsm' });
            return true;
          } catch {
            return false;
          }
        },
        30_000,
      );
      created = Date.now() - t0;
      const after = await c.view();
      expect(after.metadata.leader).not.toBe(old);
      await sleep(faultMs);
    } finally {
      await c.healAll();
    }
    return `catalog change committed ${created} ms after the cut`;
  },
};
let mmCuts = 0;

const steps: Step[] = [
  killLeader('hot_bt'),
  killFollower('hot_ls'),
  killMmLeader,
  pauseLeader('hot_ls'),
  isolateLeader('hot_bt'),
  isolateMmLeader,
];

describe('chaos on a dev cluster (real processes)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-chaos-'));
  let cluster: ChaosCluster | undefined;
  let workload: Workload | undefined;

  afterAll(async () => {
    await workload?.stop().catch(() => undefined);
    workload?.close();
    await cluster?.stop().catch(() => undefined);
    if (process.env.CHAOS_KEEP === '1') console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it(
    'keeps every acknowledged write, stays linearizable, and ends with equal replicas',
    async () => {
      const c = await ChaosCluster.start({
        dir,
        groups: 2,
        spares: 0,
        replaceAfterS: 60,
        readyTimeoutMs: 90_000,
      });
      cluster = c;
      await c.client.createTable('hot_bt', { engine: 'btree' });
      await c.client.createTable('hot_ls', { engine: 'lsm' });
      const gb = await c.groupOfTable('hot_bt');
      const gl = await c.groupOfTable('hot_ls');
      expect(gb.id).not.toBe(gl.id); // tables spread over the two groups
      workload = new Workload({
        url: c.url,
        token: c.token,
        tables,
        keysPerTable: 4,
        clients: 4,
        thinkMsMax: 30,
        deadlineMs: 4_000,
        seed: 7,
      });
      workload.start();
      await sleep(settleMs);
      const log: string[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const s of steps) {
          const t0 = Date.now();
          const detail = await s.run(c);
          log.push(`${s.name}: ${Date.now() - t0} ms${detail === undefined ? '' : ` (${detail})`}`);
          await sleep(settleMs);
        }
      }
      await c.healAll();
      await workload.stop();
      await c.waitConverged(30_000);
      const finals = await workload.finalReads(15_000);
      const groups = (await c.view()).groups;
      const v = judge(workload, finals);
      console.log([...log, `ops ${v.ops}`, JSON.stringify(workload.counts)].join('\n'));
      expect(v.lost, v.lost.join('\n')).toEqual([]);
      expect(v.verdict, v.report).toBe('ok');
      expect(workload.counts.ok).toBeGreaterThan(100);
      console.log(`direct probes of deposed leaders: ${JSON.stringify(probes.answers)}`);
      expect(probes.staleReads).toEqual([]);
      expect(probes.splitBrainAcks).toEqual([]);

      await c.stop();
      cluster = undefined;
      const cmp = await compareReplicas(dir, groups);
      console.log(cmp.summary.join('\n'));
      expect(cmp.mismatches).toEqual([]);
      expect(cmp.summary.length).toBe(6);
    },
    230_000 * rounds,
  );
});
