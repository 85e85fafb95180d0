import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/lib/assert.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { nodeId } from '../../src/lib/ids.js';
import { type LogIo, nodeIo, openLog } from '../../src/log/index.js';
import { entries, entry, G, I, payloadFor, readAll, segmentFiles, T, tempDir } from './helpers.js';

const range = (a: number, b: number, t = 1): [number, number][] =>
  Array.from({ length: b - a + 1 }, (_, k) => [a + k, t]);

describe('log basics', () => {
  it('appends, reads by index range, and recovers the same state', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append(entries(1, 1, 50));
    await log.append(entries(1, 51, 100));
    expect(log.groupState(G(1))).toMatchObject({ firstIndex: 1, lastIndex: 100, lastTerm: 1 });
    expect(await readAll(log, 1)).toEqual(range(1, 100));
    const mid = await log.readEntries(G(1), I(40), I(45));
    expect(mid.map((e) => e.index)).toEqual([40, 41, 42, 43, 44, 45]);
    await log.close();
    const again = await openLog(dir);
    expect(again.recovery.cut).toBeUndefined();
    expect(await readAll(again, 1)).toEqual(range(1, 100));
    await again.append(entries(1, 101, 101));
    expect(again.groupState(G(1))?.lastIndex).toBe(101);
    await again.close();
  });

  it('a later record for the same (group, index) replaces the suffix (Raft overwrite), also on replay', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append(entries(1, 1, 10, 1));
    await log.append(entries(1, 6, 7, 2));
    const want: [number, number][] = [...range(1, 5, 1), ...range(6, 7, 2)];
    expect(await readAll(log, 1)).toEqual(want);
    expect(log.term(G(1), I(7))).toBe(2);
    expect(log.term(G(1), I(8))).toBeUndefined();
    await log.close();
    const again = await openLog(dir);
    expect(await readAll(again, 1)).toEqual(want);
    expect(again.groupState(G(1))).toMatchObject({ lastIndex: 7, lastTerm: 2 });
    await again.close();
  });

  it('keeps interleaved groups apart', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { segmentBytesMax: 8192, recordBytesMax: 1024 });
    const next = [1, 1, 1, 1];
    let x = 12345;
    for (let round = 0; round < 200; round++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      const g = 1 + (x % 3);
      await log.append([entry(g, next[g]!, 1)]);
      next[g]!++;
    }
    await log.append([entry(2, 3, 5)]); // overwrite inside group 2 only
    await log.close();
    const again = await openLog(dir, { segmentBytesMax: 8192, recordBytesMax: 1024 });
    expect(await readAll(again, 1)).toEqual(range(1, next[1]! - 1));
    expect(await readAll(again, 2)).toEqual([...range(1, 2), [3, 5]]);
    expect(await readAll(again, 3)).toEqual(range(1, next[3]! - 1));
    expect(again.segmentList().length).toBeGreaterThan(1);
    await again.close();
  });

  it('persists hard state and snapshot marks; a snapshot replaces the log', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append([
      ...entries(4, 1, 5),
      { kind: 'hardState', group: G(4), term: T(3), vote: nodeId(2), commit: I(4) },
    ]);
    await log.append([{ kind: 'snapshot', group: G(4), term: T(3), index: I(20) }, entry(4, 21, 3)]);
    await log.close();
    const again = await openLog(dir);
    expect(again.groupState(G(4))).toMatchObject({
      firstIndex: 21,
      lastIndex: 21,
      lastTerm: 3,
      hardState: { term: 3, vote: 2, commit: 4 },
      snapshot: { index: 20, term: 3 },
    });
    expect(again.term(G(4), I(20))).toBe(3);
    expect(await readAll(again, 4)).toEqual([[21, 3]]);
    await again.append([{ kind: 'dropGroup', group: G(4) }]);
    expect(again.groupState(G(4))).toBeUndefined();
    await again.close();
    const third = await openLog(dir);
    expect(third.groupIds()).toEqual([]);
    await third.close();
  });

  it('refuses records over the size limit with RECORD_TOO_LARGE and writes nothing', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { recordBytesMax: 1024, segmentBytesMax: 4096 });
    const err = await log.append([entry(1, 1, 1, 1024 - 32 + 1)]).catch((e) => e);
    expect(isTesseraError(err, 'RECORD_TOO_LARGE')).toBe(true);
    await log.append([entry(1, 1, 1, 1024 - 32)]); // exactly at the limit is fine
    expect(log.groupState(G(1))?.lastIndex).toBe(1);
    await log.close();
  });

  it('rejects a gap in a group log as a programmer error, placing nothing of that append', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append(entries(1, 1, 3));
    const err = await log.append([entry(1, 4), entry(1, 6)]).catch((e) => e);
    expect(err).toBeInstanceOf(AssertionError);
    await log.append([entry(1, 4)]);
    expect(await readAll(log, 1)).toEqual(range(1, 4));
    await log.close();
  });
});

/** An io that counts calls and can hold fsyncs. */
function countingIo(): { io: LogIo; syncs: () => number; writes: number[] } {
  let syncs = 0;
  const writes: number[] = [];
  const io: LogIo = {
    ...nodeIo,
    write: (fd, data, pos) => {
      writes.push(data.length);
      return nodeIo.write(fd, data, pos);
    },
    fdatasync: (fd) => {
      syncs++;
      return nodeIo.fdatasync(fd);
    },
  };
  return { io, syncs: () => syncs, writes };
}

describe('group commit', () => {
  it('appends that arrive together share one fdatasync', async () => {
    const dir = tempDir();
    const c = countingIo();
    const log = await openLog(dir, { io: c.io });
    const before = c.syncs();
    // Fewer records than one slice (limits.logSliceRecords): one batch.
    await Promise.all(Array.from({ length: 60 }, (_, g) => log.append([entry(g + 1, 1)])));
    expect(c.syncs() - before).toBe(1);
    expect(log.groupIds().length).toBe(60);
    await log.close();
  });

  it('splits a burst that finds the pipeline idle into two batches, the older half first', async () => {
    const dir = tempDir();
    const c = countingIo();
    const log = await openLog(dir, { io: c.io });
    const before = c.syncs();
    c.writes.length = 0;
    // 200 records = four slices of at most 64: the first batch takes two of them, the second the rest.
    await Promise.all(Array.from({ length: 200 }, (_, g) => log.append([entry(g + 1, 1)])));
    expect(c.syncs() - before).toBe(2);
    expect(c.writes).toEqual([128 * 72, 72 * 72]);
    expect(log.groupIds().length).toBe(200);
    await log.close();
  });

  /** An io whose fdatasyncs wait to be released one by one (and can be told to fail). */
  function heldIo(): { io: LogIo; calls: () => number; release: (err?: Error) => void } {
    const held: ((err?: Error) => void)[] = [];
    let calls = 0;
    const io: LogIo = {
      ...nodeIo,
      fdatasync: async (fd) => {
        calls++;
        const err = await new Promise<Error | undefined>((r) => held.push(r));
        if (err) throw err;
        return nodeIo.fdatasync(fd);
      },
    };
    return { io, calls: () => calls, release: (err) => held.shift()!(err) };
  }

  const turns = async (n = 20): Promise<void> => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  it('pipelines: a durable batch resolves after the next batch is written and its fdatasync started', async () => {
    const dir = tempDir();
    const h = heldIo();
    const log = await openLog(dir, { io: { ...h.io, fdatasync: nodeIo.fdatasync } }); // open unheld
    await log.close();
    const held = await openLog(dir, { io: h.io });
    const order: string[] = [];
    const a = held.append([entry(1, 1)]).then(() => order.push(`a after ${h.calls()} syncs`));
    await turns();
    expect(h.calls()).toBe(1);
    const b = held.append([entry(1, 2)]).then(() => order.push('b'));
    await turns();
    expect(h.calls()).toBe(1); // one fdatasync at a time
    h.release();
    await a;
    expect(order).toEqual(['a after 2 syncs']); // b's fdatasync was on its way before a resolved
    expect(held.groupState(G(1))?.lastIndex).toBe(1); // b is not durable yet: not visible
    h.release();
    await b;
    expect(order).toEqual(['a after 2 syncs', 'b']);
    expect(held.groupState(G(1))?.lastIndex).toBe(2);
    await held.close(); // nothing left to sync: no fdatasync to release
  });

  it('a failed fdatasync of the next batch fails it, and not the durable batch before it', async () => {
    const dir = tempDir();
    const h = heldIo();
    const log = await openLog(dir, { io: { ...h.io, fdatasync: nodeIo.fdatasync } });
    await log.close();
    const held = await openLog(dir, { io: h.io });
    const a = held.append([entry(1, 1)]);
    await turns();
    const b = held.append([entry(1, 2)]).catch((e: unknown) => e);
    await turns();
    h.release();
    await a;
    h.release(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
    const err = await b;
    expect(isTesseraError(err, 'INTERNAL')).toBe(true);
    expect(held.groupState(G(1))?.lastIndex).toBe(1);
    const reopened = await openLog(dir);
    expect(await readAll(reopened, 1)).toEqual(range(1, 1));
    await reopened.close();
  });

  it('resolves an append only after its fdatasync returns', async () => {
    const dir = tempDir();
    let release: () => void = () => {};
    let holding = false;
    const io: LogIo = {
      ...nodeIo,
      fdatasync: async (fd) => {
        if (holding) await new Promise<void>((r) => (release = r));
        return nodeIo.fdatasync(fd);
      },
    };
    const log = await openLog(dir, { io });
    holding = true;
    let done = false;
    const p = log.append([entry(1, 1)]).then(() => (done = true));
    const later = log.append([entry(1, 2)]); // arrives during the fsync: goes in the next batch
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect(log.groupState(G(1))).toBeUndefined(); // not durable, not visible
    holding = false;
    release();
    await p;
    await later;
    expect(done).toBe(true);
    expect(log.groupState(G(1))?.lastIndex).toBe(2);
    await log.close();
  });

  it('applies back-pressure: never more than the pending limit (plus one append) per write', async () => {
    const dir = tempDir();
    const c = countingIo();
    const log = await openLog(dir, { io: c.io, pendingBytesMax: 2000 });
    c.writes.length = 0;
    await Promise.all(Array.from({ length: 300 }, (_, i) => log.append([entry(1, i + 1)])));
    expect(Math.max(...c.writes)).toBeLessThanOrEqual(2000);
    expect(c.writes.length).toBeGreaterThan((300 * 72) / 2000 - 1);
    expect(await readAll(log, 1)).toEqual(range(1, 300));
    await log.close();
  });
});

describe('segments', () => {
  const opts = { segmentBytesMax: 4096, recordBytesMax: 1024 };

  it('rolls to a new segment at the size limit and deletes a segment once every group released it', async () => {
    const dir = tempDir();
    const log = await openLog(dir, opts);
    for (let i = 1; i <= 100; i++) await log.append([entry(1, i), entry(2, i)]);
    await log.append([{ kind: 'hardState', group: G(2), term: T(1), vote: nodeId(7), commit: I(90) }]);
    const segs = log.segmentList();
    expect(segs.length).toBeGreaterThan(3);
    for (const f of segmentFiles(dir)) expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(4096);
    await log.releaseUpTo(G(1), I(100));
    expect(log.segmentList()).toEqual(segs); // group 2 still needs them
    await log.releaseUpTo(G(2), I(60));
    const left = log.segmentList();
    expect(left.length).toBeLessThan(segs.length);
    expect(left[left.length - 1]).toBe(segs[segs.length - 1]);
    expect(segmentFiles(dir).length).toBe(left.length);
    expect(log.groupState(G(2))?.firstIndex).toBe(61);
    await log.close();

    const again = await openLog(dir, opts);
    const g1 = again.groupState(G(1))!;
    const g2 = again.groupState(G(2))!;
    expect(g1.lastIndex).toBe(100);
    expect(g2).toMatchObject({ lastIndex: 100, hardState: { term: 1, vote: 7, commit: 90 } });
    expect(g2.firstIndex).toBeLessThanOrEqual(61);
    expect((await readAll(again, 2)).at(-1)).toEqual([100, 1]);
    await again.append([entry(1, 101), entry(2, 101)]);
    await again.close();
  });

  it('recovery reads a segment in windows: any window size gives the state and entries of one whole read', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { segmentBytesMax: 1 << 20, recordBytesMax: 1 << 16 });
    // Records from 33 bytes to larger than most windows, with overwrites and a hard state among them.
    const sizes = [0, 1, 17, 200, 5000, 40_000, 3, 999];
    const sizeOf = (i: number): number => sizes[i % sizes.length]!;
    const want: { index: number; size: number }[] = [];
    for (let i = 1; i <= 120; i++) {
      await log.append([{ ...entry(1, i, 1, sizeOf(i)) }]);
      want.push({ index: i, size: sizeOf(i) });
      if (i % 40 === 0) {
        await log.append([{ kind: 'hardState', group: G(1), term: T(1), vote: nodeId(3), commit: I(i - 5) }]);
        await log.append([entry(1, i - 2, 2, 11), entry(1, i - 1, 2, 11), entry(1, i, 2, 11)]);
        want.splice(i - 3, 3, ...[i - 2, i - 1, i].map((index) => ({ index, size: 11 })));
      }
    }
    await log.close();
    for (const scanWindowBytes of [16, 100, 4095, 65_536, 1 << 22]) {
      const again = await openLog(dir, {
        segmentBytesMax: 1 << 20,
        recordBytesMax: 1 << 16,
        scanWindowBytes,
      });
      expect(again.recovery.cut, `window ${scanWindowBytes}`).toBeUndefined();
      expect(again.groupState(G(1))).toMatchObject({
        firstIndex: 1,
        lastIndex: 120,
        hardState: { commit: 115 },
      });
      const got = await again.readEntries(G(1), I(1), I(120), 1 << 30);
      expect(got.map((e) => [e.index, e.payload.length])).toEqual(want.map((w) => [w.index, w.size]));
      const bad = got.filter(
        (e) => Buffer.compare(e.payload, payloadFor(1, e.index, e.term, e.payload.length)) !== 0,
      );
      expect(bad.map((e) => e.index)).toEqual([]);
      await again.close();
    }
  });

  it('keeps the active segment even when everything is released', async () => {
    const dir = tempDir();
    const log = await openLog(dir, opts);
    for (let i = 1; i <= 100; i++) await log.append([entry(1, i)]);
    await log.releaseUpTo(G(1), I(100));
    expect(log.segmentList().length).toBe(1);
    await log.close();
    const again = await openLog(dir, opts);
    expect(again.groupState(G(1))).toMatchObject({ lastIndex: 100, lastTerm: 1 });
    await again.append([entry(1, 101)]);
    await again.close();
  });
});

describe('bulk reads (readPayloads)', () => {
  it('gives the same payloads as readEntries, across segments and interleaved groups', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { segmentBytesMax: 4096, recordBytesMax: 1024 });
    for (let i = 1; i <= 120; i++) await log.append([entry(1, i, 1, 20 + (i % 50)), entry(2, i, 1)]);
    const runs = await log.readPayloads(G(1), I(3), I(110), 1 << 30);
    expect(runs.length).toBeGreaterThan(1); // one run per segment span
    const got: [number, Buffer][] = [];
    for (const r of runs) {
      r.starts.forEach((s, k) => {
        got.push([r.first + k, r.buf.subarray(s, r.ends[k])]);
      });
    }
    const want = await log.readEntries(G(1), I(3), I(110), 1 << 30);
    expect(got.map(([i]) => i)).toEqual(want.map((e) => e.index));
    got.forEach(([i, p], k) => {
      expect(Buffer.compare(p, want[k]!.payload)).toBe(0);
      expect(Buffer.compare(p, Buffer.from(payloadFor(1, i, 1, 20 + (i % 50))))).toBe(0);
    });
    // The byte budget: at least one entry, then stop before exceeding it.
    const one = await log.readPayloads(G(1), I(5), I(100), 1);
    expect(one.reduce((n, r) => n + r.starts.length, 0)).toBe(1);
    await log.close();
  });

  it('an entry whose bytes changed on disk after open is refused on read (CORRUPTION), by both reads', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append(entries(1, 1, 30));
    // Flip one payload byte of entry 17 behind the log's back.
    const file = path.join(dir, segmentFiles(dir)[0]!);
    const bytes = fs.readFileSync(file);
    const marker = Buffer.from(payloadFor(1, 17, 1));
    const at = bytes.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.of(marker[3]! ^ 0x10), 0, 1, at + 3);
    fs.closeSync(fd);
    for (const read of [
      () => log.readEntries(G(1), I(10), I(20)),
      () => log.readPayloads(G(1), I(10), I(20), 1 << 20),
    ]) {
      const err = await read().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTesseraError(err, 'CORRUPTION')).toBe(true);
    }
    // Entries before it still read.
    expect((await log.readEntries(G(1), I(1), I(16))).length).toBe(16);
    await log.close();
  });
});
