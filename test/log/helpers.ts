import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { type GroupId, groupId, type LogIndex, logIndex, type Term, term } from '../../src/lib/ids.js';
import type { Log, LogRecord } from '../../src/log/index.js';

const dirs: string[] = [];

/** A fresh temp dir, removed after the test. */
export function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-log-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

export const G = (n: number): GroupId => groupId(n);
export const I = (n: number): LogIndex => logIndex(n);
export const T = (n: number): Term => term(n);

export function payloadFor(group: number, index: number, t: number, size = 40): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (group * 31 + index * 7 + t * 13 + i) & 0xff;
  return b;
}

export function entry(group: number, index: number, t = 1, size = 40): LogRecord {
  return {
    kind: 'entry',
    group: G(group),
    term: T(t),
    index: I(index),
    payload: payloadFor(group, index, t, size),
  };
}

export function entries(group: number, from: number, to: number, t = 1, size = 40): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = from; i <= to; i++) out.push(entry(group, i, t, size));
  return out;
}

/** All live entries of a group as [index, term] pairs, checking each payload. */
export async function readAll(log: Log, group: number, size = 40): Promise<[number, number][]> {
  const st = log.groupState(G(group));
  if (!st || st.lastIndex < st.firstIndex) return [];
  const got = await log.readEntries(G(group), st.firstIndex, st.lastIndex, 1 << 30);
  return got.map((e) => {
    const want = payloadFor(group, e.index, e.term, size);
    if (Buffer.compare(Buffer.from(want), e.payload) !== 0) throw new Error(`payload mismatch at ${e.index}`);
    return [e.index, e.term];
  });
}

export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort();
}

/**
 * readAll through the bulk path (readPayloads, as replay reads, from the entries an open kept
 * when it was asked to): a loop, since a read may give fewer entries than asked.
 */
export async function readAllPayloads(log: Log, group: number, size = 40): Promise<[number, number][]> {
  const st = log.groupState(G(group));
  if (!st || st.lastIndex < st.firstIndex) return [];
  const out: [number, number][] = [];
  for (let next = st.firstIndex as number; next <= st.lastIndex; ) {
    const runs = await log.readPayloads(G(group), I(next), st.lastIndex, 1 << 30);
    for (const r of runs) {
      if (r.first !== next) throw new Error(`run starts at ${r.first}, want ${next}`);
      r.starts.forEach((s, k) => {
        const t = log.term(G(group), I(next + k))!;
        const want = payloadFor(group, next + k, t, size);
        if (Buffer.compare(Buffer.from(want), r.buf.subarray(s, r.ends[k])) !== 0) {
          throw new Error(`payload mismatch at ${next + k}`);
        }
        out.push([next + k, t]);
      });
      next += r.starts.length;
    }
  }
  return out;
}
