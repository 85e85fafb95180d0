/**
 * kill -9 at random moments while the local store takes writes: after each crash, every
 * acknowledged write is there with its seq (or was overwritten by a newer, unacknowledged write),
 * every acknowledged delete holds, nothing is corrupt, and seqs keep increasing across restarts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Prng } from '../../src/lib/prng.js';
import { seqNodeId, seqToHex } from '../../src/sequencer/index.js';
import { LocalStore } from '../../src/storage/local-store.js';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const rounds = 20;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Acked {
  op: 'P' | 'D';
  seq: string;
  value?: string;
}

/** Runs the child until `afterMs` after it is ready, then SIGKILL; returns its acknowledged lines. */
function runAndKill(dir: string, round: number, afterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', child, dir, String(round), String(round * 7919)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lines: string[] = [];
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) {
        if (l.startsWith('ready')) timer ??= setTimeout(() => p.kill('SIGKILL'), afterMs);
        else lines.push(l);
      }
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(lines);
      else reject(new Error(`child exited by itself (${code})`));
    });
  });
}

describe('local store crash recovery', () => {
  it(`every acknowledged write survives ${rounds} kill -9 rounds`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-crash-'));
    dirs.push(dir);
    const prng = new Prng(2026);
    const model = new Map<string, Acked>(); // "table/key" -> highest acknowledged op
    let prevMaxSeq = '';
    let totalAcked = 0;
    for (let round = 1; round <= rounds; round++) {
      const lines = await runAndKill(dir, round, prng.int(20, 200));
      let roundMin = 'g';
      let roundMax = '';
      for (const l of lines) {
        const [op, table, key, seq, value] = l.split(' ') as [Acked['op'], string, string, string, string?];
        expect(op === 'P' || op === 'D', l).toBe(true);
        const id = `${table}/${key}`;
        const cur = model.get(id);
        if (!cur || cur.seq < seq) model.set(id, { op, seq, ...(value ? { value } : {}) });
        if (seq < roundMin) roundMin = seq;
        if (seq > roundMax) roundMax = seq;
      }
      totalAcked += lines.length;
      if (lines.length > 0) {
        expect(roundMin > prevMaxSeq, `round ${round}: seqs went back after the restart`).toBe(true);
        prevMaxSeq = roundMax;
      }

      const store = await LocalStore.open(dir);
      try {
        for (const [id, want] of model) {
          const [table, key] = id.split('/') as [string, string];
          const got = await store.getRecord(table, new TextEncoder().encode(key));
          // A newer write may have landed without its acknowledgement (killed in flight); an older never.
          expect(got, `${id} lost (round ${round})`).toBeDefined();
          const gotSeq = seqToHex(got!.seq);
          expect(gotSeq >= want.seq, `${id} older than acknowledged (round ${round})`).toBe(true);
          if (gotSeq === want.seq) {
            expect(got!.tombstone).toBe(want.op === 'D');
            if (want.op === 'P')
              expect(new TextDecoder().decode(got!.value).replace(/\.+$/, '')).toBe(want.value);
          }
        }
        for (const table of ['b', 'l']) {
          for (const row of await store.scan(table, { limit: 10_000 })) {
            expect(new TextDecoder().decode(row.value)).toMatch(/^r\d+:\d+\.*$/);
            expect(seqNodeId(row.seq)).toBe(1);
          }
        }
      } finally {
        await store.close();
      }
    }
    expect(totalAcked).toBeGreaterThan(rounds * 10);
  }, 150_000); // ~30 s normally (20 child start-ups); the margin is for a loaded machine
});
