/**
 * btree's commit chain: packed batches queued ahead on lmdb-js's write thread commit only if every
 * batch queued before them did. lmdb-js settles each transaction on its own, so without the chain
 * a batch behind a failed one would commit, and its applied position would cover entries the
 * store never got (recovery would then skip them).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type Engine, keyspaceId } from '../../src/engine/index.js';
import { chainKey, encodeChain } from '../../src/engine/keys.js';
import { PackedWrites } from '../../src/engine/packed.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, logIndex } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { dec, lmdbCommitFailure, put, Scratch, seq } from './helpers.js';

const g = groupId(7);
const k = keyspaceId(3);
const perBatch = 200; // above lmdbOffThreadWritesMin: queued ahead

/** The lmdb-js database under a btree engine, and its write methods' originals. */
interface Lmdb {
  ifVersion(key: Uint8Array, version: number, action: () => void): Promise<boolean>;
  put(key: Uint8Array, value: Uint8Array): Promise<boolean>;
}
const lmdbOf = (e: Engine): Lmdb => (e as unknown as { db: Lmdb }).db;

/** The next batch's block (its first ifVersion) goes to `first`; later ones to lmdb-js. */
function onFirstBlock(db: Lmdb, first: (real: () => Promise<boolean>) => Promise<boolean>): void {
  const ifVersion = db.ifVersion.bind(db);
  let calls = 0;
  db.ifVersion = (key, version, action) => {
    const real = () => ifVersion(key, version, action);
    return ++calls === 1 ? first(real) : real();
  };
}

function batch(b: number): PackedWrites {
  return PackedWrites.of(
    Array.from({ length: perBatch }, (_, i) => put(k, `b${b}-${i}`, `v${b}`, seq(b * 1000 + i))),
  );
}

/** Queues batches first..last back to back (none awaited before the next is queued). */
function queue(e: Engine, first: number, last: number): Promise<unknown>[] {
  const out: Promise<unknown>[] = [];
  for (let b = first; b <= last; b++) {
    out.push(
      e.applyPacked(g, batch(b), logIndex(b), seq(b * 1000 + perBatch)).then(
        () => 'ok',
        (err: unknown) => err,
      ),
    );
  }
  return out;
}

async function batchesIn(e: Engine): Promise<number[]> {
  const rows = await e.scan(k, { limit: 100_000 });
  return [...new Set(rows.map((r) => Number(dec(r.key).slice(1).split('-')[0])))].sort((a, b) => a - b);
}

describe('btree commit chain', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('a batch queued behind one that did not commit is not written, nor any after it', async () => {
    const dir = await scratch.dir();
    const e = await scratch.open('btree', dir);
    expect(await Promise.all(queue(e, 1, 2))).toEqual(['ok', 'ok']);
    // Batch 3 does not commit: a write queued just before it moves the chain away, so 3's
    // condition fails on the write thread; 4 and 5 were queued behind 3 before that was known.
    const db = lmdbOf(e);
    onFirstBlock(db, (real) => {
      void db.put(chainKey, encodeChain(1_000_000));
      return real();
    });
    const outcomes = await Promise.all(queue(e, 3, 5));
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o))).toEqual([
      expect.stringMatching(/not committed/),
      expect.stringMatching(/not committed/),
      expect.stringMatching(/not committed/),
    ]);
    expect(await batchesIn(e)).toEqual([1, 2]);
    expect((await e.getApplied(g))?.index).toBe(2);
    // The instance refuses every later write; reads go on.
    const later = await queue(e, 6, 6)[0];
    expect((later as Error).message).toMatch(/no writes after a failed commit/);
    await expect(e.applyBatch(g, [put(k, 'x', 'y', seq(9_999_999))], logIndex(7), seq(1))).rejects.toThrow(
      /no writes after a failed commit/,
    );
    expect((await e.get(k, new TextEncoder().encode('b2-0')))?.value).toEqual(new TextEncoder().encode('v2'));
    await e.close();
  });

  it('after a failed commit with batches queued behind it, the store holds the prefix before it; reopened, it takes writes from there', async () => {
    const dir = await scratch.dir();
    let e = await scratch.open('btree', dir);
    expect(await Promise.all(queue(e, 1, 2))).toEqual(['ok', 'ok']);
    // Batch 3's commit fails as lmdb-js reports a full disk: the promise rejects, the cause on
    // commitError, nothing of it written. Batches 4 and 5 go to the real write thread.
    onFirstBlock(lmdbOf(e), () => lmdbCommitFailure('MDB_ENOSPC: No space left on device', 28));
    const [third, fourth, fifth] = await Promise.all(queue(e, 3, 5));
    expect(isTesseraError(third) && third.code).toBe('DISK_FULL');
    expect((fourth as Error).message).toMatch(/not committed|no writes after a failed commit/);
    expect((fifth as Error).message).toMatch(/not committed|no writes after a failed commit/);
    expect(await batchesIn(e)).toEqual([1, 2]);
    const refused = await queue(e, 6, 6)[0];
    expect(isTesseraError(refused) && refused.code).toBe('DISK_FULL'); // the cause's code
    await e.close(); // does not wait for a flush that never comes

    e = await scratch.open('btree', dir);
    expect((await e.getApplied(g))?.index).toBe(2);
    // Replayed from the stored position: batches 3..5 again, queued ahead, all committed.
    expect(await Promise.all(queue(e, 3, 5))).toEqual(['ok', 'ok', 'ok']);
    expect(await batchesIn(e)).toEqual([1, 2, 3, 4, 5]);
    expect((await e.getApplied(g))?.index).toBe(5);
    await e.close();
  });

  it("a commit failing with LMDB's EIO counts as a full disk only when the file system is (almost) full", async () => {
    const saved = limits.diskFullFreeBytesMax;
    try {
      const codes: unknown[] = [];
      // 0: any free space is enough to call it an I/O error; Infinity: no free space is enough.
      for (const threshold of [0, Number.POSITIVE_INFINITY]) {
        Object.assign(limits, { diskFullFreeBytesMax: threshold });
        const e = await scratch.open('btree');
        const db = lmdbOf(e);
        db.ifVersion = () => lmdbCommitFailure('Input/output error', 5);
        const [failed] = await Promise.all(queue(e, 1, 1));
        codes.push(isTesseraError(failed) ? failed.code : (failed as Error).message);
        await e.close();
      }
      expect(codes).toEqual([
        expect.stringMatching(/commit failed: Input\/output error \(5\)$/),
        'DISK_FULL',
      ]);
    } finally {
      Object.assign(limits, { diskFullFreeBytesMax: saved });
    }
  });

  it('the chain survives reopen and compaction: batches queued after them commit', async () => {
    const dir = await scratch.dir();
    let e = await scratch.open('btree', dir);
    expect(await Promise.all(queue(e, 1, 3))).toEqual(['ok', 'ok', 'ok']);
    await e.compact();
    expect(await Promise.all(queue(e, 4, 5))).toEqual(['ok', 'ok']);
    await e.close();
    e = await scratch.open('btree', dir);
    expect(await Promise.all(queue(e, 6, 8))).toEqual(['ok', 'ok', 'ok']);
    expect(await batchesIn(e)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await e.close();
  });
});
