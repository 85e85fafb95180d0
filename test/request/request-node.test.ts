/**
 * `tessera request` as a real child process against the fake MM and fake storage nodes: it
 * registers (role request), follows the catalog, registers the admin token from --admin-token,
 * serves the HTTP API through the TypeScript client, and stops cleanly on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { newToken } from '../../src/request/auth.js';
import { createClusterSecret } from '../../src/transport/secret.js';
import { freePort } from '../support/net.js';
import { FakeCluster } from './fake-cluster.js';

const root = path.resolve(import.meta.dirname, '../..');

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) resolve(p.exitCode);
    else p.once('exit', (code) => resolve(code));
  });
}

describe('tessera request (child process)', () => {
  let dir = '';
  let c: FakeCluster | undefined;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers, serves the API with the admin token, and stops on SIGTERM', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tessera-rm-'));
    const secret = createClusterSecret(path.join(dir, 'cluster.secret'));
    c = new FakeCluster(secret);
    await c.start([16]);
    c.mm.group(1, [16], 16);
    c.node(16).leaderOf.add(1);
    const token = newToken('admin', null).secret;
    writeFileSync(path.join(dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
    const port = await freePort();
    const mm = c.mmAddress;
    let log = '';
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'request',
        '--listen',
        `127.0.0.1:${port}`,
        '--mm',
        `1=${mm.host}:${mm.port}`,
        '--dir',
        path.join(dir, 'rm'),
        '--admin-token',
        path.join(dir, 'admin.token'),
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const client = new TesseraClient({ url: `http://127.0.0.1:${port}`, token, deadlineMs: 20_000 });
    try {
      // The client retries 503 (not ready) and refused connections until the deadline.
      await client.createTable('t', { engine: 'lsm' });
      const key = new Uint8Array([0x00, 0xff, 0x2f, 0x25]);
      const { seq } = await client.put('t', key, 'hello');
      const got = await client.get('t', key);
      expect(got?.seq).toBe(seq);
      expect(Buffer.from(got!.value).toString()).toBe('hello');
      expect((await client.health()).status).toBe('ok');
      // Registered once as a request node; the admin token is in the catalog, hashed.
      expect(c.mm.registered.size).toBe(1);
      expect(c.mm.tokens.map((t) => t.role)).toEqual(['admin']);
      const nodeJson = JSON.parse(readFileSync(path.join(dir, 'rm', 'node.json'), 'utf8'));
      expect(nodeJson.node).toBe(30);
    } finally {
      client.close();
    }
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(log).toContain('request manager stopping');
  }, 40_000);
});
