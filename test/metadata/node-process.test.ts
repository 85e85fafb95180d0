/**
 * `tessera metadata` as real processes: 3 MM nodes started through the CLI dispatch, a leader
 * killed with SIGKILL, a new leader with the same catalog, the killed node restarted from its
 * directory, clean shutdown on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type NodeId, nodeId } from '../../src/lib/ids.js';
import { MmClient } from '../../src/metadata/client.js';
import { provisionalNodeId } from '../../src/metadata/rpc.js';
import {
  createClusterSecret,
  loadClusterSecret,
  type PeerAddress,
  Transport,
} from '../../src/transport/index.js';
import { freePort, waitFor } from './mm-harness.js';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tessera-mmproc-'));
const children = new Map<NodeId, ChildProcess>();
const transports: Transport[] = [];
const quiet = { info: () => {}, warn: () => {} };
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

afterAll(async () => {
  for (const t of transports) await t.close();
  for (const p of children.values()) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function startMm(id: NodeId, members: Map<NodeId, PeerAddress>): Promise<void> {
  const peers = [...members].map(([i, a]) => `${i}=${a.host}:${a.port}`).join(',');
  const a = members.get(id)!;
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      mainTs,
      'metadata',
      '--id',
      String(id),
      '--dir',
      join(root, `mm${id}`),
      '--listen',
      `${a.host}:${a.port}`,
      '--peers',
      peers,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TESSERA_LOG_LEVEL: 'error' } },
  );
  children.set(id, p);
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"ready":true')) resolve();
    });
    p.once('exit', (code) => reject(new Error(`mm ${id} exited with ${code}`)));
  });
}

function exit(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) resolve(p.exitCode);
    else p.once('exit', (code) => resolve(code));
  });
}

describe('tessera metadata processes', () => {
  it('elect a leader; after kill -9 of the leader a new one serves the same catalog; restart rejoins', async () => {
    createClusterSecret(join(root, 'cluster.secret'));
    const members = new Map<NodeId, PeerAddress>();
    for (let i = 1; i <= 3; i++) members.set(nodeId(i), { host: '127.0.0.1', port: await freePort() });
    for (const id of members.keys()) mkdirSync(join(root, `mm${id}`));
    await Promise.all([...members.keys()].map((id) => startMm(id, members)));

    const secret = loadClusterSecret(join(root, 'cluster.secret'));
    const prov = await Transport.start({
      self: { nodeId: provisionalNodeId, role: 'request' },
      secret,
      log: quiet,
    });
    transports.push(prov);
    const reg = await new MmClient({ transport: prov, members }).call('register', {
      role: 'request',
      nodeKey: randomBytes(8).toString('hex'),
      address: '127.0.0.1:1',
      pid: process.pid,
      capacity: { replicasMax: 0, diskBytes: 0 },
    });
    expect(reg.node).toBeGreaterThanOrEqual(16);
    const t = await Transport.start({ self: { nodeId: reg.node, role: 'request' }, secret, log: quiet });
    transports.push(t);
    const mm = new MmClient({ transport: t, members, deadlineMs: 15_000 });
    await mm.call('tokens', { op: 'create', hash: sha('before'), role: 'admin', table: null });
    const view = await mm.call('cluster', {});
    const leader = view.metadata.leader;
    expect(members.has(leader)).toBe(true);

    children.get(leader)!.kill('SIGKILL');
    await exit(children.get(leader)!);
    const after = await waitFor(
      'a new MM leader',
      async () => {
        const v = await mm.call('cluster', {}).catch(() => undefined);
        return v !== undefined && v.metadata.leader !== leader && v.metadata.leader !== 0 ? v : undefined;
      },
      20_000,
    );
    expect(after.metadata.leader).not.toBe(leader);
    const verify = await mm.call('tokens', { op: 'verify', hash: sha('before') });
    expect(verify.token?.role).toBe('admin');
    await mm.call('tokens', { op: 'create', hash: sha('after'), role: 'read-only', table: null });

    // The killed node restarts from its directory and catches up.
    await startMm(leader, members);
    await waitFor(
      'all three MM nodes up',
      async () => {
        const v = await mm.call('cluster', {}).catch(() => undefined);
        return v?.nodes.filter((n) => n.role === 'metadata' && n.state === 'up').length === 3
          ? true
          : undefined;
      },
      20_000,
    );

    for (const p of children.values()) p.kill('SIGTERM');
    const codes = await Promise.all([...children.values()].map(exit));
    expect(codes).toEqual([0, 0, 0]);
    children.clear();
  }, 60_000);
});
