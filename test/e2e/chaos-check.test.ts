/** The chaos suite's lost-write check on hand-made histories (no processes). */
import { describe, expect, it } from 'vitest';
import type { OpRecord, Operation, Result } from '../sim/checker/index.js';
import { lostAckedWrites } from './chaos-workload.js';

let nextId = 0;
const rec = (op: Operation, start: number, end: number, result: Result): OpRecord => ({
  id: nextId++,
  client: 0,
  op,
  start,
  end,
  result,
});
const put = (value: string, start: number, end: number, result: Result = { type: 'ok' }): OpRecord =>
  rec({ kind: 'put', key: 'k', value }, start, end, result);
const del = (start: number, end: number, result: Result = { type: 'ok' }): OpRecord =>
  rec({ kind: 'delete', key: 'k' }, start, end, result);
const finals = (r: Result): Map<string, Result> => new Map([['k', r]]);

describe('lostAckedWrites', () => {
  it('accepts a final value from the last acknowledged write', () => {
    expect(lostAckedWrites([put('a', 0, 1), put('b', 2, 3)], finals({ type: 'value', value: 'b' }))).toEqual(
      [],
    );
  });

  it('accepts a final value from a concurrent or later indeterminate write', () => {
    const h = [put('a', 0, 10), put('b', 5, Number.POSITIVE_INFINITY, { type: 'unknown' })];
    expect(lostAckedWrites(h, finals({ type: 'value', value: 'b' }))).toEqual([]);
    expect(lostAckedWrites(h, finals({ type: 'value', value: 'a' }))).toEqual([]);
  });

  it('flags an acknowledged write overwritten by an older one', () => {
    const lost = lostAckedWrites([put('a', 0, 1), put('b', 2, 3)], finals({ type: 'value', value: 'a' }));
    expect(lost).toHaveLength(1);
  });

  it('flags an acknowledged put when the key ends absent with no delete', () => {
    expect(lostAckedWrites([put('a', 0, 1)], finals({ type: 'absent' }))).toHaveLength(1);
    expect(lostAckedWrites([put('a', 0, 1), del(2, 3)], finals({ type: 'absent' }))).toEqual([]);
  });

  it('flags a final value nobody wrote', () => {
    expect(lostAckedWrites([put('a', 0, 1)], finals({ type: 'value', value: 'zz' }))).toHaveLength(1);
  });

  it('ignores writes that certainly failed', () => {
    const h = [put('a', 0, 1), put('b', 2, 3, { type: 'failed' })];
    expect(lostAckedWrites(h, finals({ type: 'value', value: 'a' }))).toEqual([]);
  });
});
