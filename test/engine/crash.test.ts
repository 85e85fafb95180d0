/**
 * kill -9 at random moments while an engine applies batches: after reopening, the applied position
 * matches the data exactly (atomicity) and every batch whose applyBatch had resolved is there
 * (without fsync: a process crash keeps what the OS already has).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { keyspaceId, openEngine } from '../../src/engine/index.js';
import { groupId } from '../../src/lib/ids.js';
import { Prng } from '../../src/lib/prng.js';
import { dec, enc, Scratch } from './helpers.js';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const rounds = 4;

function runAndKill(kind: string, dir: string, afterMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p: ChildProcess = spawn(process.execPath, ['--import', 'tsx', child, kind, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = 0;
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) acked = Math.max(acked, Number(l));
      // Start the clock once the child is writing, so each round kills it mid-stream.
      timer ??= setTimeout(() => p.kill('SIGKILL'), afterMs);
    });
    p.on('error', reject);
    p.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`child exited without being killed (${_code})`));
    });
  });
}

for (const kind of ['btree', 'lsm'] as const) {
  describe(`crash atomicity (${kind})`, () => {
    const scratch = new Scratch();
    afterAll(() => scratch.cleanup());

    it(`survives ${rounds} kill -9 rounds with data and applied position in step`, async () => {
      const dir = await scratch.dir();
      const prng = new Prng(kind === 'btree' ? 11 : 12);
      let lastAcked = 0;
      for (let round = 0; round < rounds; round++) {
        const acked = await runAndKill(kind, dir, prng.int(20, 250));
        const e = await openEngine(kind, dir);
        try {
          const applied = (await e.getApplied(groupId(1))).index;
          const last = await e.get(keyspaceId(1), enc('last'));
          expect(applied).toBeGreaterThanOrEqual(Math.max(acked, lastAcked));
          expect(Number.parseInt(dec(last?.value ?? enc('0')), 10)).toBe(applied);
          // Every key of the last batch carries its value.
          const keys = Array.from({ length: 100 }, (_, j) => enc(`k${(applied * 100 + j) % 5000}`));
          const recs = await e.getMany(keys.map((key) => ({ keyspace: keyspaceId(1), key })));
          expect(recs.every((r) => Number.parseInt(dec(r?.value ?? enc('0')), 10) === applied)).toBe(true);
          lastAcked = applied;
        } finally {
          await e.close();
        }
      }
      expect(lastAcked).toBeGreaterThan(0);
    });
  });
}
