import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logIndex } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import { DedupTable } from '../../src/statemachine/dedup.js';

const pageOf = (n: number): number => Math.floor(n / 64);
const pageOfKey = (key: Uint8Array): number =>
  Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(9));

/** The lowest number goes first: checked against a model that takes Math.min of what it holds. */
describe('DedupTable eviction order (min-heap)', () => {
  it('evicts exactly the lowest remembered number, for any order of arrival', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 300 }),
        fc.integer({ min: 1, max: 40 }),
        (numbers, max) => {
          const t = new DedupTable({ idsPerClientMax: max, clientsMax: 4 });
          const held = new Set<number>();
          let floor = 0;
          numbers.forEach((n, i) => {
            if (n <= floor) return; // at or below the floor: answered OUTCOME_UNKNOWN, never recorded
            const req = { client: 7n, number: n };
            t.record(req, { ok: true, seq: makeSeq(BigInt(i + 1), 0, 1) }, logIndex(i + 1), 'btree');
            const edits = t.takeEdits();
            held.add(n);
            if (held.size > max) {
              const oldest = Math.min(...held);
              held.delete(oldest);
              floor = Math.max(floor, oldest);
              // The evicted id's page record is rewritten without it (or deleted).
              const page = edits.find(
                (e) => e.write.key[0] === 0x65 && pageOfKey(e.write.key) === pageOf(oldest),
              );
              expect(page).toBeDefined();
            }
          });
          for (const n of numbers) {
            const o = t.lookup({ client: 7n, number: n });
            if (held.has(n)) expect(o?.ok).toBe(true);
            else expect(o).toEqual({ ok: false, error: 'OUTCOME_UNKNOWN' });
          }
        },
      ),
    );
  });
});
