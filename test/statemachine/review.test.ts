/**
 * Correctness review (wave 3): request de-duplication must never run a retry twice, even after
 * its client was evicted from the bounded table.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine, EngineKind, MetaRecord } from '../../src/engine/types.js';
import { keyspaceId } from '../../src/engine/types.js';
import { groupId, logIndex, tableId } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import { applyCommitted, type GroupEngines, GroupState } from '../../src/statemachine/apply.js';
import type { Command } from '../../src/statemachine/command.js';
import type { Outcome } from '../../src/statemachine/decide.js';
import { TesseraError } from '../../src/lib/errors.js';
import { DedupTable } from '../../src/statemachine/dedup.js';
import { Scratch } from '../engine/helpers.js';
import { entry, persist, recordEdits } from './helpers.js';

const ok = (n: number): Outcome => ({ ok: true, seq: makeSeq(BigInt(n), 0, 1) });
const forgotten: Outcome = { ok: false, error: 'OUTCOME_UNKNOWN' };

describe('dedup review: an evicted client', () => {
  it('a retry of an evicted client is answered OUTCOME_UNKNOWN, never run again; its new requests run', () => {
    const t = new DedupTable({ idsPerClientMax: 4, clientsMax: 2 });
    const store = new Map<string, Map<string, MetaRecord>>();
    persist(store, recordEdits(t, { client: 1n, number: 5 }, ok(1), logIndex(1), 'btree'));
    persist(store, recordEdits(t, { client: 2n, number: 1 }, ok(2), logIndex(2), 'lsm'));
    persist(store, recordEdits(t, { client: 3n, number: 1 }, ok(3), logIndex(3), 'btree')); // evicts client 1
    expect(t.clientCount).toBe(2);
    expect(t.lookup({ client: 1n, number: 5 })).toEqual(forgotten);
    expect(t.lookup({ client: 1n, number: 3 })).toEqual(forgotten);
    expect(t.lookup({ client: 1n, number: 6 })).toBeUndefined();
    // The same after a restart from what was persisted.
    const back = new DedupTable({ idsPerClientMax: 4, clientsMax: 2 });
    for (const [home, m] of store) back.load(home as EngineKind, [...m.values()]);
    expect(back.lookup({ client: 1n, number: 5 })).toEqual(forgotten);
    expect(back.lookup({ client: 3n, number: 1 })).toEqual(ok(3));
    // The client comes back with a new request: remembered, and the old one stays forgotten.
    persist(store, recordEdits(t, { client: 1n, number: 6 }, ok(4), logIndex(4), 'lsm'));
    expect(t.lookup({ client: 1n, number: 6 })).toEqual(ok(4));
    expect(t.lookup({ client: 1n, number: 5 })).toEqual(forgotten);
    // And in a serialized (in-memory snapshot) form.
    const again = new DedupTable({ idsPerClientMax: 4, clientsMax: 2 });
    again.load('btree', t.toRecords());
    expect(again.lookup({ client: 2n, number: 1 })).toEqual(forgotten);
  });

  it('the forgotten clients are bounded too', () => {
    const t = new DedupTable({ idsPerClientMax: 2, clientsMax: 1, forgottenClientsMax: 3 });
    for (let c = 1; c <= 10; c++) t.record({ client: BigInt(c), number: 1 }, ok(c), logIndex(c), 'btree');
    expect(t.clientCount).toBe(1);
    expect(t.forgottenClientCount).toBe(3);
    expect(t.lookup({ client: 9n, number: 1 })).toEqual(forgotten);
    expect(t.lookup({ client: 10n, number: 1 })).toEqual(ok(10));
  });
});

describe('dedup review: instances at different applied indexes after a crash', () => {
  it("a floor raised by trimming an id of the other instance survives losing this instance's batch", () => {
    const bounds = { idsPerClientMax: 2, clientsMax: 10 };
    const t = new DedupTable(bounds);
    const store = new Map<string, Map<string, MetaRecord>>();
    persist(store, recordEdits(t, { client: 7n, number: 1 }, ok(1), logIndex(1), 'btree'));
    persist(store, recordEdits(t, { client: 7n, number: 2 }, ok(2), logIndex(2), 'lsm'));
    const lsmAt2 = new Map(store.get('lsm'));
    // Entry 3 (an lsm table): trims 7:1, whose record lives in btree.
    persist(store, recordEdits(t, { client: 7n, number: 3 }, ok(3), logIndex(3), 'lsm'));
    expect(t.lookup({ client: 7n, number: 1 })).toEqual(forgotten);
    // Crash: btree holds entry 3's batch, lsm lost it (it restarts at index 2).
    store.set('lsm', lsmAt2);
    const back = new DedupTable(bounds);
    for (const [home, m] of store) back.load(home as EngineKind, [...m.values()]);
    // Replay of entry 3 on lsm.
    if (back.lookup({ client: 7n, number: 3 }) === undefined)
      persist(store, recordEdits(back, { client: 7n, number: 3 }, ok(3), logIndex(3), 'lsm'));
    // Every replica must answer the same: 7:1 was forgotten, a retry must not run again.
    expect(back.lookup({ client: 7n, number: 1 })).toEqual(forgotten);
  });
});

describe('dedup review: applyCommitted', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('a put retried after its client was evicted does not overwrite a later acknowledged put', async () => {
    const engines = new Map<EngineKind, Engine>([['btree', await scratch.open('btree')]]);
    const g: GroupEngines = { group: groupId(1), engines, metaKind: 'btree' };
    const state = new GroupState(new DedupTable({ idsPerClientMax: 4, clientsMax: 2 }));
    const t = { table: tableId(1), engine: 'btree' as const, keyspace: keyspaceId(1) };
    const put = (client: bigint, n: number, value: string, key = 'k'): Command => ({
      type: 'put',
      request: { client, number: n },
      ...t,
      key: new TextEncoder().encode(key),
      value: new TextEncoder().encode(value),
      condition: { type: 'none' },
    });
    // Client 1 writes k=a (its answer is lost); clients 2 and 3 come by; client 2 writes k=b
    // and is answered; then client 1's retry (same request id) arrives.
    const outs = await applyCommitted(
      [
        entry(1, put(1n, 1, 'a')),
        entry(2, put(2n, 1, 'b')),
        entry(3, put(3n, 1, 'x', 'other')),
        entry(4, put(1n, 1, 'a')),
      ],
      g,
      state,
    );
    expect(outs[3]?.outcome).toEqual(forgotten);
    const rec = await engines.get('btree')!.get(keyspaceId(1), new TextEncoder().encode('k'));
    expect(new TextDecoder().decode(rec!.value)).toBe('b');
  });

  it('after an instance failed mid-batch, the replay keeps the floor the other instance already holds', async () => {
    const btree = await scratch.open('btree');
    const lsmEngine = await scratch.open('lsm');
    let failLsm = false;
    const lsm = new Proxy(lsmEngine, {
      get(target, prop, receiver) {
        if (prop === 'applyBatch' && failLsm) {
          return async () => {
            failLsm = false;
            throw new TesseraError('INTERNAL', 'lsm batch lost');
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const engines = new Map<EngineKind, Engine>([
      ['btree', btree],
      ['lsm', lsm],
    ]);
    const g: GroupEngines = { group: groupId(2), engines, metaKind: 'btree' };
    const bounds = { idsPerClientMax: 2, clientsMax: 10 };
    const t1 = { table: tableId(1), engine: 'btree' as const, keyspace: keyspaceId(11) };
    const t2 = { table: tableId(2), engine: 'lsm' as const, keyspace: keyspaceId(12) };
    const put = (t: typeof t1 | typeof t2, n: number, value: string): Command => ({
      type: 'put',
      request: { client: 7n, number: n },
      ...t,
      key: new TextEncoder().encode('k'),
      value: new TextEncoder().encode(value),
      condition: { type: 'none' },
    });
    let state = new GroupState(new DedupTable(bounds));
    await applyCommitted([entry(1, put(t1, 1, 'a')), entry(2, put(t2, 2, 'b'))], g, state);
    // Entry 3 trims 7:1 (a btree record); the lsm instance fails its batch (as a crash between them).
    failLsm = true;
    const e3 = entry(3, put(t2, 3, 'c'));
    await expect(applyCommitted([e3], g, state)).rejects.toMatchObject({ code: 'INTERNAL' });
    state = await GroupState.load(g, new DedupTable(bounds));
    expect(state.replayFrom).toBe(3);
    await applyCommitted([e3], g, state);
    // 7:1 was forgotten (as on every other replica): its retry must not run again.
    const [retry] = await applyCommitted([entry(4, put(t1, 1, 'again'))], g, state);
    expect(retry?.outcome).toEqual(forgotten);
    const rec = await btree.get(keyspaceId(11), new TextEncoder().encode('k'));
    expect(new TextDecoder().decode(rec!.value)).toBe('a');
  });
});
