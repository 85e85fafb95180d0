/**
 * Reconciler property: applying the same writes in any order, in any batching, or twice, yields the
 * same state, which is "per key, the write with the highest seq" (tombstones keep their seq).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type Engine, type EngineWrite, type KeyspaceId, keyspaceId } from '../../src/engine/index.js';
import { groupId, logIndex } from '../../src/lib/ids.js';
import { del, put, Scratch, seq } from './helpers.js';

const keyPool = [[0x00], [0x00, 0x00], [0x01], [0x7f], [0x80], [0xff], [0xff, 0xff], [0x61, 0x62]].map((k) =>
  Uint8Array.from(k),
);

interface Op {
  readonly key: number;
  readonly del: boolean;
  readonly value: Uint8Array;
  readonly seq: number;
}

const opsArb = fc
  .uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 40 })
  .chain((seqs) =>
    fc.tuple(
      fc.tuple(
        ...seqs.map((s) =>
          fc.record({
            key: fc.integer({ min: 0, max: keyPool.length - 1 }),
            del: fc.boolean(),
            value: fc.uint8Array({ maxLength: 6 }),
            seq: fc.constant(s),
          }),
        ),
      ),
      fc.shuffledSubarray(
        seqs.map((_, i) => i),
        { minLength: seqs.length, maxLength: seqs.length },
      ),
      fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }),
    ),
  );

function toWrite(ks: KeyspaceId, op: Op): EngineWrite {
  return op.del
    ? del(ks, keyPool[op.key] as Uint8Array, seq(op.seq))
    : put(ks, keyPool[op.key] as Uint8Array, op.value, seq(op.seq));
}

/** Applies ops in batches whose sizes cycle through `sizes`. */
async function applyIn(
  e: Engine,
  ks: KeyspaceId,
  ops: readonly Op[],
  sizes: readonly number[],
  index: { n: number },
) {
  const g = groupId(1);
  let at = 0;
  for (let i = 0; at < ops.length; i++) {
    const n = sizes[i % sizes.length] as number;
    const batch = ops.slice(at, at + n).map((op) => toWrite(ks, op));
    at += n;
    await e.applyBatch(g, batch, logIndex(++index.n), seq(1));
  }
}

function model(ops: readonly Op[]) {
  const best = new Map<number, Op>();
  for (const op of ops) {
    const cur = best.get(op.key);
    if (cur === undefined || op.seq > cur.seq) best.set(op.key, op);
  }
  return [...best.values()]
    .sort((a, b) => Buffer.compare(keyPool[a.key] as Uint8Array, keyPool[b.key] as Uint8Array))
    .map((op) => ({
      key: [...(keyPool[op.key] as Uint8Array)],
      tombstone: op.del,
      seq: [...seq(op.seq)],
      value: op.del ? [] : [...op.value],
    }));
}

async function state(e: Engine, ks: KeyspaceId) {
  return (await e.scan(ks, { includeTombstones: true, limit: 1000 })).map((x) => ({
    key: [...x.key],
    tombstone: x.tombstone,
    seq: [...x.seq],
    value: [...x.value],
  }));
}

for (const kind of ['btree', 'lsm'] as const) {
  describe(`reconciler property (${kind})`, () => {
    const scratch = new Scratch();
    afterAll(() => scratch.cleanup());

    it('any order, any batching, applied twice: same state, the highest seq per key', async () => {
      const e = await scratch.open(kind);
      let next = 1;
      const index = { n: 0 };
      await fc.assert(
        fc.asyncProperty(opsArb, async ([ops, perm, sizes]) => {
          const [a, b, c] = [keyspaceId(next++), keyspaceId(next++), keyspaceId(next++)];
          await applyIn(e, a, ops, [ops.length], index);
          await applyIn(
            e,
            b,
            perm.map((i) => ops[i] as Op),
            sizes,
            index,
          );
          await applyIn(e, c, [...ops, ...perm.map((i) => ops[i] as Op)], sizes, index);
          const expected = model(ops);
          expect(await state(e, a)).toEqual(expected);
          expect(await state(e, b)).toEqual(expected);
          expect(await state(e, c)).toEqual(expected);
        }),
        { numRuns: 60 },
      );
    });
  });
}
