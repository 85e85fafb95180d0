/**
 * `tessera metadata --id N --dir D --listen HOST:PORT --peers 1=HOST:PORT,2=... [--secret FILE]
 * [--groups N] [--replicas 3|5] [--replace-after SECONDS]`: runs one metadata manager node until
 * SIGTERM / SIGINT. MM node ids are 1..15 (limits.mmNodeIdMax); --peers lists every MM node,
 * this one included. The cluster secret: --secret, else D/../cluster.secret, else D/cluster.secret
 * (created if absent).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { flagString, parseArgs, UsageError } from '../cli/args.js';
import { nodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { dieOnUncaught } from '../lib/fatal.js';
import { createLogger } from '../lib/log.js';
import { parseAddress } from '../storage/node.js';
import { parseMembers } from '../cli/members.js';
import { loadOrCreateClusterSecret } from '../transport/secret.js';
import { MetadataNode } from './node.js';

const usage =
  'metadata --id N --dir DIR --listen HOST:PORT --peers 1=HOST:PORT,2=... [--secret FILE] [--groups N] [--replicas 3|5] [--replace-after SECONDS]';

function secretPath(dir: string, flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const up = path.join(dir, '..', 'cluster.secret');
  return existsSync(up) ? up : path.join(dir, 'cluster.secret');
}

function intFlag(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer in ${min}..${max}`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(
    args,
    ['id', 'dir', 'listen', 'peers', 'secret', 'groups', 'replicas', 'replace-after'],
    [],
  );
  const dir = flagString(p, 'dir');
  const listen = parseAddress(flagString(p, 'listen') ?? '');
  const peers = flagString(p, 'peers');
  const id = intFlag(flagString(p, 'id'), 'id', 1, limits.mmNodeIdMax);
  if (
    dir === undefined ||
    listen === null ||
    peers === undefined ||
    id === undefined ||
    p.positional.length > 0
  )
    throw new UsageError(`usage: tessera ${usage}`);
  const replicas = intFlag(flagString(p, 'replicas'), 'replicas', 3, 5) ?? 3;
  if (replicas !== 3 && replicas !== 5) throw new UsageError('--replicas must be 3 or 5');
  const groups = intFlag(flagString(p, 'groups'), 'groups', 0, limits.mmGroupsTargetMax) ?? 2;
  const replaceAfterS = intFlag(flagString(p, 'replace-after'), 'replace-after', 2, 86_400);
  const members = parseMembers(peers);
  if (!members.has(nodeId(id))) throw new UsageError('--peers must include this node (--id)');
  mkdirSync(dir, { recursive: true });
  dieOnUncaught('metadata'); // a server process: see src/lib/fatal.ts
  const log = createLogger('metadata');
  const node = await MetadataNode.start({
    id: nodeId(id),
    dir,
    listen,
    members,
    secret: loadOrCreateClusterSecret(secretPath(dir, flagString(p, 'secret'))),
    groupsTarget: groups,
    replicas,
    ...(replaceAfterS === undefined ? {} : { control: { replaceAfterMs: replaceAfterS * 1000 } }),
    logger: log,
    allowFaultAdmin: process.env.TESSERA_FAULT_ADMIN === '1',
  });
  const a = node.address;
  log.info('metadata node ready', { node: id, listen: `${a.host}:${a.port}`, pid: process.pid });
  process.stdout.write(
    `${JSON.stringify({ ready: true, role: 'metadata', id, port: a.port, pid: process.pid })}\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('metadata node stopping', { node: id });
  await node.close();
  return 0;
}
