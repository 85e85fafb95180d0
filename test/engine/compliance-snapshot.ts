/** Snapshot stream -> install, part of the engine compliance suite. */
import { describe, expect, it } from 'vitest';
import { type Engine, type EngineKind, keyspaceId } from '../../src/engine/index.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, logIndex } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { collect, dec, del, enc, put, replay, type Scratch, seq } from './helpers.js';

const g = groupId(3);
const ks = keyspaceId;

async function fill(e: Engine): Promise<void> {
  const writes = [];
  for (let i = 0; i < 3000; i++) {
    writes.push(put(ks(1), `key${String(i).padStart(5, '0')}`, `v${i}`.padEnd(1000, '.'), seq(1000 + i)));
  }
  writes.push(del(ks(1), 'key00007', seq(9000)));
  writes.push(put(ks(2), Uint8Array.of(0x00), 'zero', seq(9001)));
  writes.push(put(ks(2), Uint8Array.of(0xff), 'ff', seq(9002)));
  writes.push(put(ks(3), 'not-in-snapshot', 'x', seq(9003)));
  await e.applyBatch(g, writes, logIndex(42), seq(9003), [
    { key: enc('dedup/a'), value: enc('A') },
    { key: enc('dropped/7'), value: new Uint8Array(0) },
  ]);
}

async function dump(e: Engine, k: number) {
  return (await e.scan(ks(k), { includeTombstones: true, limit: 10_000 })).map((x) => [
    dec(x.key),
    x.tombstone,
    Buffer.from(x.seq).toString('hex'),
    x.value.length,
  ]);
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

export function complianceSnapshots(kind: EngineKind, scratch: Scratch): void {
  describe('snapshot stream and install', () => {
    for (const target of ['btree', 'lsm'] as const) {
      it(`a snapshot installed into a ${target} instance yields the same data, position and meta`, async () => {
        const src = await scratch.open(kind);
        await fill(src);
        const dst = await scratch.open(target);
        // Data the install must replace: stale records in a snapshot keyspace and stale meta.
        await dst.applyBatch(
          g,
          [put(ks(1), 'stale', 's', seq(1)), put(ks(3), 'keep', 'k', seq(2))],
          logIndex(5),
          seq(2),
          [{ key: enc('old'), value: enc('O') }],
        );
        const chunks = await collect(src.snapshot(g, [ks(1), ks(2)]));
        expect(chunks.length).toBeGreaterThan(3);
        for (const c of chunks) expect(c.length).toBeLessThan(limits.snapshotChunkBytes + 2 * 1024);
        const info = await dst.installSnapshot(g, replay(chunks));
        expect(info).toMatchObject({ group: g, index: 42, seq: seq(9003), records: 3002 + 2 });
        expect(await dump(dst, 1)).toEqual(await dump(src, 1));
        expect(await dump(dst, 2)).toEqual(await dump(src, 2));
        expect((await dump(dst, 1)).length).toBe(3000);
        expect(await dst.get(ks(1), enc('key00007'))).toMatchObject({ tombstone: true, seq: seq(9000) });
        expect(await dst.getApplied(g)).toEqual({ index: 42, seq: seq(9003), installing: false });
        expect((await dst.readMeta(g)).map((m) => dec(m.key))).toEqual(['dedup/a', 'dropped/7']);
        // Keyspaces outside the snapshot are left alone.
        expect((await dump(dst, 3)).map((r) => r[0])).toEqual(['keep']);
      });
    }

    it('is a consistent view: writes applied while streaming are not in it', async () => {
      const src = await scratch.open(kind);
      await fill(src);
      const it = src.snapshot(g, [ks(1)])[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      await src.applyBatch(
        g,
        [put(ks(1), 'key00000', 'changed', seq(20_000)), put(ks(1), 'new', 'n', seq(20_001))],
        logIndex(43),
        seq(20_001),
      );
      const chunks = [first.value as Uint8Array];
      for (let r = await it.next(); !r.done; r = await it.next()) chunks.push(r.value);
      const dst = await scratch.open(kind);
      const info = await dst.installSnapshot(g, replay(chunks));
      expect(info.index).toBe(42);
      expect(await dst.get(ks(1), enc('key00000'))).toMatchObject({ seq: seq(1000) });
      expect(await dst.get(ks(1), enc('new'))).toBeUndefined();
    });

    it('refuses a corrupt or cut stream, and leaves the group marked as installing', async () => {
      const src = await scratch.open(kind);
      await fill(src);
      const chunks = await collect(src.snapshot(g, [ks(1)]));
      const bad = chunks.map((c) => new Uint8Array(c));
      const victim = bad[1] as Uint8Array;
      victim[100] = (victim[100] as number) ^ 0x01;
      const dst = await scratch.open(kind);
      const e1 = await failure(dst.installSnapshot(g, replay(bad)));
      expect(isTesseraError(e1, 'CORRUPTION')).toBe(true);
      expect(await dst.getApplied(g)).toMatchObject({ installing: true, index: 0 });
      const e2 = await failure(dst.installSnapshot(g, replay(chunks.slice(0, -1))));
      expect(isTesseraError(e2, 'CORRUPTION')).toBe(true);
      const e3 = await failure(
        dst.installSnapshot(g, replay([chunks[0] as Uint8Array, chunks[2] as Uint8Array])),
      );
      expect(isTesseraError(e3, 'CORRUPTION')).toBe(true);
      // A good stream then completes the install.
      await dst.installSnapshot(g, replay(chunks));
      expect(await dst.getApplied(g)).toEqual({ index: 42, seq: seq(9003), installing: false });
      expect((await dump(dst, 1)).length).toBe(3000);
    });

    it('merge mode: a key range, renamed, reconciled into a migration target', async () => {
      const src = await scratch.open(kind);
      await fill(src);
      const dst = await scratch.open(kind);
      const tg = groupId(9);
      await dst.applyBatch(
        tg,
        [put(ks(9), 'key00101', 'newer', seq(50_000)), put(ks(9), 'key00102', 'older', seq(1))],
        logIndex(7),
        seq(50_000),
      );
      const chunks = await collect(
        src.snapshot(g, [ks(1)], { meta: false, start: enc('key00100'), end: enc('key00200') }),
      );
      const info = await dst.installSnapshot(tg, replay(chunks), {
        mode: 'merge',
        keyspaceMap: new Map([[ks(1), ks(9)]]),
      });
      expect(info.records).toBe(100);
      const rows = await dst.scan(ks(9), { limit: 1000 });
      expect(rows.length).toBe(100);
      expect(dec(rows[0]?.key ?? new Uint8Array())).toBe('key00100');
      expect(dec(rows[99]?.key ?? new Uint8Array())).toBe('key00199');
      expect(await dst.get(ks(9), enc('key00101'))).toMatchObject({ value: enc('newer') });
      expect(await dst.get(ks(9), enc('key00102'))).toMatchObject({ seq: seq(1102) });
      expect(await dst.readMeta(tg)).toEqual([]);
      // The target keeps its own applied index and never falls below the source's highest seq.
      expect(await dst.getApplied(tg)).toEqual({ index: 7, seq: seq(50_000), installing: false });
      const low = await scratch.open(kind);
      await low.installSnapshot(tg, replay(chunks), {
        mode: 'merge',
        keyspaceMap: new Map([[ks(1), ks(9)]]),
      });
      expect(await low.getApplied(tg)).toEqual({ index: 0, seq: seq(9003), installing: false });
    });
  });
}
