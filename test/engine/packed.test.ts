/**
 * PackedWrites' sorted iteration: a permutation of the writes, in key order past the prefix every
 * key shares (exact when keys differ within the next 36 bits), with writes of the same key kept in
 * packing order (so the later one still wins when an engine stores them in that order).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PackedWrites } from '../../src/engine/packed.js';

const seqOf = (n: number): Uint8Array => {
  const s = new Uint8Array(16);
  new DataView(s.buffer).setUint32(12, n);
  return s;
};

function pack(keys: readonly Uint8Array[]): PackedWrites {
  const p = new PackedWrites(1, 1);
  keys.forEach((k, i) => {
    const seq = seqOf(i + 1);
    const value = Uint8Array.of(i & 0xff, i >> 8);
    p.put(7, k, 0, k.length, seq, 0, value, 0, value.length);
  });
  return p;
}

/** Each write's (engine key, packing index) in the order forEach visits them. */
function visited(p: PackedWrites, sorted: boolean): { key: Buffer; index: number }[] {
  const out: { key: Buffer; index: number }[] = [];
  p.forEach((key, record) => {
    // The record's last two bytes are the value: the packing index.
    out.push({ key: Buffer.from(key), index: (record[16] as number) | ((record[17] as number) << 8) });
  }, sorted);
  return out;
}

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 12 });

describe('PackedWrites sorted iteration', () => {
  it('visits every write once, in packing order unless sorted', () => {
    const keys = [Uint8Array.of(3), Uint8Array.of(1), Uint8Array.of(2)];
    expect(visited(pack(keys), false).map((w) => w.index)).toEqual([0, 1, 2]);
    expect(visited(pack(keys), true).map((w) => w.index)).toEqual([1, 2, 0]);
  });

  it('keys that differ within 36 bits past their shared prefix come in key order, ties in packing order', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 6 }),
        fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 50 }),
        (prefix, tails, dups) => {
          // A shared prefix of any length, then 4 bytes; some keys repeated later. (Keys of different
          // lengths equal in the window, `a` and `a\0`, tie: only their packing order decides.)
          const keys = tails.map((t) => Buffer.concat([prefix, t]));
          for (const d of dups) keys.push(keys[d % keys.length]!);
          const got = visited(pack(keys), true);
          const want = keys
            .map((k, index) => ({ key: k, index }))
            .sort((a, b) => Buffer.compare(a.key, b.key) || a.index - b.index);
          expect(got.map((w) => w.index)).toEqual(want.map((w) => w.index));
        },
      ),
    );
  });

  it('longer keys: a permutation, and equal keys stay in packing order', () => {
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 200 }), fc.array(fc.nat()), (ks, dups) => {
        const keys = [...ks];
        for (const d of dups) keys.push(keys[d % keys.length]!);
        const got = visited(pack(keys), true);
        expect(got.map((w) => w.index).sort((a, b) => a - b)).toEqual(keys.map((_, i) => i));
        const lastIndex = new Map<string, number>();
        for (const w of got) {
          const id = w.key.toString('hex');
          expect(w.index).toBeGreaterThan(lastIndex.get(id) ?? -1);
          lastIndex.set(id, w.index);
        }
      }),
    );
  });
});
