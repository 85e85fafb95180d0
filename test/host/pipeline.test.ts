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
    sm.apply = async (entries: readonly Entry[]) => {
      calls.push(entries.map((e) => e.index));
      await new Promise((r) => setTimeout(r, 250)); // a slow engine commit
      ahead.push(c.host(l).status(g)!.commit - entries[entries.length - 1]!.index);
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
    expect(ahead[0]).toBeGreaterThanOrEqual(3);
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
