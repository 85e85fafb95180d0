/**
 * dieOnUncaught (src/lib/fatal.ts): an uncaught error in a server process ends it at once, even
 * with an lmdb-js write transaction open. Without it, the same child (measured: 3 runs of each
 * case) exited with code 1 in 3 of 6 runs, hung in Node's exit path in 1 (a small batch: the
 * write thread waits for a transaction callback the dying JS thread never runs) and crashed with
 * SIGSEGV in 2 (a large batch).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fatal-child.ts');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs the child; resolves with how it ended, or 'running' if it is still alive after `waitMs`. */
function run(
  mode: string,
  waitMs: number,
  writes: number,
  delayMs: number,
): Promise<{ end: string; stderr: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-fatal-'));
  dirs.push(dir);
  return new Promise((resolve) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', child, dir, mode, String(writes), String(delayMs)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      resolve({ end: 'running', stderr });
    }, waitMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ end: signal ?? `code ${code}`, stderr });
    });
  });
}

describe('dieOnUncaught', () => {
  for (const [writes, delayMs, what] of [
    [3, 1, 'a small batch (a transaction callback pending)'],
    [5000, 2, 'a large batch (on the write thread)'],
  ] as const) {
    it(`kills the process at once after logging the error as a JSON line: ${what}`, async () => {
      const r = await run('handler', 15_000, writes, delayMs);
      expect(r.end).toBe('SIGKILL');
      const line = r.stderr.split('\n').find((l) => l.includes('"fatal: uncaught exception"'));
      expect(line).toBeDefined();
      expect(JSON.parse(line as string)).toMatchObject({ level: 'error', component: 'fatal-test' });
      expect(line).toContain('boom while the batch is being written');
    });
  }
});
