import { afterEach, describe, expect, it } from 'vitest';
import { memoryCommand } from '../../src/host/memory-sm.js';
import type { Entry } from '../../src/consensus/types.js';
import { Cluster, members, waitFor } from './harness.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** Pipelined Readys: applies overlap the next appends, in log order. */
describe('group host apply lane', () => {
  it('a slow apply does not stall the log: entries keep committing, applied in order, answered after apply', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(7, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const sm = c.sm(l, g);
    const calls: number[][] = [];
    /** Per apply call: how far the log committed past that call's last entry while it ran. */
    const ahead: number[] = [];
    const apply = sm.apply.bind(sm);
    const aheadOf = (entries: readonly Entry[]) =>
      c.host(l).status(g)!.commit - entries[entries.length - 1]!.index;
    sm.apply = async (entries: readonly Entry[]) => {
      calls.push(entries.map((e) => e.index));
      if (calls.length === 1) {
        // A slow engine commit that lasts until the log has moved on (or 3 s pass, below the 5 s
        // fsync-stall step-down): with one Ready at a time nothing new would be appended meanwhile,
        // so this would time out at 0 ahead. Waiting on the condition, not on a fixed delay, keeps
        // the test independent of the machine's load.
        const until = Date.now() + 3_000;
        while (aheadOf(entries) < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      } else {
        await new Promise((r) => setTimeout(r, 20));
      }
      ahead.push(aheadOf(entries));
      return apply(entries);
    };
    // Proposals arriving over several turns: each turn's proposals make one Ready.
    const outs = [];
    for (let k = 0; k < 30; k++) {
      outs.push(c.host(l).propose(g, [memoryCommand(`k${k % 5}`, `v${k}`)]));
      await new Promise((r) => setTimeout(r, 3));
    }
    const done = await Promise.all(outs);
    for (const o of done) expect(o[0]?.ok).toBe(true);
    const indexes = done.map((o) => (o[0]?.ok ? o[0].index : 0));
    for (let k = 1; k < indexes.length; k++) expect(indexes[k]).toBeGreaterThan(indexes[k - 1]!);
    // Every call got consecutive entries, the calls follow each other, and some call merged Readys.
    const flat = calls.flat();
    for (let k = 1; k < flat.length; k++) expect(flat[k]).toBe(flat[k - 1]! + 1);
    // While the first apply runs, later Readys keep appending and committing (the lane takes up to
    // limits.hostApplyPipelineMax of them), so later calls carry many entries at once.
    expect(calls.length).toBeLessThan(30);
    expect(Math.max(...calls.map((x) => x.length))).toBeGreaterThan(2);
    // The log did not wait for the slow apply: entries were appended and committed meanwhile.
    // (one Ready at a time would leave it at 1: nothing new is appended while the first apply runs)
    expect(ahead[0]).toBeGreaterThanOrEqual(2);
    // Values are those of the last write to each key, on every replica.
    expect(sm.data.get('k4')).toBe('v29');
    await waitFor(
      () => [1, 2, 3].every((i) => c.sm(i, g).data.get('k4') === 'v29'),
      10_000,
      'replicas to apply the last write',
    );
    await c.host(l).read(g);
    expect(sm.data.get('k0')).toBe('v25');
  });
});
