/**
 * Bounded in-flight requests, and a write whose fate can't be learned: a leader that lost its
 * followers holds a write uncommitted; a second request past the bound is refused at once with
 * TOO_MANY_REQUESTS; when the leader steps down the held write answers OUTCOME_UNKNOWN or NOT_LEADER.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm as removeDir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTesseraError, type TesseraError } from '../../src/lib/errors.js';
import { groupId, type NodeId, nodeId, shardId, tableId, term } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import { StorageNode } from '../../src/storage/node.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import { Transport } from '../../src/transport/index.js';

const G = groupId(1);
const ids = [nodeId(16), nodeId(17), nodeId(18)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function failure(p: Promise<unknown>): Promise<TesseraError> {
  try {
    await p;
  } catch (e) {
    if (isTesseraError(e)) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

describe('in-flight bound', () => {
  const secret = new Uint8Array(randomBytes(32));
  const nodes = new Map<NodeId, StorageNode>();
  const transports: Transport[] = [];
  let root = '';
  afterAll(async () => {
    for (const t of transports) await t.close();
    for (const n of nodes.values()) await n.close();
    if (root) await removeDir(root, { recursive: true, force: true });
  });

  it('refuses past the bound; a write held by a leader without quorum ends without a guess', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tessera-inflight-'));
    for (const id of ids) {
      nodes.set(
        id,
        await StorageNode.start({
          dir: path.join(root, `n${id}`),
          listen: { host: '127.0.0.1', port: 0 },
          secret,
          mm: new Map(),
          nodeId: id,
          timing: { heartbeatIntervalMs: 50, electionTimeoutMs: 1000, leaseDriftMarginMs: 100 },
          logger: createLogger('storage', { level: 'error' }),
          inflightMax: 1,
        }),
      );
    }
    const mm = await Transport.start({ self: { nodeId: nodeId(1), role: 'metadata' }, secret });
    const rm = await Transport.start({ self: { nodeId: nodeId(40), role: 'request' }, secret });
    transports.push(mm, rm);
    const addresses = ids.map((id) => ({ node: id, address: (nodes.get(id) as StorageNode).address }));
    for (const a of addresses) {
      const [host, port] = a.address.split(':');
      mm.setPeer(a.node, { host: host as string, port: Number(port) });
      rm.setPeer(a.node, { host: host as string, port: Number(port) });
    }
    const order = rpc.encodeCtlHostGroup({
      group: G,
      membership: { voters: ids, learners: [] },
      addresses,
      mode: 'directed',
    });
    for (const id of ids) await mm.request(id, StorageKind.ctlHostGroup, order);
    const leader = ids[0] as NodeId;
    await mm.request(leader, StorageKind.ctlCampaign, rpc.encodeCtlCampaign({ group: G, minTerm: term(1) }));
    while (nodes.get(leader)?.host.status(G)?.role !== 'leader') await sleep(20);
    const entry = {
      type: 'assignShard' as const,
      shard: shardId(1),
      table: tableId(1),
      engine: 'lsm' as const,
      start: new Uint8Array(0),
      end: new Uint8Array(0),
      epoch: 1,
      catalogVersion: 1,
    };
    await mm.request(leader, StorageKind.ctlPropose, rpc.encodeCtlPropose({ group: G, entry }));
    const put = (n: number) =>
      rm.request(
        leader,
        StorageKind.kvPut,
        rpc.encodeKvPut({
          group: G,
          shard: shardId(1),
          epoch: 1,
          catalogVersion: 1,
          deadlineMs: 5000,
          key: new TextEncoder().encode(`k${n}`),
          value: new Uint8Array(10),
          condition: { type: 'none' },
          request: { client: 3n, number: n },
        }),
        { timeoutMs: 10_000 },
      );
    await put(1); // the group works
    for (const id of ids.slice(1)) {
      await nodes.get(id)?.close();
      nodes.delete(id);
    }
    const held = failure(put(2));
    await sleep(30);
    expect((await failure(put(3))).code).toBe('TOO_MANY_REQUESTS');
    expect(['OUTCOME_UNKNOWN', 'NOT_LEADER']).toContain((await held).code);
  }, 30_000);
});
