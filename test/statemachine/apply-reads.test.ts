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
});
