import { describe, expect, it } from 'vitest';
import {
  type CheckReport,
  checkHistory,
  checkRecords,
  formatReport,
  HistoryRecorder,
  type OpRecord,
  type Operation,
  type Result,
} from './checker/index.js';

let nextId = 0;
/** One op on key 'k' from `start` to `end` (Infinity = pending) answering `result`. */
function op(o: Operation, start: number, end: number, result: Result): OpRecord {
  return { id: nextId++, client: undefined, op: o, start, end, result };
}
const put = (value: string, s: number, e: number, seq?: string): OpRecord =>
  op({ kind: 'put', key: 'k', value }, s, e, seq === undefined ? { type: 'ok' } : { type: 'ok', seq });
const putUnknown = (value: string, s: number): OpRecord =>
  op({ kind: 'put', key: 'k', value }, s, Number.POSITIVE_INFINITY, { type: 'unknown' });
const get = (value: string | null, s: number, e: number, seq?: string): OpRecord =>
  op(
    { kind: 'get', key: 'k' },
    s,
    e,
    value === null ? { type: 'absent' } : seq ? { type: 'value', value, seq } : { type: 'value', value },
  );
const del = (existed: boolean, s: number, e: number): OpRecord =>
  op({ kind: 'delete', key: 'k' }, s, e, existed ? { type: 'ok' } : { type: 'absent' });

function verdict(records: OpRecord[]): CheckReport['verdict'] {
  return checkRecords(records).verdict;
}

describe('linearizability checker: good histories', () => {
  it('accepts sequential put/get/delete', () => {
    expect(
      verdict([put('a', 0, 1), get('a', 2, 3), del(true, 4, 5), get(null, 6, 7), del(false, 8, 9)]),
    ).toBe('ok');
  });

  it('accepts concurrent writes read in either order', () => {
    const h1 = [put('a', 0, 10), put('b', 1, 9), get('a', 11, 12)];
    const h2 = [put('a', 0, 10), put('b', 1, 9), get('b', 11, 12)];
    expect(verdict(h1)).toBe('ok');
    expect(verdict(h2)).toBe('ok');
  });

  it('accepts a read concurrent with a write seeing the old or the new value', () => {
    expect(verdict([put('a', 0, 1), put('b', 2, 10), get('a', 3, 4), get('b', 5, 6)])).toBe('ok');
    expect(verdict([put('a', 0, 1), put('b', 2, 10), get('b', 3, 4), get('b', 5, 6)])).toBe('ok');
  });

  it('accepts an unknown write that took effect, or not', () => {
    expect(verdict([put('a', 0, 1), putUnknown('b', 2), get('b', 50, 51), get('b', 60, 61)])).toBe('ok');
    expect(verdict([put('a', 0, 1), putUnknown('b', 2), get('a', 50, 51), get('a', 60, 61)])).toBe('ok');
    // It may take effect late: after a read that did not see it.
    expect(verdict([put('a', 0, 1), putUnknown('b', 2), get('a', 50, 51), get('b', 60, 61)])).toBe('ok');
  });

  it('accepts conditional writes on the seq', () => {
    const h = [
      put('a', 0, 1, '01'),
      op({ kind: 'putIf', key: 'k', value: 'b', ifMatch: '01' }, 2, 3, { type: 'ok', seq: '02' }),
      op({ kind: 'putIf', key: 'k', value: 'c', ifMatch: '01' }, 4, 5, { type: 'failed' }),
      get('b', 6, 7, '02'),
      op({ kind: 'deleteIf', key: 'k', ifMatch: '02' }, 8, 9, { type: 'ok' }),
      op({ kind: 'putIf', key: 'k', value: 'd', ifNoneMatch: true }, 10, 11, { type: 'ok', seq: '03' }),
      op({ kind: 'putIf', key: 'k', value: 'e', ifNoneMatch: true }, 12, 13, { type: 'failed' }),
    ];
    expect(verdict(h)).toBe('ok');
  });

  it('drops ops that certainly failed and reads that never answered', () => {
    const h = [
      put('a', 0, 1),
      op({ kind: 'put', key: 'k', value: 'x' }, 2, 3, { type: 'fail' }),
      op({ kind: 'get', key: 'k' }, 4, Number.POSITIVE_INFINITY, { type: 'unknown' }),
      get('a', 5, 6),
    ];
    expect(verdict(h)).toBe('ok');
  });

  it('checks keys independently and records through HistoryRecorder', () => {
    const r = new HistoryRecorder();
    const a = r.invoke({ kind: 'put', key: 'x', value: '1' }, 0, 1);
    const b = r.invoke({ kind: 'put', key: 'y', value: '2' }, 0, 2);
    r.complete(a, { type: 'ok' }, 1);
    r.complete(b, { type: 'ok' }, 1);
    const g = r.invoke({ kind: 'get', key: 'x' }, 2, 1);
    r.complete(g, { type: 'value', value: '1' }, 3);
    const u = r.invoke({ kind: 'put', key: 'y', value: '3' }, 4, 2);
    expect(r.pendingCount()).toBe(1);
    const report = checkHistory(r.events);
    expect(report.verdict).toBe('ok');
    expect(report.keys.map((k) => k.key)).toEqual(['x', 'y']);
    expect(u).toBe(3);
  });
});

describe('linearizability checker: bad histories', () => {
  it('finds a stale read after an acknowledged write', () => {
    const report = checkRecords([put('a', 0, 1), put('b', 2, 3), get('a', 4, 5)]);
    expect(report.verdict).toBe('violation');
    expect(formatReport(report)).toContain('key k: violation');
  });

  it('finds a lost write', () => {
    expect(verdict([put('a', 0, 1), put('b', 2, 3), get('b', 4, 5), get('a', 6, 7)])).toBe('violation');
    expect(verdict([put('a', 0, 1), get(null, 4, 5)])).toBe('violation');
  });

  it('finds a read of a value never written', () => {
    const report = checkRecords([put('a', 0, 1), get('zzz', 2, 3)]);
    expect(report.verdict).toBe('violation');
    expect(report.keys[0]?.result).toMatchObject({ explanation: expect.stringContaining('never written') });
  });

  it('finds a deleted key that comes back', () => {
    expect(verdict([put('a', 0, 1), del(true, 2, 3), get('a', 4, 5)])).toBe('violation');
  });

  it('finds two reads that order concurrent writes both ways', () => {
    // Both writes finish before both reads start: the reads must agree on the last one.
    expect(verdict([put('a', 0, 10), put('b', 1, 9), get('a', 11, 12), get('a', 13, 14)])).toBe('ok');
    expect(verdict([put('a', 0, 10), put('b', 1, 9), get('a', 11, 12), get('b', 13, 14)])).toBe('violation');
    expect(
      verdict([put('a', 0, 10), put('b', 1, 9), get('b', 11, 12), get('a', 13, 14), get('b', 15, 16)]),
    ).toBe('violation');
  });

  it('finds an unknown write that is seen and then unseen', () => {
    expect(verdict([put('a', 0, 1), putUnknown('b', 2), get('b', 50, 51), get('a', 60, 61)])).toBe(
      'violation',
    );
  });

  it('finds a conditional write that succeeded on a stale seq, or a retry applied twice', () => {
    const h = [
      put('a', 0, 1, '01'),
      put('b', 2, 3, '02'),
      op({ kind: 'putIf', key: 'k', value: 'c', ifMatch: '01' }, 4, 5, { type: 'ok', seq: '03' }),
    ];
    expect(verdict(h)).toBe('violation');
    const twice = [
      op({ kind: 'putIf', key: 'k', value: 'a', ifNoneMatch: true }, 0, 1, { type: 'ok' }),
      put('b', 2, 3),
      op({ kind: 'putIf', key: 'k', value: 'c', ifNoneMatch: true }, 4, 5, { type: 'ok' }),
    ];
    expect(verdict(twice)).toBe('violation');
  });

  it('finds seqs that go backwards and one value with two seqs', () => {
    expect(verdict([put('a', 0, 1, '05'), put('b', 2, 3, '04')])).toBe('violation');
    expect(verdict([put('a', 0, 1, '05'), get('a', 2, 3, '06')])).toBe('violation');
  });

  it('rejects a history that writes one value twice', () => {
    expect(() => checkRecords([put('a', 0, 1), put('a', 2, 3)])).toThrow(/unique/);
  });
});

describe('linearizability checker: bounds', () => {
  it('answers inconclusive rather than searching forever', () => {
    // Many concurrent unknown writes and reads: a large search space.
    const h: OpRecord[] = [];
    for (let i = 0; i < 40; i++) h.push(putUnknown(`v${i}`, i));
    for (let i = 0; i < 40; i++) h.push(get(`v${39 - i}`, 100 + i, 1000 + i));
    const report = checkRecords(h, { stepsPerKeyMax: 1000 });
    expect(report.verdict).toBe('inconclusive');
    expect(report.keys[0]?.result.steps).toBeGreaterThan(1000);
  });

  it('checks a long concurrent history quickly', () => {
    // 5 clients, 600 ops, overlapping; every read returns the last write acknowledged before it.
    const h: OpRecord[] = [];
    let last: string | null = null;
    for (let i = 0; i < 600; i++) {
      const t = i * 10;
      if (i % 3 === 0) {
        h.push(put(`w${i}`, t, t + 25));
        last = `w${i}`;
      } else {
        // Concurrent with the latest write (which finishes later): either value is fine; use the new one.
        h.push(get(last, t + 1, t + 30));
      }
    }
    expect(checkRecords(h).verdict).toBe('ok');
    // The same history with one stale read at the end is caught.
    h.push(get('w0', 10_000, 10_001));
    expect(checkRecords(h).verdict).toBe('violation');
  });
});
