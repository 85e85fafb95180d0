/**
 * The compliance suite every index engine must pass: `engineCompliance('btree')` and
 * `engineCompliance('lsm')` run it (btree.test.ts, lsm.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type Engine, type EngineKind, keyspaceId } from '../../src/engine/index.js';
import { AssertionError } from '../../src/lib/assert.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, logIndex } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { PackedWrites } from '../../src/engine/packed.js';
import { ZERO_SEQ } from '../../src/sequencer/seq.js';
import { complianceWriteFailure } from './compliance-failure.js';
import { complianceSnapshots } from './compliance-snapshot.js';
import { del, dec, dirBytes, enc, put, Scratch, seq } from './helpers.js';
import { Prng } from '../../src/lib/prng.js';

const g1 = groupId(1);
const g2 = groupId(2);
const ks = keyspaceId;

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isTesseraError(e) ? e.code : e).toBe(code);
}

export function engineCompliance(kind: EngineKind): void {
  describe(`engine compliance: ${kind}`, () => {
    const scratch = new Scratch();
    afterAll(() => scratch.cleanup());
    let shared: Engine | undefined;
    let nextKs = 10;
    /** One instance for the tests that need no fresh one; a fresh keyspace per test. */
    const engine = async (): Promise<Engine> => (shared ??= await scratch.open(kind));
    const freshKs = () => ks(nextKs++);
    let nextGroup = 100;
    const freshGroup = () => groupId(nextGroup++);

    it('declares its kind in the supports manifest', async () => {
      const e = await engine();
      expect(e.kind).toBe(kind);
      expect(e.supports.kind).toBe(kind);
      expect(e.supports.snapshots).toBe(true);
    });

    it('stores puts and deletes with their seq, and returns tombstones', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      expect(await e.get(k, enc('a'))).toBeUndefined();
      await e.applyBatch(g1, [put(k, 'a', 'one', seq(10)), del(k, 'b', seq(11))], logIndex(1), seq(11));
      expect(await e.get(k, enc('a'))).toEqual({ value: enc('one'), seq: seq(10), tombstone: false });
      expect(await e.get(k, enc('b'))).toEqual({ value: new Uint8Array(0), seq: seq(11), tombstone: true });
      const many = await e.getMany([
        { keyspace: k, key: enc('b') },
        { keyspace: k, key: enc('zz') },
        { keyspace: k, key: enc('a') },
      ]);
      expect(many.map((r) => r?.seq)).toEqual([seq(11), undefined, seq(10)]);
      // The synchronous read answers the same (records, tombstones, absent keys, other keyspaces).
      expect(e.getSync(k, enc('a'))).toEqual({ value: enc('one'), seq: seq(10), tombstone: false });
      expect(e.getSync(k, enc('b'))).toEqual({ value: new Uint8Array(0), seq: seq(11), tombstone: true });
      expect(e.getSync(k, enc('zz'))).toBeUndefined();
      expect(e.getSync(freshKs(), enc('a'))).toBeUndefined();
      const first = e.getSync(k, enc('a'));
      e.getSync(k, enc('b'));
      expect(first?.value).toEqual(enc('one')); // owned memory, not a reused buffer
    });

    it('reconciler: a write is stored only if its seq is above the stored one', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      const r1 = await e.applyBatch(g1, [put(k, 'x', 'v20', seq(20))], logIndex(1), seq(20));
      expect(r1).toEqual({ stored: 1, ignored: 0 });
      const r2 = await e.applyBatch(
        g1,
        [put(k, 'x', 'v10', seq(10)), put(k, 'x', 'again', seq(20)), del(k, 'x', seq(15))],
        logIndex(2),
        seq(20),
      );
      expect(r2).toEqual({ stored: 0, ignored: 3 });
      expect(await e.get(k, enc('x'))).toEqual({ value: enc('v20'), seq: seq(20), tombstone: false });
      await e.applyBatch(g1, [del(k, 'x', seq(30))], logIndex(3), seq(30));
      expect(await e.get(k, enc('x'))).toMatchObject({ tombstone: true, seq: seq(30) });
      // A put older than the tombstone does not resurrect the key.
      await e.applyBatch(g1, [put(k, 'x', 'old', seq(25))], logIndex(4), seq(30));
      expect(await e.get(k, enc('x'))).toMatchObject({ tombstone: true, seq: seq(30) });
      await e.applyBatch(g1, [put(k, 'x', 'new', seq(31))], logIndex(5), seq(31));
      expect(await e.get(k, enc('x'))).toEqual({ value: enc('new'), seq: seq(31), tombstone: false });
    });

    it('reconciler: within one batch the highest seq wins, whatever the order', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      const r = await e.applyBatch(
        g1,
        [put(k, 'k', 'b', seq(5)), put(k, 'k', 'c', seq(7)), put(k, 'k', 'a', seq(3)), del(k, 'k', seq(6))],
        logIndex(1),
        seq(7),
      );
      expect(r.stored + r.ignored).toBe(4);
      expect(await e.get(k, enc('k'))).toEqual({ value: enc('c'), seq: seq(7), tombstone: false });
    });

    it('ordered path: log-order writes are stored without a read, the last write of a key wins', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      await e.applyBatch(g1, [put(k, 'x', 'v1', seq(10)), put(k, 'y', 'y1', seq(11))], logIndex(1), seq(11));
      const r = await e.applyBatch(
        g1,
        [
          put(k, 'x', 'v2', seq(12)),
          del(k, 'y', seq(13)),
          put(k, 'z', 'z1', seq(14)),
          put(k, 'z', 'z2', seq(15)),
        ],
        logIndex(2),
        seq(15),
        [],
        { ordered: true },
      );
      expect(r).toEqual({ stored: 4, ignored: 0 });
      expect(await e.get(k, enc('x'))).toEqual({ value: enc('v2'), seq: seq(12), tombstone: false });
      expect(await e.get(k, enc('y'))).toEqual({ value: new Uint8Array(0), seq: seq(13), tombstone: true });
      expect(await e.get(k, enc('z'))).toEqual({ value: enc('z2'), seq: seq(15), tombstone: false });
      expect(await e.getApplied(g1)).toEqual({ index: logIndex(2), seq: seq(15), installing: false });
      // The path trusts the caller: it does not read, so it would even store an older seq (which
      // is why only log-order applies past the applied index may use it); the default path would not.
      await e.applyBatch(g1, [put(k, 'x', 'stale', seq(5))], logIndex(3), seq(15), [], { ordered: true });
      expect(await e.get(k, enc('x'))).toMatchObject({ value: enc('stale'), seq: seq(5) });
      await e.applyBatch(g1, [put(k, 'x', 'older', seq(4))], logIndex(4), seq(15));
      expect(await e.get(k, enc('x'))).toMatchObject({ value: enc('stale'), seq: seq(5) });
      // The applied seq never goes down.
      expect((await e.getApplied(g1)).seq).toEqual(seq(15));
    });

    it('ordered path and reconciling path agree on any log-order history', async () => {
      const prng = new Prng(7);
      const a = await scratch.open(kind);
      const b = await engine();
      const g = freshGroup();
      const k = freshKs();
      let s = 100;
      for (let batch = 1; batch <= 20; batch++) {
        const writes = Array.from({ length: 1 + (prng.nextU32() % 30) }, () => {
          const key = `k${prng.nextU32() % 25}`;
          return prng.nextU32() % 4 === 0 ? del(k, key, seq(++s)) : put(k, key, `v${s + 1}`, seq(++s));
        });
        await a.applyBatch(g, writes, logIndex(batch), seq(s), [], { ordered: true });
        await b.applyBatch(g, writes, logIndex(batch), seq(s));
      }
      const all = { limit: 1000, includeTombstones: true };
      const rows = await a.scan(k, all);
      expect(rows.length).toBeGreaterThan(10);
      expect(rows).toEqual(await b.scan(k, all));
      expect(await a.getApplied(g)).toEqual(await b.getApplied(g));
    });

    it('packed batches: byte ranges of one buffer, grown from tiny hints, stored like ordered writes', async () => {
      const prng = new Prng(11);
      const a = await scratch.open(kind);
      const b = await engine();
      const g = freshGroup();
      const k = freshKs();
      let s = 1000;
      // Sizes on both sides of lmdbOffThreadWritesMin (btree writes small batches on this thread).
      for (const [batch, n] of [
        [1, 5],
        [2, 300],
        [3, 40],
        [4, 700],
      ] as const) {
        const writes = Array.from({ length: n }, () => {
          const key = `key-${prng.nextU32() % 400}`;
          const value = 'v'.repeat(prng.nextU32() % 90) + String(s + 1);
          return prng.nextU32() % 5 === 0 ? del(k, key, seq(++s)) : put(k, key, value, seq(++s));
        });
        // One source buffer: [seq | key | value] per write, packed from ranges of it.
        const src = Buffer.concat(
          writes.map((w) => Buffer.concat([w.seq, w.key, w.type === 'put' ? w.value : new Uint8Array(0)])),
        );
        const packed = new PackedWrites(1, 1);
        let at = 0;
        for (const w of writes) {
          const keyAt = at + 16;
          const valueAt = keyAt + w.key.length;
          const end = valueAt + (w.type === 'put' ? w.value.length : 0);
          if (w.type === 'put') packed.put(k, src, keyAt, valueAt, src, at, src, valueAt, end);
          else packed.delete(k, src, keyAt, valueAt, src, at);
          at = end;
        }
        expect(packed.count).toBe(n);
        expect(packed.maxSeq()).toEqual(seq(s));
        // The applied seq covers the highest packed seq even when the caller passes a lower one.
        const r = await a.applyPacked(g, packed, logIndex(batch), seq(1));
        expect(r).toEqual({ stored: n, ignored: 0 });
        // The reference goes through the reconciler (highest seq wins), not through packing.
        await b.applyBatch(g, writes, logIndex(batch), seq(s));
        expect(await a.getApplied(g)).toEqual({ index: logIndex(batch), seq: seq(s), installing: false });
      }
      const all = { limit: 1000, includeTombstones: true };
      const rows = await a.scan(k, all);
      expect(rows.length).toBeGreaterThan(300);
      expect(rows).toEqual(await b.scan(k, all));
    });

    it('orders keys as unsigned bytes, 0x00 and 0xFF included, and keeps keyspaces apart', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const keys = [
        [0xff, 0xff],
        [0x00],
        [0x80],
        [0xff],
        [0x00, 0x00],
        [0x7f],
        [0x01],
        [0xff, 0x00],
        [0x00, 0xff],
      ];
      const sorted = keys.map((k) => Uint8Array.from(k)).sort((a, b) => Buffer.compare(a, b));
      // Keyspaces 127 and 128 straddle the one-byte varint boundary; 0 is the lowest.
      for (const k of [ks(0), ks(127), ks(128), ks(300)]) {
        await e.applyBatch(
          g1,
          keys.map((key, i) => put(k, Uint8Array.from(key), `${k}:${i}`, seq(100 + i))),
          logIndex(k + 1),
          seq(200),
        );
      }
      for (const k of [ks(0), ks(127), ks(128), ks(300)]) {
        const got = await e.scan(k, { limit: 100 });
        expect(got.map((x) => [...x.key])).toEqual(sorted.map((x) => [...x]));
        expect(got.every((x) => dec(x.value).startsWith(`${k}:`))).toBe(true);
      }
      expect(await e.scan(ks(1), { limit: 100 })).toEqual([]);
      expect(await e.scan(ks(129), { limit: 100 })).toEqual([]);
    });

    it('scans a range [start, end), a prefix, with a limit, optionally with tombstones', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      const names = ['a', 'ab', 'abc', 'abd', 'ac', 'b', 'ba', 'c'];
      await e.applyBatch(
        g1,
        [
          ...names.map((n, i) => put(k, n, n.toUpperCase(), seq(i + 1))),
          del(k, 'abd', seq(50)),
          del(k, 'bb', seq(51)),
        ],
        logIndex(10),
        seq(51),
      );
      const keysOf = async (o: Parameters<Engine['scan']>[1]) => (await e.scan(k, o)).map((x) => dec(x.key));
      expect(await keysOf({})).toEqual(['a', 'ab', 'abc', 'ac', 'b', 'ba', 'c']);
      expect(await keysOf({ includeTombstones: true })).toEqual([
        'a',
        'ab',
        'abc',
        'abd',
        'ac',
        'b',
        'ba',
        'bb',
        'c',
      ]);
      expect(await keysOf({ start: enc('ab'), end: enc('b') })).toEqual(['ab', 'abc', 'ac']);
      expect(await keysOf({ start: enc('ab'), end: enc('ab') })).toEqual([]);
      expect(await keysOf({ start: enc('b'), end: enc('a') })).toEqual([]);
      expect(await keysOf({ prefix: enc('ab') })).toEqual(['ab', 'abc']);
      expect(await keysOf({ prefix: enc('ab'), includeTombstones: true })).toEqual(['ab', 'abc', 'abd']);
      expect(await keysOf({ prefix: enc('ab'), start: enc('abc') })).toEqual(['abc']);
      expect(await keysOf({ prefix: enc('a'), end: enc('abc') })).toEqual(['a', 'ab']);
      expect(await keysOf({ limit: 3 })).toEqual(['a', 'ab', 'abc']);
      // The limit counts live entries: the tombstone at 'abd' is skipped, not counted.
      expect(await keysOf({ start: enc('abc'), limit: 2 })).toEqual(['abc', 'ac']);
      expect(await keysOf({ limit: 0 })).toEqual([]);
      expect(await keysOf({ prefix: enc('zz') })).toEqual([]);
      const withValues = await e.scan(k, { prefix: enc('b') });
      expect(withValues.map((x) => [dec(x.key), dec(x.value), x.seq])).toEqual([
        ['b', 'B', seq(6)],
        ['ba', 'BA', seq(7)],
      ]);
    });

    it('prefix scans of 0xFF prefixes reach the end of the keyspace and no further', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      const after = ks(k + 1);
      await e.applyBatch(
        g1,
        [put(k, Uint8Array.of(0xff), 'a', seq(1)), put(k, Uint8Array.of(0xff, 0xff, 0x01), 'b', seq(2))],
        logIndex(1),
        seq(2),
      );
      await e.applyBatch(g1, [put(after, Uint8Array.of(0x00), 'other', seq(3))], logIndex(2), seq(3));
      expect((await e.scan(k, { prefix: Uint8Array.of(0xff, 0xff) })).map((x) => dec(x.value))).toEqual([
        'b',
      ]);
      expect((await e.scan(k, { prefix: Uint8Array.of(0xff) })).map((x) => dec(x.value))).toEqual(['a', 'b']);
      expect((await e.scan(k, { start: Uint8Array.of(0xff, 0x00) })).map((x) => dec(x.value))).toEqual(['b']);
    });

    it('stores the applied position atomically with the data, and its seq only grows', async () => {
      const e = await scratch.open(kind);
      const k = ks(1);
      expect(await e.getApplied(g1)).toEqual({ index: 0, seq: ZERO_SEQ, installing: false });
      await e.applyBatch(g1, [put(k, 'a', '1', seq(40))], logIndex(7), seq(10));
      // highestSeq is raised to the highest write seq in the batch.
      expect(await e.getApplied(g1)).toEqual({ index: 7, seq: seq(40), installing: false });
      await e.applyBatch(g1, [], logIndex(8), seq(20));
      expect(await e.getApplied(g1)).toEqual({ index: 8, seq: seq(40), installing: false });
      expect(await e.getApplied(g2)).toMatchObject({ index: 0 });
      // A batch refused by validation changes nothing: neither data nor position.
      await expectCode(
        e.applyBatch(g1, [put(k, 'b', '2', seq(50)), put(k, '', 'x', seq(51))], logIndex(9), seq(51)),
        'KEY_EMPTY',
      );
      expect(await e.get(k, enc('b'))).toBeUndefined();
      expect(await e.getApplied(g1)).toMatchObject({ index: 8 });
      // Going back is a programmer error.
      await expect(e.applyBatch(g1, [], logIndex(3), seq(1))).rejects.toBeInstanceOf(AssertionError);
      expect(await e.getApplied(g1)).toMatchObject({ index: 8 });
    });

    it('writes meta records atomically with the batch and reads them by prefix', async () => {
      const e = await engine();
      const g = groupId(77);
      const meta = [
        { key: enc('d/1'), value: enc('one') },
        { key: enc('d/2'), value: enc('two') },
        { key: enc('t/9'), value: new Uint8Array(0) },
      ];
      await e.applyBatch(g, [], logIndex(1), seq(1), meta);
      expect((await e.readMeta(g, enc('d/'))).map((m) => [dec(m.key), dec(m.value)])).toEqual([
        ['d/1', 'one'],
        ['d/2', 'two'],
      ]);
      await e.applyBatch(g, [], logIndex(2), seq(1), [{ key: enc('d/1'), value: undefined }]);
      expect((await e.readMeta(g)).map((m) => dec(m.key))).toEqual(['d/2', 't/9']);
      expect(await e.readMeta(groupId(78))).toEqual([]);
      await e.dropGroup(g);
      expect(await e.readMeta(g)).toEqual([]);
      expect(await e.getApplied(g)).toMatchObject({ index: 0 });
    });

    it('enforces the key and value limits with stable codes', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      await expectCode(e.get(k, new Uint8Array(0)), 'KEY_EMPTY');
      await expectCode(e.get(k, new Uint8Array(limits.keyBytesMax + 1)), 'KEY_TOO_LARGE');
      const big = new Uint8Array(limits.valueBytesMax).fill(7);
      const longKey = new Uint8Array(limits.keyBytesMax).fill(0xff);
      await e.applyBatch(g1, [put(k, longKey, big, seq(1))], logIndex(1), seq(1));
      const got = await e.get(k, longKey);
      expect(got?.value.length).toBe(limits.valueBytesMax);
      expect(got?.value[limits.valueBytesMax - 1]).toBe(7);
      await expectCode(
        e.applyBatch(
          g1,
          [put(k, 'v', new Uint8Array(limits.valueBytesMax + 1), seq(2))],
          logIndex(2),
          seq(2),
        ),
        'VALUE_TOO_LARGE',
      );
      await expectCode(
        e.applyBatch(g1, [put(k, new Uint8Array(limits.keyBytesMax + 1), 'v', seq(2))], logIndex(2), seq(2)),
        'KEY_TOO_LARGE',
      );
      await expect(e.scan(k, { limit: limits.engineScanLimitMax + 1 })).rejects.toBeInstanceOf(
        AssertionError,
      );
      await expect(
        e.applyBatch(g1, [put(k, 'a', 'b', Uint8Array.of(1) as never)], logIndex(3), seq(3)),
      ).rejects.toBeInstanceOf(AssertionError);
    });

    it('keeps data, applied positions and meta across close and reopen', async () => {
      const dir = await scratch.dir();
      const e = await scratch.open(kind, dir);
      const k = ks(5);
      await e.applyBatch(g1, [put(k, 'a', 'A', seq(3)), del(k, 'b', seq(4))], logIndex(12), seq(4), [
        { key: enc('m'), value: enc('M') },
      ]);
      await e.checkpoint();
      await e.applyBatch(g1, [put(k, 'c', 'C', seq(5))], logIndex(13), seq(5));
      await e.close();
      await expect(e.get(k, enc('a'))).rejects.toBeInstanceOf(AssertionError);
      const again = await scratch.open(kind, dir);
      expect(await again.get(k, enc('a'))).toEqual({ value: enc('A'), seq: seq(3), tombstone: false });
      expect(await again.get(k, enc('b'))).toMatchObject({ tombstone: true, seq: seq(4) });
      expect(await again.get(k, enc('c'))).toMatchObject({ value: enc('C') });
      expect(await again.getApplied(g1)).toEqual({ index: 13, seq: seq(5), installing: false });
      expect((await again.readMeta(g1)).map((m) => dec(m.value))).toEqual(['M']);
    });

    it('refuses to open a directory of the other kind', async () => {
      const dir = await scratch.dir();
      const e = await scratch.open(kind, dir);
      await e.close();
      const other: EngineKind = kind === 'btree' ? 'lsm' : 'btree';
      // A btree file is not a LevelDB database and vice versa: opening must fail, not corrupt.
      await expect(scratch.open(other, dir)).rejects.toBeTruthy();
      const back = await scratch.open(kind, dir);
      expect(await back.getApplied(g1)).toMatchObject({ index: 0 });
    });

    it('drops a keyspace: its data goes, other keyspaces stay', async () => {
      const e = await scratch.open(kind);
      const writes = [];
      for (let i = 0; i < 2000; i++) {
        writes.push(put(ks(1), `k${i}`, 'x'.repeat(200), seq(i + 1)));
        writes.push(put(ks(2), `k${i}`, 'y', seq(i + 1)));
      }
      await e.applyBatch(g1, writes, logIndex(1), seq(2000));
      await e.dropKeyspace(ks(1));
      expect(await e.scan(ks(1), { includeTombstones: true })).toEqual([]);
      expect(await e.get(ks(1), enc('k5'))).toBeUndefined();
      expect((await e.scan(ks(2), { limit: 5000 })).length).toBe(2000);
      expect(await e.getApplied(g1)).toMatchObject({ index: 1 });
    });

    it('compact() keeps every record and the applied position, and the instance stays usable', async () => {
      const dir = await scratch.dir();
      const e = await scratch.open(kind, dir);
      const prng = new Prng(3);
      for (let b = 0; b < 5; b++) {
        const writes = Array.from({ length: 1000 }, () =>
          put(
            ks(1),
            new Uint8Array(16).map(() => prng.int(0, 255)),
            new Uint8Array(100).fill(b),
            seq(b + 1),
          ),
        );
        await e.applyBatch(g1, writes, logIndex(b + 1), seq(b + 1));
      }
      const before = await dirBytes(dir);
      const rows = await e.scan(ks(1), { limit: 10_000 });
      // Reads issued while compacting wait for it (btree swaps its file) and see the same data.
      const [, during, scanned] = await Promise.all([
        e.compact(),
        e.get(ks(1), rows[7]?.key ?? enc('?')),
        e.scan(ks(1), { limit: 10 }),
      ]);
      expect(during).toEqual({ value: rows[7]?.value, seq: rows[7]?.seq, tombstone: false });
      expect(scanned).toEqual(rows.slice(0, 10));
      expect(await dirBytes(dir)).toBeLessThanOrEqual(before);
      expect(await e.scan(ks(1), { limit: 10_000 })).toEqual(rows);
      expect(await e.getApplied(g1)).toMatchObject({ index: 5 });
      await e.applyBatch(g1, [put(ks(1), 'after', 'x', seq(9))], logIndex(6), seq(9));
      expect(await e.get(ks(1), enc('after'))).toMatchObject({ seq: seq(9) });
      await e.close();
      const again = await scratch.open(kind, dir);
      expect((await again.scan(ks(1), { limit: 10_000 })).length).toBe(5001);
    });

    it('purges tombstones below a seq, and only those', async () => {
      const e = await engine();
      const g1 = freshGroup();
      const k = freshKs();
      await e.applyBatch(
        g1,
        [
          del(k, 'old', seq(5)),
          del(k, 'new', seq(50)),
          put(k, 'live', 'v', seq(6)),
          put(k, 'dead', 'v', seq(1)),
        ],
        logIndex(1),
        seq(50),
      );
      await e.applyBatch(g1, [del(k, 'dead', seq(7))], logIndex(2), seq(50));
      expect(await e.purgeTombstones(k, seq(10))).toBe(2);
      const left = await e.scan(k, { includeTombstones: true });
      expect(left.map((x) => [dec(x.key), x.tombstone])).toEqual([
        ['live', false],
        ['new', true],
      ]);
    });

    it('packed batches issued back to back commit in order, written ahead of their turn; a reconciled batch after them sees them all', async () => {
      const e = await scratch.open(kind);
      const g = freshGroup();
      const k = freshKs();
      // Record when the engine works on each batch: btree queues a batch behind the one before it
      // is committed (lmdb-js commits in queue order), lsm builds it while the one before is written.
      const events: string[] = [];
      const impl = e as unknown as {
        _write: (...a: unknown[]) => Promise<void>;
        _writeAhead: (...a: unknown[]) => Promise<void>;
        _prepare: (...a: unknown[]) => unknown;
      };
      const prepare = impl._prepare.bind(e);
      let writes = 0;
      // btree queues the packed batches through _writeAhead, lsm writes them with _write. btree's
      // are reported committed only once `open` is called: the engine must queue them all before.
      let open = (): void => undefined;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      for (const name of ['_write', '_writeAhead'] as const) {
        const write = impl[name].bind(e);
        impl[name] = (...a) => {
          const n = ++writes;
          events.push(`write ${n}`);
          const done = write(...a);
          return (name === '_writeAhead' ? gate.then(() => done) : done).finally(() =>
            events.push(`written ${n}`),
          );
        };
      }
      impl._prepare = (...a) => {
        events.push('prepare');
        return prepare(...a);
      };
      const batches = 4;
      const perBatch = 300; // above lmdbOffThreadWritesMin
      const want = new Map<string, string>();
      let s = 0;
      const done: Promise<unknown>[] = [];
      for (let b = 1; b <= batches; b++) {
        const ws = Array.from({ length: perBatch }, (_, i) => {
          const w = put(k, `k${(i * 7 + b * 13) % 500}`, `b${b}-${i}`, seq(++s));
          return { ...w, value: w.type === 'put' ? w.value : new Uint8Array(0) };
        });
        for (const w of ws) want.set(dec(w.key), dec(w.value));
        const src = Buffer.concat(ws.map((w) => Buffer.concat([w.seq, w.key, w.value])));
        const packed = new PackedWrites(1, 1);
        let at = 0;
        for (const w of ws) {
          const valueAt = at + 16 + w.key.length;
          packed.put(k, src, at + 16, valueAt, src, at, src, valueAt, valueAt + w.value.length);
          at = valueAt + w.value.length;
        }
        done.push(e.applyPacked(g, packed, logIndex(b), seq(1)));
      }
      // Issued before any of them committed: one lower-seq write to a key they hold, one new key.
      const held = `k${(0 * 7 + batches * 13) % 500}`;
      const reconciled = e.applyBatch(
        g,
        [put(k, held, 'stale', seq(1)), put(k, 'fresh', 'new', seq(++s))],
        logIndex(batches + 1),
        seq(s),
      );
      if (kind === 'btree') {
        // No batch has been reported committed: every one must still reach the write thread.
        for (let turn = 0; turn < 100 && !events.includes(`write ${batches}`); turn++) {
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(events).toEqual(Array.from({ length: batches }, (_, i) => `write ${i + 1}`));
      }
      open();
      await Promise.all(done);
      expect(await reconciled).toEqual({ stored: 1, ignored: 1 });
      want.set('fresh', 'new');
      const rows = await e.scan(k, { limit: 1000 });
      expect(new Map(rows.map((r) => [dec(r.key), dec(r.value)]))).toEqual(want);
      expect(await e.getApplied(g)).toEqual({ index: logIndex(batches + 1), seq: seq(s), installing: false });
      if (kind === 'lsm') {
        // The second batch was built while the first was written.
        expect(events.filter((x) => x === 'prepare').length).toBe(batches);
        expect(events.indexOf('write 1')).toBeLessThan(events.indexOf('written 1'));
        expect(events.slice(0, 3)).toEqual(['prepare', 'prepare', 'prepare']);
      }
      await e.close();
    });

    it('destroy removes the instance directory', async () => {
      const dir = await scratch.dir();
      const e = await scratch.open(kind, dir);
      await e.applyBatch(g1, [put(ks(1), 'a', 'b', seq(1))], logIndex(1), seq(1));
      await e.destroy();
      const { existsSync } = await import('node:fs');
      expect(existsSync(dir)).toBe(false);
    });

    complianceSnapshots(kind, scratch);
    complianceWriteFailure(kind, scratch);
  });
}
