import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeId } from '../../src/lib/ids.js';
import { type Log, openLog } from '../../src/log/index.js';
import { entry, G, I, readAll, T, tempDir } from './helpers.js';

type Op =
  | { op: 'append'; group: number; back: number; count: number }
  | { op: 'hard'; group: number; commit: number }
  | { op: 'release'; group: number; frac: number }
  | { op: 'reopen' };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      group: fc.integer({ min: 1, max: 3 }),
      back: fc.nat(4),
      count: fc.integer({ min: 1, max: 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('hard' as const),
      group: fc.integer({ min: 1, max: 3 }),
      commit: fc.nat(50),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('release' as const),
      group: fc.integer({ min: 1, max: 3 }),
      frac: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
);

interface ModelGroup {
  terms: number[]; // terms[i] = term of entry i (index 0 unused)
  released: number;
  term: number;
  hard?: { term: number; vote: number; commit: number };
}

const opts = { segmentBytesMax: 2048, recordBytesMax: 512 };

describe('log against a model', () => {
  it('any sequence of appends with overwrites, hard states, releases and reopens matches the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(arbOp, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = tempDir();
        let log: Log = await openLog(dir, opts);
        const model = new Map<number, ModelGroup>();
        let sameSession = true;
        for (const o of ops) {
          const m = model.get('group' in o ? o.group : 0) ?? { terms: [0], released: 0, term: 1 };
          if (o.op === 'append') {
            const last = m.terms.length - 1;
            const from = Math.max(m.released + 1, last + 1 - o.back, 1);
            if (from <= last) m.term++; // an overwrite comes from a newer leader
            const recs = Array.from({ length: o.count }, (_, k) => entry(o.group, from + k, m.term));
            await log.append(recs);
            m.terms.length = from;
            for (let k = 0; k < o.count; k++) m.terms.push(m.term);
            model.set(o.group, m);
          } else if (o.op === 'hard') {
            m.hard = { term: m.term, vote: 1, commit: o.commit };
            await log.append([
              { kind: 'hardState', group: G(o.group), term: T(m.term), vote: nodeId(1), commit: I(o.commit) },
            ]);
            model.set(o.group, m);
          } else if (o.op === 'release') {
            if (!model.has(o.group)) continue;
            const upTo = Math.floor((m.terms.length - 1) * o.frac);
            await log.releaseUpTo(G(o.group), I(upTo));
            m.released = Math.max(m.released, upTo);
          } else {
            await log.close();
            log = await openLog(dir, opts);
            sameSession = false;
          }
          for (const [g, mg] of model) {
            const st = log.groupState(G(g));
            expect(st?.lastIndex).toBe(mg.terms.length - 1);
            expect(st?.hardState).toEqual(mg.hard);
            if (sameSession) expect(st!.firstIndex).toBe(Math.min(mg.released, mg.terms.length - 1) + 1);
            else expect(st!.firstIndex).toBeLessThanOrEqual(Math.min(mg.released, mg.terms.length - 1) + 1);
            for (const [index, t] of await readAll(log, g)) expect(t).toBe(mg.terms[index]);
          }
        }
        await log.close();
      }),
      { numRuns: 40 },
    );
  });
});
