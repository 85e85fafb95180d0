import fs from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/lib/bytes.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { type LogIo, nodeIo, openLog } from '../../src/log/index.js';
import { entries, entry, G, readAll, readAllPayloads, segmentFiles, tempDir } from './helpers.js';

const range = (a: number, b: number): [number, number][] =>
  Array.from({ length: b - a + 1 }, (_, k) => [a + k, 1]);

/** Writes `n` entries of group 1 (one append each) and returns the segment file and the last record's span. */
async function writeLog(dir: string, n: number): Promise<{ file: string; bytes: Buffer; lastStart: number }> {
  const log = await openLog(dir);
  await log.append(entries(1, 1, n - 1));
  const file = path.join(dir, segmentFiles(dir)[0]!);
  const lastStart = fs.statSync(file).size;
  await log.append([entry(1, n)]);
  await log.close();
  return { file, bytes: fs.readFileSync(file), lastStart };
}

/** Recovery's scan window for the tests below: the default, or tiny (records straddle windows). */
let scanWindowBytes: number | undefined;

async function recovered(dir: string): Promise<{ got: [number, number][]; cut: unknown; size: number }> {
  // The scan keeps every entry it takes (LogOptions.keep): the bulk reads get them from memory.
  const keep = { from: () => 1, bytesMax: 1 << 30 };
  const log = await openLog(dir, scanWindowBytes === undefined ? { keep } : { scanWindowBytes, keep });
  const kept = await readAllPayloads(log, 1);
  const got = await readAll(log, 1);
  expect(kept).toEqual(got);
  const cut = log.recovery.cut;
  // The log must take new appends right after the valid prefix.
  await log.append([entry(1, got.length + 1)]);
  expect(await readAll(log, 1)).toEqual(range(1, got.length + 1));
  await log.close();
  return { got, cut, size: 0 };
}

describe.each([
  ['whole segments', undefined],
  ['16-byte windows', 16],
  ['61-byte windows', 61],
  ['200-byte windows', 200],
])('recovery from torn and corrupt tails, scanning %s', (_, window) => {
  beforeEach(() => {
    scanWindowBytes = window;
  });
  it('cut the last record at every byte offset: recovery returns exactly the valid prefix', async () => {
    const dir = tempDir();
    const { file, bytes, lastStart } = await writeLog(dir, 10);
    for (let cut = lastStart; cut < bytes.length; cut++) {
      fs.writeFileSync(file, bytes.subarray(0, cut));
      const r = await recovered(dir);
      expect(r.got, `cut at ${cut}`).toEqual(range(1, 9));
      if (cut > lastStart) expect(r.cut).toMatchObject({ offset: lastStart });
    }
    fs.writeFileSync(file, bytes);
    expect((await recovered(dir)).got).toEqual(range(1, 10));
  });

  it('flip any bit of the last record: recovery returns exactly the valid prefix', async () => {
    const dir = tempDir();
    const { file, bytes, lastStart } = await writeLog(dir, 10);
    for (let at = lastStart; at < bytes.length; at++) {
      for (const bit of at < lastStart + 32 ? [0, 1, 2, 3, 4, 5, 6, 7] : [at % 8]) {
        const bad = Buffer.from(bytes);
        bad[at]! ^= 1 << bit;
        fs.writeFileSync(file, bad);
        const r = await recovered(dir);
        expect(r.got, `bit ${bit} of byte ${at}`).toEqual(range(1, 9));
        expect(r.cut).toMatchObject({ offset: lastStart });
      }
    }
  });

  it('garbage or zeros after the last record (preallocated or torn pages) are cut', async () => {
    const dir = tempDir();
    const { file, bytes } = await writeLog(dir, 10);
    for (const tail of [
      Buffer.alloc(4096),
      Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)),
    ]) {
      fs.writeFileSync(file, Buffer.concat([bytes, tail]));
      const r = await recovered(dir);
      expect(r.got).toEqual(range(1, 10));
    }
  });

  it('drop the last fsync (truncate to the last fsynced length): exactly the fsynced appends survive', async () => {
    const dir = tempDir();
    const synced = new Map<number, number>();
    const written = new Map<number, number>();
    let dropSyncs = false;
    const io: LogIo = {
      ...nodeIo,
      write: async (fd, data, pos) => {
        await nodeIo.write(fd, data, pos);
        written.set(fd, Math.max(written.get(fd) ?? 0, pos + data.length));
      },
      fdatasync: async (fd) => {
        if (dropSyncs) return; // the fsync "returns" but nothing reached the disk
        await nodeIo.fdatasync(fd);
        synced.set(fd, written.get(fd) ?? 0);
      },
    };
    const log = await openLog(dir, { io });
    for (let i = 1; i <= 20; i++) await log.append([entry(1, i)]);
    const fd = [...synced.keys()].at(-1)!;
    const syncedLen = synced.get(fd)!;
    dropSyncs = true;
    for (let i = 21; i <= 25; i++) await log.append([entry(1, i)]);
    // Crash: the page cache is lost beyond the last real fsync. Simulate with a torn half-record too.
    const file = path.join(dir, segmentFiles(dir)[0]!);
    const all = fs.readFileSync(file);
    fs.writeFileSync(file, all.subarray(0, syncedLen + 50));
    await log.close().catch(() => {});
    expect((await recovered(dir)).got).toEqual(range(1, 20));
  });

  it('a corrupt record in an older segment cuts there and drops the later segments', async () => {
    const dir = tempDir();
    const opts = {
      segmentBytesMax: 4096,
      recordBytesMax: 1024,
      ...(window ? { scanWindowBytes: window } : {}),
    };
    const log = await openLog(dir, opts);
    for (let i = 1; i <= 200; i++) await log.append([entry(1, i)]);
    await log.close();
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    const second = path.join(dir, files[1]!);
    const b = fs.readFileSync(second);
    b[b.length - 10]! ^= 0xff;
    fs.writeFileSync(second, b);
    const again = await openLog(dir, opts);
    expect(again.recovery.cut?.segment).toBe(Number.parseInt(files[1]!, 16));
    const got = await readAll(again, 1);
    expect(got).toEqual(range(1, got.length));
    expect(got.length).toBeGreaterThan(50);
    expect(got.length).toBeLessThan(120);
    expect(segmentFiles(dir)).toEqual(files.slice(0, 2));
    await again.close();
  });

  it('a record with a valid checksum but an unknown type refuses to open (CORRUPTION), it is not cut', async () => {
    const dir = tempDir();
    const { file, bytes, lastStart } = await writeLog(dir, 3);
    const bad = Buffer.from(bytes);
    bad[lastStart + 8] = 99;
    bad.writeUInt32BE(crc32(bad.subarray(lastStart + 4)), lastStart);
    fs.writeFileSync(file, bad);
    const err = await openLog(dir, window ? { scanWindowBytes: window } : {}).catch((e) => e);
    expect(isTesseraError(err, 'CORRUPTION')).toBe(true);
    expect(fs.readFileSync(file).length).toBe(bytes.length);
  });
});

describe('disk full', () => {
  function fullDiskIo(): { io: LogIo; full: { write: boolean; sync: boolean; partial: boolean } } {
    const full = { write: false, sync: false, partial: false };
    const enospc = (): Error =>
      Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const io: LogIo = {
      ...nodeIo,
      write: async (fd, data, pos) => {
        if (full.partial) await nodeIo.write(fd, data.subarray(0, data.length >> 1), pos);
        if (full.write) throw enospc();
        return nodeIo.write(fd, data, pos);
      },
      fdatasync: async (fd) => {
        if (full.sync) throw enospc();
        return nodeIo.fdatasync(fd);
      },
    };
    return { io, full };
  }

  for (const mode of ['write', 'partial', 'sync'] as const) {
    it(`ENOSPC on ${mode} fails the waiting appends with DISK_FULL; the log stays consistent and recovers`, async () => {
      const dir = tempDir();
      const { io, full } = fullDiskIo();
      const log = await openLog(dir, { io });
      await log.append(entries(1, 1, 5));
      if (mode === 'write') full.write = true;
      if (mode === 'partial') full.write = full.partial = true;
      if (mode === 'sync') full.sync = true;
      const results = await Promise.allSettled([log.append([entry(1, 6)]), log.append([entry(1, 7)])]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect(isTesseraError((r as PromiseRejectedResult).reason, 'DISK_FULL')).toBe(true);
      }
      expect(log.groupState(G(1))?.lastIndex).toBe(5);
      const file = path.join(dir, segmentFiles(dir)[0]!);
      const sizeAfterFailure = fs.statSync(file).size;
      full.write = full.partial = full.sync = false;
      await log.append([entry(1, 6, 1)]); // space is back: the same index can be written again
      expect(await readAll(log, 1)).toEqual(range(1, 6));
      expect(fs.statSync(file).size).toBeGreaterThan(sizeAfterFailure);
      await log.close();
      const again = await openLog(dir);
      expect(again.recovery.cut).toBeUndefined(); // the failed bytes were cut at once
      expect(await readAll(again, 1)).toEqual(range(1, 6));
      await again.close();
    });
  }
});
