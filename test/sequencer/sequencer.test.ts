import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/lib/assert.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { nodeId, type Seq } from '../../src/lib/ids.js';
import {
  compareSeq,
  makeSeq,
  SEQ_COUNTER_MAX,
  Sequencer,
  seqCounter,
  seqFromHex,
  seqMax,
  seqNodeId,
  seqTimestampNs,
  seqToHex,
  ZERO_SEQ,
} from '../../src/sequencer/index.js';

const T0 = 1_700_000_000_000_000_000n;

describe('seq format', () => {
  it('lays out timestamp | counter | node id big-endian', () => {
    const s = makeSeq(0x0102030405060708n, 0x090a0b0c, nodeId(0x0d0e0f10));
    expect([...s]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    expect(seqToHex(s)).toBe('0102030405060708090a0b0c0d0e0f10');
    expect(seqTimestampNs(s)).toBe(0x0102030405060708n);
    expect(seqCounter(s)).toBe(0x090a0b0c);
    expect(seqNodeId(s)).toBe(0x0d0e0f10);
  });

  it('hex round-trips and compares like the bytes', () => {
    const arb = fc.tuple(fc.bigInt(0n, (1n << 63n) - 1n), fc.nat(SEQ_COUNTER_MAX), fc.nat(0xffffffff));
    fc.assert(
      fc.property(arb, arb, ([t1, c1, n1], [t2, c2, n2]) => {
        const a = makeSeq(t1, c1, n1);
        const b = makeSeq(t2, c2, n2);
        expect(compareSeq(seqFromHex(seqToHex(a)), a)).toBe(0);
        expect(seqToHex(a)).toMatch(/^[0-9a-f]{32}$/);
        const tuple = t1 !== t2 ? (t1 < t2 ? -1 : 1) : c1 !== c2 ? c1 - c2 : n1 - n2;
        expect(Math.sign(compareSeq(a, b))).toBe(Math.sign(tuple));
        expect(Math.sign(compareSeq(a, b))).toBe(Math.sign(seqToHex(a).localeCompare(seqToHex(b))));
        expect(compareSeq(seqMax(a, b), a) >= 0 && compareSeq(seqMax(a, b), b) >= 0).toBe(true);
      }),
    );
  });

  it('rejects malformed hex with INVALID_SEQ', () => {
    for (const bad of [
      '',
      'zz',
      '0'.repeat(31),
      '0'.repeat(33),
      'A'.repeat(32),
      `8${'0'.repeat(31)}`,
      `g${'0'.repeat(31)}`,
    ]) {
      let err: unknown;
      try {
        seqFromHex(bad);
      } catch (e) {
        err = e;
      }
      expect(isTesseraError(err, 'INVALID_SEQ'), bad).toBe(true);
    }
  });

  it('asserts the reserved top bit of the timestamp is clear', () => {
    expect(() => makeSeq(1n << 63n, 0, 1)).toThrow(AssertionError);
  });
});

describe('Sequencer', () => {
  it('a million ids in a tight loop are strictly increasing', () => {
    const s = new Sequencer(nodeId(7));
    let prev: Seq = ZERO_SEQ;
    let wall = T0;
    let ok = true;
    for (let i = 0; i < 1_000_000; i++) {
      if (i % 1000 === 0) wall += 1000n; // the clock advances a little now and then
      const next = s.next(wall);
      if (compareSeq(next, prev) <= 0) ok = false;
      prev = next;
    }
    expect(ok).toBe(true);
  });

  it('strictly increases under any sequence of wall times (stalls and backwards jumps)', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt(0n, 1_000_000n), { minLength: 1, maxLength: 300 }), (walls) => {
        const s = new Sequencer(nodeId(1));
        let prev: Seq = ZERO_SEQ;
        for (const w of walls) {
          const next = s.next(T0 + w);
          expect(compareSeq(next, prev)).toBeGreaterThan(0);
          prev = next;
        }
      }),
    );
  });

  it('keeps increasing after a large backwards clock jump, timestamps never going below the last', () => {
    const s = new Sequencer(nodeId(3));
    const before = s.next(T0 + 10_000_000_000n);
    const after1 = s.next(T0); // 10 s back
    const after2 = s.next(T0 + 1n);
    expect(compareSeq(after1, before)).toBeGreaterThan(0);
    expect(compareSeq(after2, after1)).toBeGreaterThan(0);
    expect(seqTimestampNs(after2)).toBe(T0 + 10_000_000_000n);
  });

  it('bumps the timestamp when the counter would overflow', () => {
    const s = new Sequencer(nodeId(2), makeSeq(T0, SEQ_COUNTER_MAX - 1, 9));
    const a = s.next(T0);
    const b = s.next(T0);
    expect(seqCounter(a)).toBe(SEQ_COUNTER_MAX);
    expect(seqTimestampNs(b)).toBe(T0 + 1n);
    expect(seqCounter(b)).toBe(0);
    expect(compareSeq(b, a)).toBeGreaterThan(0);
  });

  it('two nodes never issue the same id', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.bigInt(0n, 50n)), { minLength: 1, maxLength: 300 }),
        (steps) => {
          const a = new Sequencer(nodeId(1));
          const b = new Sequencer(nodeId(2));
          const seen = new Set<string>();
          for (const [useA, w] of steps) {
            const hex = seqToHex((useA ? a : b).next(T0 + w));
            expect(seen.has(hex)).toBe(false);
            seen.add(hex);
          }
        },
      ),
    );
  });

  it('after observe(x), next() > x, whatever x and the wall time', () => {
    const arbSeq = fc
      .tuple(fc.bigInt(0n, (1n << 63n) - 2n), fc.nat(SEQ_COUNTER_MAX), fc.nat(0xffffffff))
      .map(([t, c, n]) => makeSeq(t, c, n));
    fc.assert(
      fc.property(
        fc.array(fc.bigInt(0n, 1n << 62n), { maxLength: 5 }),
        arbSeq,
        fc.bigInt(0n, 1n << 62n),
        (before, x, wall) => {
          const s = new Sequencer(nodeId(5));
          for (const w of before) s.next(w);
          s.observe(x);
          const n = s.next(wall);
          expect(compareSeq(n, x)).toBeGreaterThan(0);
          expect(seqNodeId(n)).toBe(5);
        },
      ),
    );
  });

  it('a sequencer started from a persisted high seq continues above it', () => {
    const a = new Sequencer(nodeId(4));
    a.next(T0 + 100n);
    const last = a.next(T0 + 100n);
    const b = new Sequencer(nodeId(4), a.high());
    expect(compareSeq(b.next(T0), last)).toBeGreaterThan(0);
  });
});
