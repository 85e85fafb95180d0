/**
 * `tessera storage --dir D --listen HOST:PORT --mm ID=HOST:PORT,... [--advertise HOST:PORT]
 * [--secret FILE] [--heartbeat-ms N]`: runs one storage node until SIGTERM / SIGINT.
 * The cluster secret: --secret, else D/../cluster.secret (the dev dir), else D/cluster.secret.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { flagString, parseArgs, UsageError } from '../cli/args.js';
import { isTesseraError } from '../lib/errors.js';
import { dieOnUncaught } from '../lib/fatal.js';
import { createLogger } from '../lib/log.js';
import { loadClusterSecret } from '../transport/secret.js';
import { parseAddress, StorageNode } from './node.js';

const usage =
  'storage --dir DIR --listen HOST:PORT --mm ID=HOST:PORT,... [--advertise HOST:PORT] [--secret FILE] [--heartbeat-ms N]';

function secretPath(dir: string, flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const up = path.join(dir, '..', 'cluster.secret');
  return existsSync(up) ? up : path.join(dir, 'cluster.secret');
}

import { parseMembers } from '../cli/members.js';

export { parseMembers };

export async function run(args: string[]): Promise<number> {
  const p = parseArgs(args, ['dir', 'listen', 'mm', 'advertise', 'secret', 'heartbeat-ms'], []);
  const dir = flagString(p, 'dir');
  const listen = parseAddress(flagString(p, 'listen') ?? '');
  const mmFlag = flagString(p, 'mm');
  if (dir === undefined || listen === null || mmFlag === undefined || p.positional.length > 0)
    throw new UsageError(`usage: tessera ${usage}`);
  const hb = flagString(p, 'heartbeat-ms');
  const heartbeatIntervalMs = hb === undefined ? undefined : Number(hb);
  if (
    heartbeatIntervalMs !== undefined &&
    !(Number.isInteger(heartbeatIntervalMs) && heartbeatIntervalMs > 0)
  )
    throw new UsageError('--heartbeat-ms must be a positive integer');
  dieOnUncaught('storage'); // a server process: see src/lib/fatal.ts
  const log = createLogger('storage');
  const start = StorageNode.start({
    dir,
    listen,
    secret: loadClusterSecret(secretPath(dir, flagString(p, 'secret'))),
    mm: parseMembers(mmFlag),
    logger: log,
    allowFaultAdmin: process.env.TESSERA_FAULT_ADMIN === '1',
    ...(flagString(p, 'advertise') === undefined ? {} : { advertise: flagString(p, 'advertise') as string }),
    ...(heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs }),
  });
  let node: StorageNode;
  try {
    node = await start;
  } catch (e) {
    if (!isTesseraError(e, 'NODE_REMOVED')) throw e;
    log.error(e.message);
    return 3;
  }
  const why = await new Promise<'signal' | 'removed' | 'recover'>((resolve) => {
    process.once('SIGTERM', () => resolve('signal'));
    process.once('SIGINT', () => resolve('signal'));
    void node.whenRemoved().then(() => resolve('removed'));
    void node.whenEngineRecoverable().then(() => resolve('recover'));
  });
  log.info('storage node stopping', { node: node.id, why });
  if (why === 'recover') {
    // The supervisor (the dev cluster, systemd) starts the node again: the engine is reopened.
    await node.close().catch((e: unknown) => log.warn('close after an engine failure', { error: String(e) }));
    return EXIT_RESTART;
  }
  await node.close();
  return why === 'removed' ? 3 : 0;
}

/** Exit status asking the supervisor for a restart (EX_TEMPFAIL). */
export const EXIT_RESTART = 75;
