import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/consensus/types.js';
import type { Engine, EngineKind } from '../../src/engine/types.js';
import { keyspaceId } from '../../src/engine/types.js';
import { groupId, tableId } from '../../src/lib/ids.js';
import type { Command, Condition } from '../../src/statemachine/command.js';
import { applyCommitted, type GroupEngines, GroupState } from '../../src/statemachine/apply.js';
import { Scratch } from '../engine/helpers.js';
import { entry, hex, Model, seqAt, type TableRef } from './helpers.js';

/** Tables of one test group: keyspaces are per node, so each group gets its own. */
interface Fixture {
  readonly g: GroupEngines;
  readonly t1: TableRef;
  readonly t2: TableRef;
}
const enc = (s: string) => new TextEncoder().encode(s);

function put(
  t: TableRef,
  key: string,
  value: string,
  req: [bigint, number],
  condition: Condition = { type: 'none' },
): Command {
  return {
    type: 'put',
    request: { client: req[0], number: req[1] },
    ...t,
    key: enc(key),
    value: enc(value),
    condition,
  };
}
function del(
  t: TableRef,
  key: string,
  req: [bigint, number],
  condition: Condition = { type: 'none' },
): Command {
  return { type: 'delete', request: { client: req[0], number: req[1] }, ...t, key: enc(key), condition };
}

async function rows(e: Engine, ks: number) {
  return (await e.scan(keyspaceId(ks), { includeTombstones: true, limit: 10_000 })).map(
    (c) => `${hex(c.key)} ${c.tombstone ? 'X' : hex(c.value)} ${hex(c.seq)}`,
  );
}

describe('applyCommitted over real engines', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());
  let nextGroup = 1;
  let pair: Map<EngineKind, Engine> | undefined;
  const group = async (): Promise<Fixture> => {
    pair ??= new Map<EngineKind, Engine>([
      ['btree', await scratch.open('btree')],
      ['lsm', await scratch.open('lsm')],
    ]);
    const n = nextGroup++;
    return {
      g: { group: groupId(n), engines: pair, metaKind: 'btree' },
      t1: { table: tableId(2 * n), engine: 'btree', keyspace: keyspaceId(2 * n) },
      t2: { table: tableId(2 * n + 1), engine: 'lsm', keyspace: keyspaceId(2 * n + 1) },
    };
  };

  it('applies puts, deletes and conditions in log order, with an overlay inside the batch', async () => {
    const { g, t1, t2 } = await group();
    const state = await GroupState.load(g);
    const cmds: (Command | 'noop')[] = [
      put(t1, 'a', 'A1', [1n, 1]),
      put(t1, 'a', 'A2', [1n, 2], { type: 'ifMatch', seq: seqAt(1) }), // sees entry 1 in the same batch
      put(t1, 'a', 'A3', [1n, 3], { type: 'ifMatch', seq: seqAt(1) }), // stale: fails with current seq 2
      put(t2, 'b', 'B', [1n, 4], { type: 'ifNoneMatch' }),
      put(t2, 'b', 'B?', [1n, 5], { type: 'ifNoneMatch' }),
      del(t2, 'nope', [1n, 6]),
      'noop',
      del(t2, 'b', [1n, 7]),
      del(t2, 'b', [1n, 8]),
    ];
    const results = await applyCommitted(
      cmds.map((c, i) => entry(i + 1, c)),
      g,
      state,
    );
    expect(results.map((r) => (r.outcome?.ok ? 'ok' : (r.outcome?.error ?? '-')))).toEqual([
      'ok',
      'ok',
      'CONDITION_FAILED',
      'ok',
      'CONDITION_FAILED',
      'KEY_NOT_FOUND',
      '-',
      'ok',
      'KEY_NOT_FOUND',
    ]);
    expect(results[2]?.outcome).toEqual({ ok: false, error: 'CONDITION_FAILED', currentSeq: seqAt(2) });
    const btree = g.engines.get('btree') as Engine;
    const lsm = g.engines.get('lsm') as Engine;
    expect(await btree.get(t1.keyspace, enc('a'))).toEqual({
      value: enc('A2'),
      seq: seqAt(2),
      tombstone: false,
    });
    expect(await lsm.get(t2.keyspace, enc('b'))).toMatchObject({ tombstone: true, seq: seqAt(8) });
    for (const e of [btree, lsm])
      expect(await e.getApplied(g.group)).toEqual({ index: 9, seq: seqAt(9), installing: false });
  });

  it('answers a retried request id with its first outcome and writes once', async () => {
    const { g, t1 } = await group();
    const state = await GroupState.load(g);
    const first = await applyCommitted(
      [entry(1, put(t1, 'k', 'one', [5n, 1])), entry(2, put(t1, 'k', 'one', [5n, 1]))],
      g,
      state,
    );
    expect(first[1]).toMatchObject({ duplicate: true, outcome: { ok: true, seq: seqAt(1) } });
    // After a restart (state reloaded from the engines) the retry is still recognized.
    const reloaded = await GroupState.load(g);
    const later = await applyCommitted([entry(3, put(t1, 'k', 'one', [5n, 1]))], g, reloaded);
    expect(later[0]).toMatchObject({ duplicate: true, outcome: { ok: true, seq: seqAt(1) } });
    expect(await (g.engines.get('btree') as Engine).get(t1.keyspace, enc('k'))).toMatchObject({
      seq: seqAt(1),
    });
  });

  it('dropTable removes the data; later commands for the table answer TABLE_NOT_FOUND, also after reload', async () => {
    const { g, t1, t2 } = await group();
    const state = await GroupState.load(g);
    const drop: Command = {
      type: 'dropTable',
      request: { client: 9n, number: 1 },
      table: t2.table,
      shards: [{ engine: t2.engine, keyspace: t2.keyspace }],
    };
    const res = await applyCommitted(
      [
        entry(1, put(t2, 'x', 'X', [1n, 1])),
        entry(2, put(t1, 'y', 'Y', [1n, 2])),
        entry(3, drop),
        entry(4, put(t2, 'z', 'Z', [1n, 3])),
      ],
      g,
      state,
    );
    expect(res.map((r) => r.outcome?.ok)).toEqual([true, true, true, false]);
    expect(res[3]?.outcome).toEqual({ ok: false, error: 'TABLE_NOT_FOUND' });
    const lsm = g.engines.get('lsm') as Engine;
    expect(await lsm.scan(t2.keyspace, { includeTombstones: true })).toEqual([]);
    expect(await (g.engines.get('btree') as Engine).get(t1.keyspace, enc('y'))).toBeDefined();
    const reloaded = await GroupState.load(g);
    const after = await applyCommitted([entry(5, put(t2, 'w', 'W', [1n, 4]))], g, reloaded);
    expect(after[0]?.outcome).toEqual({ ok: false, error: 'TABLE_NOT_FOUND' });
  });

  it('replays after a crash between two instances and ends in the same state', async () => {
    const { g, t1, t2 } = await group();
    const cmds = Array.from({ length: 30 }, (_, i) =>
      i % 3 === 0
        ? put(t2, `k${i % 7}`, `v${i}`, [1n, i + 1], { type: 'ifNoneMatch' })
        : i % 3 === 1
          ? put(t1, `k${i % 5}`, `v${i}`, [2n, i + 1])
          : del(t1, `k${(i + 1) % 5}`, [3n, i + 1]),
    );
    const entries = cmds.map((c, i) => entry(i + 1, c));
    const state = await GroupState.load(g);
    await applyCommitted(entries.slice(0, 10), g, state);
    // The lsm instance fails its batch: the btree one commits entries 11..20, the lsm one does not.
    const lsm = g.engines.get('lsm') as Engine;
    const faulty = Object.create(lsm) as Engine;
    faulty.applyBatch = () => Promise.reject(new Error('crash'));
    const broken: GroupEngines = { ...g, engines: new Map([...g.engines, ['lsm', faulty]]) };
    await expect(applyCommitted(entries.slice(10, 20), broken, state)).rejects.toThrow('crash');
    await (g.engines.get('btree') as Engine).checkpoint();
    const reloaded = await GroupState.load(g);
    expect(reloaded.appliedOf('btree')).toBe(20);
    expect(reloaded.appliedOf('lsm')).toBe(10);
    expect(reloaded.replayFrom).toBe(11);
    const replayed = await applyCommitted(entries.slice(10), g, reloaded);
    // btree entries 11..20 were applied before: no outcome; lsm ones are decided now.
    expect(
      replayed
        .slice(0, 10)
        .every(
          (r) => (r.command?.type === 'put' && r.command.engine === 'lsm') === (r.outcome !== undefined),
        ),
    ).toBe(true);
    const model = new Model();
    entries.forEach((e, i) => {
      model.apply(e, cmds[i]);
    });
    expect(await rows(g.engines.get('btree') as Engine, t1.keyspace)).toEqual(model.rows(t1.keyspace));
    expect(await rows(lsm, t2.keyspace)).toEqual(model.rows(t2.keyspace));
  });

  it('property: any batching, with restarts, gives the reference outcomes and state', async () => {
    const condArb = fc.oneof(
      { weight: 3, arbitrary: fc.constant<Condition>({ type: 'none' }) },
      { weight: 1, arbitrary: fc.constant<Condition>({ type: 'ifNoneMatch' }) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 1, max: 40 })
          .map((i): Condition => ({ type: 'ifMatch', seq: seqAt(i) })),
      },
    );
    const cmdArb = fc.record({
      op: fc.constantFrom('put', 'put', 'del', 'noop'),
      table: fc.constantFrom(1, 2),
      key: fc.constantFrom('a', 'b', 'c'),
      cond: condArb,
      client: fc.bigInt({ min: 1n, max: 3n }),
      number: fc.integer({ min: 1, max: 15 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmdArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (specs, sizes, restart) => {
          const { g, t1, t2 } = await group();
          const cmds = specs.map((s, i): Command | undefined =>
            s.op === 'noop'
              ? undefined
              : s.op === 'put'
                ? put(s.table === 1 ? t1 : t2, s.key, `v${i}`, [s.client, s.number], s.cond)
                : del(s.table === 1 ? t1 : t2, s.key, [s.client, s.number], s.cond),
          );
          const entries: Entry[] = cmds.map((c, i) => entry(i + 1, c ?? 'noop'));
          const model = new Model();
          const expected = entries.map((e, i) => model.apply(e, cmds[i]));
          let state = await GroupState.load(g);
          const got = [];
          for (let at = 0, b = 0; at < entries.length; b++) {
            const n = sizes[b % sizes.length] as number;
            got.push(...(await applyCommitted(entries.slice(at, at + n), g, state)));
            at += n;
            if (restart) state = await GroupState.load(g);
          }
          expect(got.map((r) => ({ outcome: r.outcome, duplicate: r.duplicate }))).toEqual(
            expected.map((r) => ({ outcome: r.outcome, duplicate: r.duplicate })),
          );
          expect(await rows(g.engines.get('btree') as Engine, t1.keyspace)).toEqual(model.rows(t1.keyspace));
          expect(await rows(g.engines.get('lsm') as Engine, t2.keyspace)).toEqual(model.rows(t2.keyspace));
          // Each instance holds the keyspace of its own table only.
          expect(await rows(g.engines.get('lsm') as Engine, t1.keyspace)).toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });
});
