import { afterAll, describe, expect, it } from 'vitest';
import type { Engine, EngineKind } from '../../src/engine/types.js';
import { keyspaceId } from '../../src/engine/types.js';
import { groupId, tableId } from '../../src/lib/ids.js';
import type { Command, Condition } from '../../src/statemachine/command.js';
import { applyCommitted, type GroupEngines, GroupState } from '../../src/statemachine/apply.js';
import { Scratch } from '../engine/helpers.js';
import { entry, seqAt, type TableRef } from './helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);
const put = (t: TableRef, key: string, n: number, condition: Condition = { type: 'none' }): Command => ({
  type: 'put',
  request: { client: 9n, number: n },
  ...t,
  key: enc(key),
  value: enc(`v${n}`),
  condition,
});

/** The hot path of unconditional puts: no read of the current record before deciding. */
describe('applyCommitted reads', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('reads no record for unconditional puts, and still reads for a conditional one after them', async () => {
    const btree = await scratch.open('btree');
    const keysRead: number[] = [];
    const getMany = btree.getMany.bind(btree);
    btree.getMany = (reads) => {
      keysRead.push(reads.length);
      return getMany(reads);
    };
    const g: GroupEngines = {
      group: groupId(1),
      engines: new Map<EngineKind, Engine>([['btree', btree]]),
      metaKind: 'btree',
    };
    const t: TableRef = { table: tableId(1), engine: 'btree', keyspace: keyspaceId(1) };
    const state = await GroupState.load(g);
    const r1 = await applyCommitted([entry(1, put(t, 'a', 1)), entry(2, put(t, 'b', 2))], g, state);
    expect(r1.map((r) => r.outcome?.ok)).toEqual([true, true]);
    expect(keysRead).toEqual([]);
    // A conditional put on a key written by an unconditional put in the same batch sees that write.
    const r2 = await applyCommitted(
      [entry(3, put(t, 'a', 3)), entry(4, put(t, 'a', 4, { type: 'ifMatch', seq: seqAt(3) }))],
      g,
      state,
    );
    expect(r2.map((r) => r.outcome?.ok)).toEqual([true, true]);
    expect(keysRead).toEqual([1]);
    const got = await btree.get(keyspaceId(1), enc('a'));
    expect(new TextDecoder().decode(got?.value)).toBe('v4');
    expect(got?.seq).toEqual(seqAt(4));
  });

  it('stores one dedup client record per client per batch and one page record per 64 ids, not a record per write', async () => {
    const btree = await scratch.open('btree');
    const metaKeys: string[][] = [];
    const applyBatch = btree.applyBatch.bind(btree);
    btree.applyBatch = (group, writes, index, seq, meta = []) => {
      metaKeys.push(meta.map((m) => String.fromCharCode(m.key[0] as number)));
      return applyBatch(group, writes, index, seq, meta);
    };
    const g: GroupEngines = {
      group: groupId(2),
      engines: new Map<EngineKind, Engine>([['btree', btree]]),
      metaKind: 'btree',
    };
    const t: TableRef = { table: tableId(2), engine: 'btree', keyspace: keyspaceId(2) };
    const state = await GroupState.load(g);
    await applyCommitted(
      [1, 2, 3, 4].map((n) => entry(n, put(t, `k${n}`, n))),
      g,
      state,
    );
    // Ids 1-4 share page 0: one page record ('e') and the client record ('c').
    expect(metaKeys).toEqual([['e', 'c']]);
    // After a reload the client record says the last write: a retry of every id is still answered.
    const again = await GroupState.load(g);
    for (const n of [1, 2, 3, 4]) expect(again.dedup.lookup({ client: 9n, number: n })?.ok).toBe(true);
    expect(again.dedup.lookup({ client: 9n, number: 5 })).toBeUndefined();
  });
});
