/** Entries kept from recovery's scan for the reads right after the open (LogOptions.keep). */
import { describe, expect, it } from 'vitest';
import { type LogIo, type LogOptions, nodeIo, openLog } from '../../src/log/index.js';
import { entries, entry, G, I, payloadFor, readAll, readAllPayloads, tempDir } from './helpers.js';

/** nodeIo with a count of the reads made once `counting` is set (after the open). */
function countingIo(): { io: LogIo; reads: () => number; start: () => void } {
  let counting = false;
  let reads = 0;
  const io: LogIo = {
    ...nodeIo,
    read: (fd, length, position) => {
      if (counting) reads++;
      return nodeIo.read(fd, length, position);
    },
  };
  return { io, reads: () => reads, start: () => (counting = true) };
}

async function openCounting(dir: string, opts: LogOptions) {
  const c = countingIo();
  const log = await openLog(dir, { ...opts, io: c.io });
  c.start();
  return { log, reads: c.reads };
}

const range = (a: number, b: number, t = 1): [number, number][] =>
  Array.from({ length: b - a + 1 }, (_, k) => [a + k, t]);

describe('entries kept from the scan', () => {
  it('are read without touching the segments, only from the index asked, once', async () => {
    const dir = tempDir();
    const log = await openLog(dir, { segmentBytesMax: 4096, recordBytesMax: 1024 });
    for (let i = 1; i <= 150; i++) await log.append([entry(1, i), entry(2, i)]);
    await log.close();

    const { log: again, reads } = await openCounting(dir, {
      segmentBytesMax: 4096,
      recordBytesMax: 1024,
      keep: { from: (g) => (g === 1 ? 40 : undefined), bytesMax: 1 << 30 },
    });
    // Group 1 from 40: from memory, in one run per scan buffer (the segments here are small).
    const runs = await again.readPayloads(G(1), I(40), I(150), 1 << 30);
    expect(runs.length).toBeGreaterThan(1);
    let next = 40;
    for (const r of runs) {
      expect(r.first).toBe(next);
      r.starts.forEach((s, k) => {
        expect(Buffer.compare(r.buf.subarray(s, r.ends[k]), Buffer.from(payloadFor(1, next + k, 1)))).toBe(0);
      });
      next += r.starts.length;
    }
    expect(next).toBe(151);
    expect(reads()).toBe(0);
    // Served entries are dropped: the same read now goes to the segments.
    expect((await again.readPayloads(G(1), I(40), I(150), 1 << 30))[0]!.first).toBe(40);
    expect(reads()).toBeGreaterThan(0);
    expect(await readAllPayloads(again, 1)).toEqual(range(1, 150));
    // Group 2 was not kept at all.
    expect(await readAllPayloads(again, 2)).toEqual(range(1, 150));
    await again.close();
  });

  it('hold at most their byte budget of scan buffers; the rest is read from the segments', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append(entries(1, 1, 100));
    await log.close();
    // 100 entries of ~72 bytes in 512-byte windows: a 1,200-byte budget keeps two windows.
    const { log: again, reads } = await openCounting(dir, {
      scanWindowBytes: 512,
      keep: { from: () => 1, bytesMax: 1200 },
    });
    const first = await again.readPayloads(G(1), I(1), I(100), 1 << 30);
    const served = first.reduce((n, r) => n + r.starts.length, 0);
    expect(served).toBeGreaterThan(5);
    expect(served).toBeLessThan(30);
    expect(reads()).toBe(0);
    const all = await readAllPayloads(again, 1); // from index 1 again: all from the segments
    expect(all).toEqual(range(1, 100));
    expect(reads()).toBeGreaterThan(0);
    await again.close();
  });

  it('follow a later record for the same index (Raft overwrite), in the scan and after the open', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    await log.append(entries(1, 1, 10, 1));
    await log.append(entries(1, 6, 8, 2)); // replaces 6..10 of term 1
    await log.close();
    const want: [number, number][] = [...range(1, 5, 1), ...range(6, 8, 2)];
    for (const from of [1, 7]) {
      const { log: again, reads } = await openCounting(dir, {
        keep: { from: () => from, bytesMax: 1 << 30 },
      });
      const runs = await again.readPayloads(G(1), I(from), I(8), 1 << 30);
      expect(runs.map((r) => [r.first, r.starts.length])).toEqual([[from, 9 - from]]);
      runs[0]!.starts.forEach((s, k) => {
        const i = from + k;
        const got = runs[0]!.buf.subarray(s, runs[0]!.ends[k]);
        expect(Buffer.compare(got, Buffer.from(payloadFor(1, i, i >= 6 ? 2 : 1)))).toBe(0);
      });
      expect(reads()).toBe(0);
      expect(await readAllPayloads(again, 1)).toEqual(want);
      await again.close();
    }
    // After the open: an append replaces kept entries 4.. before they are read; the bulk read
    // serves 1..3 from memory and the new 4..5 from the segment.
    const { log: again, reads } = await openCounting(dir, { keep: { from: () => 1, bytesMax: 1 << 30 } });
    await again.append(entries(1, 4, 5, 3));
    expect(await readAllPayloads(again, 1)).toEqual([...range(1, 3, 1), ...range(4, 5, 3)]);
    expect(reads()).toBe(1);
    expect(await readAll(again, 1)).toEqual([...range(1, 3, 1), ...range(4, 5, 3)]);
    await again.close();
  });
});
