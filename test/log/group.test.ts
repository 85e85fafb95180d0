import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupLog } from '../../src/log/group.js';

/** A live entry as the model keeps it. */
interface Loc {
  segment: number;
  offset: number;
  length: number;
  term: number;
}

type Op =
  | { op: 'append'; back: number; count: number; term: number }
  | { op: 'release'; upTo: number }
  | { op: 'snapshot'; ahead: number };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      back: fc.nat(6),
      count: fc.integer({ min: 1, max: 900 }),
      term: fc.nat(2 ** 40),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('release' as const), upTo: fc.nat(3000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('snapshot' as const), ahead: fc.nat(5) }) },
);

describe('GroupLog', () => {
  it('keeps every live entry through growth, suffix overwrites, releases (and their compaction) and snapshots', () => {
    fc.assert(
      fc.property(fc.array(arbOp, { minLength: 1, maxLength: 40 }), (ops) => {
        const g = new GroupLog(7);
        // The model: entries first..last in an array, first = base + 1.
        let base = 0;
        let live: Loc[] = [];
        let offset = 0;
        for (const o of ops) {
          if (o.op === 'append') {
            const last = base + live.length;
            const from = Math.max(base + 1, last + 1 - o.back);
            live = live.slice(0, from - base - 1);
            for (let i = 0; i < o.count; i++) {
              const loc = {
                segment: (from + i) >> 8,
                offset: offset++ * 3 + 2 ** 33,
                length: 33 + i,
                term: o.term,
              };
              expect(g.applyEntry(from + i, loc.segment, loc.offset, loc.length, loc.term)).toBe(true);
              live.push(loc);
            }
            // Neither a gap nor an entry before the first is accepted.
            expect(g.applyEntry(base + live.length + 2, 0, 0, 33, 1)).toBe(false);
            if (base > 0) expect(g.applyEntry(base, 0, 0, 33, 1)).toBe(false);
          } else if (o.op === 'release') {
            const upTo = Math.min(o.upTo, base + live.length);
            const k = Math.max(0, upTo - base);
            expect(g.release(o.upTo)).toBe(k);
            base += k;
            live = live.slice(k);
          } else {
            const at = base + live.length + o.ahead;
            g.applySnapshot({ index: at, term: 5 });
            base = at;
            live = [];
          }
          expect(g.first).toBe(base + 1);
          expect(g.last).toBe(base + live.length);
          expect(g.count).toBe(live.length);
          live.forEach((loc, i) => {
            const index = base + 1 + i;
            expect([g.segmentOf(index), g.offsetOf(index), g.lengthOf(index), g.termOf(index)]).toEqual([
              loc.segment,
              loc.offset,
              loc.length,
              loc.term,
            ]);
            expect(g.term(index)).toBe(loc.term);
          });
          expect(g.oldestSegment()).toBe(live[0]?.segment);
        }
      }),
      { numRuns: 150 },
    );
  });
});
