/**
 * The replicas of a group apply the same entries; their memtable flushes and checkpoints are
 * spread so they do not all hit the engines at the same moment (src/storage/kv-memtable.ts,
 * src/host/host.ts checkpointEvery).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { keyspaceId } from '../../src/engine/types.js';
import { checkpointEvery } from '../../src/host/host.js';
import { groupId, logIndex, type Seq } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import { KvMemtable } from '../../src/storage/kv-memtable.js';
import { put, Scratch } from '../engine/helpers.js';

describe('flush and checkpoint spread', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  /** Applies `n` one-write batches through the btree view; true once a flush reached the engine. */
  async function flushedAfter(random: () => number, n: number): Promise<boolean> {
    const btree = await scratch.open('btree');
    const g = groupId(9);
    const mem = new KvMemtable(g, new Map([['btree', btree]]), random);
    const view = mem.engines.get('btree')!;
    for (let i = 1; i <= n; i++) {
      const s = makeSeq(1n, i, 1) as Seq;
      await view.applyBatch(g, [put(keyspaceId(1), `k${i}`, 'v', s)], logIndex(i), s);
    }
    await mem.settle();
    return (await btree.getApplied(g)).index > 0;
  }

  it('a generation flushes at its own point between 3/4 of the threshold and the threshold', async () => {
    const threeQuarters = Math.ceil(0.75 * limits.kvMemtableFlushRecords);
    expect(await flushedAfter(() => 0, threeQuarters)).toBe(true); // drawn at 3/4
    expect(await flushedAfter(() => 0.999, threeQuarters)).toBe(false); // drawn near 1
    expect(await flushedAfter(() => 0.999, limits.kvMemtableFlushRecords)).toBe(true);
  });

  it('checkpoint intervals lie in (3/4, 1] of the limit, fixed per host seed and group, and differ', () => {
    const every = limits.hostCheckpointEntries;
    const seen = new Set<number>();
    for (let seed = 1; seed <= 50; seed++) {
      for (const g of [1, 2, 3]) {
        const n = checkpointEvery(seed, g);
        expect(n).toBeGreaterThan(0.75 * every);
        expect(n).toBeLessThanOrEqual(every);
        expect(checkpointEvery(seed, g)).toBe(n);
        seen.add(n);
      }
    }
    expect(seen.size).toBeGreaterThan(100);
  });
});
