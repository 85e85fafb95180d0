import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MetaRecord } from '../../src/engine/types.js';
import { logIndex } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import type { Outcome } from '../../src/statemachine/decide.js';
import { DedupTable, decodeOutcome, encodeOutcome } from '../../src/statemachine/dedup.js';
import { persist } from './helpers.js';

const ok = (n: number): Outcome => ({ ok: true, seq: makeSeq(BigInt(n), 0, 1) });

function reload(
  store: Map<string, Map<string, MetaRecord>>,
  bounds: { idsPerClientMax: number; clientsMax: number },
) {
  const t = new DedupTable(bounds);
  for (const [home, m] of store) {
    const sorted = [...m.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    t.load(home as 'btree' | 'lsm', sorted);
  }
  return t;
}

describe('DedupTable', () => {
  it('outcomes round-trip', () => {
    const outcomes: Outcome[] = [
      ok(5),
      { ok: false, error: 'CONDITION_FAILED', currentSeq: makeSeq(7n, 1, 2) },
      { ok: false, error: 'CONDITION_FAILED' },
      { ok: false, error: 'KEY_NOT_FOUND' },
      { ok: false, error: 'TABLE_NOT_FOUND' },
      { ok: false, error: 'OUTCOME_UNKNOWN' },
    ];
    for (const o of outcomes) expect(decodeOutcome(encodeOutcome(o))).toEqual(o);
  });

  it('answers a retry with its first outcome; client 0 is never remembered', () => {
    const t = new DedupTable();
    expect(t.lookup({ client: 7n, number: 1 })).toBeUndefined();
    t.record({ client: 7n, number: 1 }, ok(1), logIndex(1), 'btree');
    expect(t.lookup({ client: 7n, number: 1 })).toEqual(ok(1));
    expect(t.lookup({ client: 7n, number: 2 })).toBeUndefined();
    expect(t.lookup({ client: 8n, number: 1 })).toBeUndefined();
    t.takeEdits();
    t.record({ client: 0n, number: 1 }, ok(2), logIndex(2), 'btree');
    expect(t.takeEdits()).toEqual([]);
    expect(t.lookup({ client: 0n, number: 1 })).toBeUndefined();
  });

  it('keeps at most idsPerClientMax ids; a forgotten retry answers OUTCOME_UNKNOWN', () => {
    const t = new DedupTable({ idsPerClientMax: 3, clientsMax: 10 });
    for (let n = 1; n <= 5; n++) t.record({ client: 1n, number: n }, ok(n), logIndex(n), 'lsm');
    expect(t.lookup({ client: 1n, number: 1 })).toEqual({ ok: false, error: 'OUTCOME_UNKNOWN' });
    expect(t.lookup({ client: 1n, number: 2 })).toEqual({ ok: false, error: 'OUTCOME_UNKNOWN' });
    expect(t.lookup({ client: 1n, number: 3 })).toEqual(ok(3));
    expect(t.lookup({ client: 1n, number: 5 })).toEqual(ok(5));
    expect(t.lookup({ client: 1n, number: 6 })).toBeUndefined();
  });

  it('keeps at most clientsMax clients, dropping the least recently used', () => {
    const t = new DedupTable({ idsPerClientMax: 4, clientsMax: 2 });
    t.record({ client: 1n, number: 1 }, ok(1), logIndex(1), 'btree');
    t.record({ client: 2n, number: 1 }, ok(2), logIndex(2), 'btree');
    t.record({ client: 1n, number: 2 }, ok(3), logIndex(3), 'btree');
    t.record({ client: 3n, number: 1 }, ok(4), logIndex(4), 'btree');
    expect(t.clientCount).toBe(2);
    // Client 2 was evicted: a retry of its request is forgotten (OUTCOME_UNKNOWN), never run again.
    expect(t.lookup({ client: 2n, number: 1 })).toEqual({ ok: false, error: 'OUTCOME_UNKNOWN' });
    expect(t.lookup({ client: 2n, number: 2 })).toBeUndefined();
    expect(t.lookup({ client: 1n, number: 1 })).toEqual(ok(1));
    expect(t.lookup({ client: 3n, number: 1 })).toEqual(ok(4));
  });

  it('property: persisting the edits (taken after any number of records) and loading them back gives the same answers', () => {
    const opArb = fc.record({
      client: fc.bigInt({ min: 1n, max: 4n }),
      // Numbers across several 64-id pages, and more ids than the bounds keep.
      number: fc.integer({ min: 1, max: 200 }),
      home: fc.constantFrom('btree' as const, 'lsm' as const),
      flush: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const bounds = { idsPerClientMax: 4, clientsMax: 3 };
        const t = new DedupTable(bounds);
        const store = new Map<string, Map<string, MetaRecord>>();
        ops.forEach((op, i) => {
          const req = { client: op.client, number: op.number };
          if (t.lookup(req) === undefined) t.record(req, ok(i + 1), logIndex(i + 1), op.home);
          if (op.flush) persist(store, t.takeEdits());
        });
        persist(store, t.takeEdits());
        // Nothing stale is left behind: at most one page record per remembered id, and the
        // client records of remembered or forgotten clients only.
        const pages = [...store.values()].flatMap((m) => [...m.values()]).filter((r) => r.key[0] === 0x65);
        let ids = 0;
        for (let c = 1n; c <= 4n; c++)
          for (let n = 1; n <= 200; n++) if (t.lookup({ client: c, number: n })?.ok === true) ids++;
        expect(pages.length).toBeLessThanOrEqual(ids);
        const back = reload(store, bounds);
        for (let c = 1n; c <= 4n; c++) {
          for (let n = 1; n <= 201; n++) {
            expect(back.lookup({ client: c, number: n })).toEqual(t.lookup({ client: c, number: n }));
          }
        }
        expect(back.clientCount).toBe(t.clientCount);
        // Serialized form (for in-memory snapshots) loads back the same too.
        const again = new DedupTable(bounds);
        again.load('btree', t.toRecords());
        for (let n = 1; n <= 201; n++)
          expect(again.lookup({ client: 1n, number: n })).toEqual(t.lookup({ client: 1n, number: n }));
      }),
      { numRuns: 300 },
    );
  });
});
