/**
 * A storage node or request manager started before any metadata manager answers keeps waiting for
 * one (it used to exit silently with status 0: nothing held the event loop while it waited, since
 * the transport's timers are unref'd and nothing listens yet), and still stops on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newToken } from '../../src/request/auth.js';
import { createClusterSecret } from '../../src/transport/secret.js';
import { exited, root } from '../e2e/dev-cluster.js';
import { freePort } from '../support/net.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('waiting for the metadata manager at start', () => {
  let dir = '';
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    child = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  for (const role of ['storage', 'request'] as const) {
    it(`${role}: stays up while no metadata manager answers, stops on SIGTERM`, async () => {
      dir = mkdtempSync(path.join(tmpdir(), `tessera-wait-${role}-`));
      const nodeDir = path.join(dir, role);
      createClusterSecret(path.join(dir, 'cluster.secret'));
      const token = path.join(dir, 'admin.token');
      writeFileSync(token, `${newToken('admin', null).secret}\n`, { mode: 0o600 });
      const [listen, nobody] = [await freePort(), await freePort()];
      const args = ['--listen', `127.0.0.1:${listen}`, '--mm', `1=127.0.0.1:${nobody}`, '--dir', nodeDir];
      if (role === 'request') args.push('--admin-token', token);
      else args.push('--secret', path.join(dir, 'cluster.secret'));
      let out = '';
      child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', role, ...args], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      await sleep(5_000);
      expect(child.exitCode, `${role} exited while waiting for the MM:\n${out}`).toBeNull();
      expect(child.signalCode).toBeNull();
      child.kill('SIGTERM');
      const code = await exited(child);
      expect(code === 0 || child.signalCode === 'SIGTERM').toBe(true);
    }, 30_000);
  }
});
