import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EngineRecord } from '../../src/engine/types.js';
import { keyspaceId } from '../../src/engine/types.js';
import { tableId } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import type { Command, Condition } from '../../src/statemachine/command.js';
import { decide } from '../../src/statemachine/decide.js';

const s = (n: number) => makeSeq(BigInt(n), 0, 1);
const key = Uint8Array.of(1, 2);
const ks = keyspaceId(4);
const put = (condition: Condition): Command => ({
  type: 'put',
  request: { client: 1n, number: 1 },
  table: tableId(1),
  engine: 'btree',
  keyspace: ks,
  key,
  value: Uint8Array.of(9),
  condition,
});
const del = (condition: Condition): Command => ({
  type: 'delete',
  request: { client: 1n, number: 1 },
  table: tableId(1),
  engine: 'btree',
  keyspace: ks,
  key,
  condition,
});
const live: EngineRecord = { value: Uint8Array.of(5), seq: s(10), tombstone: false };
const dead: EngineRecord = { value: new Uint8Array(0), seq: s(11), tombstone: true };
const none: Condition = { type: 'none' };
const ifNone: Condition = { type: 'ifNoneMatch' };
const ifMatch = (n: number): Condition => ({ type: 'ifMatch', seq: s(n) });

describe('decide', () => {
  it('puts unconditionally, with the entry seq', () => {
    for (const cur of [undefined, live, dead]) {
      expect(decide(put(none), cur, s(20))).toEqual({
        write: { type: 'put', keyspace: ks, key, value: Uint8Array.of(9), seq: s(20) },
        outcome: { ok: true, seq: s(20) },
      });
    }
  });

  it('If-None-Match: only when absent (never written or a tombstone)', () => {
    expect(decide(put(ifNone), undefined, s(20)).outcome).toEqual({ ok: true, seq: s(20) });
    expect(decide(put(ifNone), dead, s(20)).outcome).toEqual({ ok: true, seq: s(20) });
    expect(decide(put(ifNone), live, s(20))).toEqual({
      outcome: { ok: false, error: 'CONDITION_FAILED', currentSeq: s(10) },
    });
  });

  it('If-Match: only when present with exactly that seq', () => {
    expect(decide(put(ifMatch(10)), live, s(20)).outcome).toEqual({ ok: true, seq: s(20) });
    expect(decide(put(ifMatch(9)), live, s(20))).toEqual({
      outcome: { ok: false, error: 'CONDITION_FAILED', currentSeq: s(10) },
    });
    expect(decide(put(ifMatch(11)), dead, s(20))).toEqual({
      outcome: { ok: false, error: 'CONDITION_FAILED' },
    });
    expect(decide(put(ifMatch(10)), undefined, s(20))).toEqual({
      outcome: { ok: false, error: 'CONDITION_FAILED' },
    });
    expect(decide(del(ifMatch(10)), live, s(20)).write).toEqual({
      type: 'delete',
      keyspace: ks,
      key,
      seq: s(20),
    });
    expect(decide(del(ifMatch(9)), live, s(20)).write).toBeUndefined();
  });

  it('delete of an absent key: KEY_NOT_FOUND, no write; a condition failure comes first', () => {
    expect(decide(del(none), undefined, s(20))).toEqual({ outcome: { ok: false, error: 'KEY_NOT_FOUND' } });
    expect(decide(del(none), dead, s(20))).toEqual({ outcome: { ok: false, error: 'KEY_NOT_FOUND' } });
    expect(decide(del(ifMatch(3)), undefined, s(20)).outcome).toEqual({
      ok: false,
      error: 'CONDITION_FAILED',
    });
    expect(decide(del(none), live, s(20))).toEqual({
      write: { type: 'delete', keyspace: ks, key, seq: s(20) },
      outcome: { ok: true, seq: s(20) },
    });
  });

  it('noop and dropTable: ok, no write', () => {
    expect(decide({ type: 'noop', request: { client: 0n, number: 0 } }, undefined, s(5))).toEqual({
      outcome: { ok: true, seq: s(5) },
    });
  });

  it('property: a write happens exactly when the outcome is ok, and carries the entry seq', () => {
    const condArb = fc.oneof(
      fc.constant(none),
      fc.constant(ifNone),
      fc.integer({ min: 8, max: 12 }).map(ifMatch),
    );
    const curArb = fc.constantFrom(undefined, live, dead);
    fc.assert(
      fc.property(fc.boolean(), condArb, curArb, fc.integer({ min: 20, max: 99 }), (isPut, c, cur, n) => {
        const d = decide(isPut ? put(c) : del(c), cur, s(n));
        expect(d.write !== undefined).toBe(d.outcome.ok);
        if (d.write) expect(d.write.seq).toEqual(s(n));
        if (!d.outcome.ok && d.outcome.error === 'CONDITION_FAILED') {
          expect(d.outcome.currentSeq).toEqual(cur && !cur.tombstone ? cur.seq : undefined);
        }
      }),
    );
  });
});
