/**
 * `tessera request --listen HOST:PORT --mm ID=HOST:PORT,... --dir D [--secret FILE] [--admin-token FILE]`:
 * one request manager process. It registers with the metadata manager for its node id (role
 * 'request', a stable key in D/node.json), authenticates to members with the cluster secret,
 * follows the catalog, and serves the HTTP API (src/request/http.ts) on --listen. With
 * --admin-token it makes sure the token in that file is an admin token in the catalog (dev cluster).
 * SIGTERM / SIGINT: stop accepting, close, exit 0.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { flagString, parseArgs, UsageError } from '../cli/args.js';
import { isTesseraError } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { loadNodeFile, saveNodeFile } from '../lib/node-file.js';
import { dieOnUncaught } from '../lib/fatal.js';
import { createLogger, type Logger } from '../lib/log.js';
import { MmClient } from '../metadata/client.js';
import { loadClusterSecret } from '../transport/secret.js';
import { type PeerAddress, Transport } from '../transport/transport.js';
import { hashToken } from './auth.js';
import { parseAddress } from './catalog-cache.js';
import { ClusterBackend } from './cluster-backend.js';
import { startHttpServer } from './http.js';

const usage =
  'request --listen HOST:PORT --mm ID=HOST:PORT,... --dir DIR [--secret FILE] [--admin-token FILE]';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

import { parseMembers } from '../cli/members.js';

export { parseMembers };

function secretPath(dir: string, flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const up = path.join(dir, '..', 'cluster.secret');
  return existsSync(up) ? up : path.join(dir, 'cluster.secret');
}

/** Registers under the provisional id 0 until an MM leader answers; returns the node id. */
async function register(
  secret: Uint8Array,
  members: Map<NodeId, PeerAddress>,
  key: string,
  address: string,
  log: Logger,
): Promise<NodeId> {
  const t = await Transport.start({ self: { nodeId: 0 as NodeId, role: 'request' }, secret, log });
  try {
    const mm = new MmClient({ transport: t, members });
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await mm.call('register', {
          role: 'request',
          nodeKey: key,
          address,
          pid: process.pid,
          capacity: { replicasMax: 0, diskBytes: 0 },
        });
        return res.node;
      } catch (e) {
        // An MM node that is still starting answers BAD_REQUEST (no handler yet): keep trying.
        if (!isTesseraError(e) || e.code === 'NODE_REMOVED') throw e;
        if (attempt === 1 || attempt % 10 === 0)
          log.info('waiting for the metadata manager', { code: e.code });
        await sleep(Math.min(1_000, 100 * attempt));
      }
    }
  } finally {
    await t.close();
  }
}

/** Makes sure the token in `file` is an admin token in the catalog (idempotent by hash). */
async function ensureAdminToken(
  backend: ClusterBackend,
  file: string,
  log: Logger,
  stopped: () => boolean,
): Promise<void> {
  const hash = hashToken(readFileSync(file, 'utf8').trim());
  for (let attempt = 1; !stopped(); attempt++) {
    try {
      if ((await backend.verifyToken(hash))?.role === 'admin') return;
      await backend.createToken({
        id: '0',
        hash,
        role: 'admin',
        table: null,
        createdAt: new Date().toISOString(),
      });
      log.info('admin token registered');
      return;
    } catch (e) {
      if (!isTesseraError(e)) throw e;
      if (attempt % 10 === 1) log.warn('admin token not registered yet', { code: e.code });
      await sleep(Math.min(1_000, 100 * attempt));
    }
  }
}

/**
 * Heartbeats to the MM (no replicas) so the catalog shows this request manager up, with its pid and
 * heartbeat age. Stops when `stopped()` says so.
 */
async function heartbeats(
  mm: MmClient,
  node: NodeId,
  address: string,
  stopped: () => boolean,
): Promise<void> {
  while (!stopped()) {
    await mm
      .call(
        'heartbeat',
        { node, pid: process.pid, address, diskOk: true, replicas: [] },
        limits.mmCallAttemptMs,
      )
      .catch((e: unknown) => {
        if (!isTesseraError(e)) throw e;
      });
    await sleep(limits.heartbeatIntervalMs);
  }
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['listen', 'mm', 'dir', 'secret', 'admin-token'], []);
  const listen = parseAddress(flagString(p, 'listen') ?? '');
  const mmFlag = flagString(p, 'mm');
  const dir = flagString(p, 'dir');
  if (listen === null || mmFlag === undefined || dir === undefined || p.positional.length > 0)
    throw new UsageError(`usage: tessera ${usage}`);
  const members = parseMembers(mmFlag);
  mkdirSync(dir, { recursive: true });
  // The transport's timers are unref'd: keep the process alive until a signal stops it.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  try {
    return await serve(dir, listen, members, p);
  } finally {
    clearInterval(keepAlive);
  }
}

async function serve(
  dir: string,
  listen: PeerAddress,
  members: Map<NodeId, PeerAddress>,
  p: ReturnType<typeof parseArgs>,
): Promise<number> {
  dieOnUncaught('request'); // a server process: see src/lib/fatal.ts
  const log = createLogger('request');
  const secret = loadClusterSecret(secretPath(dir, flagString(p, 'secret')));
  const nodeFile = loadNodeFile(dir);
  const address = `${listen.host}:${listen.port}`;
  const id = await register(secret, members, nodeFile.key, address, log);
  if (nodeFile.node !== id) saveNodeFile(dir, { ...nodeFile, node: id });
  const transport = await Transport.start({ self: { nodeId: id, role: 'request' }, secret, log });
  const mm = new MmClient({ transport, members });
  const backend = new ClusterBackend({ transport, mm, log });
  backend.start();
  const adminToken = flagString(p, 'admin-token');
  let stopping = false;
  if (adminToken !== undefined) void ensureAdminToken(backend, adminToken, log, () => stopping);
  let server: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    server = await startHttpServer(backend, {
      host: listen.host,
      port: listen.port,
      instanceId: `rm${id}-${randomBytes(6).toString('hex')}`,
      clusterMetrics: true,
    });
  } catch (e) {
    // e.g. EADDRINUSE: close what runs so the process exits with the error.
    stopping = true;
    await backend.close();
    await transport.close();
    throw e;
  }
  log.info('request manager listening', { node: id, url: server.url });
  const beating = heartbeats(mm, id, address, () => stopping);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  stopping = true;
  log.info('request manager stopping');
  await server.close();
  await backend.close();
  await transport.close();
  // MM calls still retrying (the MM may be stopping too) must not hold the process up.
  void beating;
  setTimeout(() => process.exit(0), 500).unref();
  return 0;
}
