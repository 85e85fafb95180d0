import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRecords, type OpRecord, type Operation, type Result } from './checker/index.js';

type Kind = 'put' | 'get' | 'delete' | 'putIfNone' | 'putIfMatch' | 'deleteIfMatch';

interface Spec {
  kind: Kind;
  start: number;
  length: number;
  /** Where in [start, start + length] the op takes effect (0..1). */
  at: number;
  unknown: boolean;
  /** Which earlier seq an If-Match names (an index into the seqs issued so far). */
  pick: number;
}

const spec = fc.record({
  kind: fc.constantFrom<Kind>('put', 'get', 'delete', 'putIfNone', 'putIfMatch', 'deleteIfMatch'),
  start: fc.integer({ min: 0, max: 200 }),
  length: fc.integer({ min: 0, max: 60 }),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  unknown: fc.boolean(),
  pick: fc.nat(),
});

const hexSeq = (n: number): string => n.toString(16).padStart(32, '0');

/**
 * Runs the specs against an atomic register: each takes effect at its own instant inside its
 * interval, so the resulting history is linearizable by construction. Unknown-outcome writes take
 * effect or not (at random, via `at`); unknown reads are dropped.
 */
function linearizableHistory(specs: readonly Spec[]): OpRecord[] {
  const order = specs
    .map((s, i) => ({ s, i, t: s.start + s.at * s.length }))
    .sort((a, b) => a.t - b.t || a.i - b.i);
  const reg: { cur: { value: string; seq: string } | null } = { cur: null };
  let nextSeq = 1;
  /** Seqs some client has seen (a client can only name those in If-Match). */
  const seqs: string[] = [];
  const out: OpRecord[] = [];
  for (const { s, i } of order) {
    const key = 'k';
    const value = `v${i}`;
    const matchSeq = seqs.length > 0 ? seqs[s.pick % seqs.length]! : hexSeq(0);
    let op: Operation;
    let result: Result;
    const erase = (): Result => {
      reg.cur = null;
      return { type: 'ok' };
    };
    const write = (): Result => {
      const seq = hexSeq(nextSeq++);
      reg.cur = { value, seq };
      if (!s.unknown) seqs.push(seq);
      return { type: 'ok', seq };
    };
    switch (s.kind) {
      case 'get':
        op = { kind: 'get', key };
        result = reg.cur ? { type: 'value', value: reg.cur.value, seq: reg.cur.seq } : { type: 'absent' };
        if (reg.cur && !s.unknown) seqs.push(reg.cur.seq);
        break;
      case 'put':
        op = { kind: 'put', key, value };
        result = s.unknown && s.at > 0.5 ? { type: 'unknown' } : write();
        break;
      case 'delete':
        op = { kind: 'delete', key };
        result = reg.cur ? erase() : { type: 'absent' };
        break;
      case 'putIfNone':
        op = { kind: 'putIf', key, value, ifNoneMatch: true };
        result = reg.cur ? { type: 'failed' } : write();
        break;
      case 'putIfMatch':
        op = { kind: 'putIf', key, value, ifMatch: matchSeq };
        result = reg.cur?.seq === matchSeq ? write() : { type: 'failed' };
        break;
      case 'deleteIfMatch':
        op = { kind: 'deleteIf', key, ifMatch: matchSeq };
        result = reg.cur?.seq === matchSeq ? erase() : { type: 'failed' };
        break;
    }
    if (s.unknown && s.kind !== 'get' && result.type !== 'unknown') result = { type: 'unknown' };
    if (s.unknown && s.kind === 'get') continue;
    const end = result.type === 'unknown' ? Number.POSITIVE_INFINITY : s.start + s.length;
    out.push({ id: i, client: undefined, op, start: s.start, end, result });
  }
  return out;
}

describe('linearizability checker: properties', () => {
  it('accepts every history produced by an atomic register', () => {
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 40 }), (specs) => {
        const report = checkRecords(linearizableHistory(specs));
        expect(report.verdict).toBe('ok');
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a sequential history with one read changed to an older value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 30 }), fc.nat(), (writes, pick) => {
        const h: OpRecord[] = [];
        for (let i = 0; i < writes; i++) {
          h.push({
            id: i,
            client: undefined,
            op: { kind: 'put', key: 'k', value: `v${i}` },
            start: 10 * i,
            end: 10 * i + 1,
            result: { type: 'ok' },
          });
        }
        const stale = pick % (writes - 1); // any value but the last one written
        h.push({
          id: writes,
          client: undefined,
          op: { kind: 'get', key: 'k' },
          start: 10 * writes,
          end: 10 * writes + 1,
          result: { type: 'value', value: `v${stale}` },
        });
        expect(checkRecords(h).verdict).toBe('violation');
      }),
      { numRuns: 100 },
    );
  });
});
