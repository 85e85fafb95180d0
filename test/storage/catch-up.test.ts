/**
 * A follower that was down while the leader compacted its log catches up from a snapshot of the
 * key-value state machine (engine snapshots of both instances + registry + dedup), streamed by the
 * host, and then has exactly the leader's data. The restarted node finds its peers in peers.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm as removeDir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { groupId, type NodeId, nodeId, shardId, tableId, term } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import type { KvStateMachine } from '../../src/storage/kv-sm.js';
import { StorageNode } from '../../src/storage/node.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import { Transport } from '../../src/transport/index.js';
import { hex } from '../statemachine/helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const G = groupId(1);
const ids = [nodeId(16), nodeId(17), nodeId(18)];
const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1500, leaseDriftMarginMs: 200 };

async function until<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

async function dump(n: StorageNode): Promise<string[]> {
  const sm = n.host.stateMachine(G) as KvStateMachine;
  const out: string[] = [];
  for (const s of sm.shards()) {
    const rows = await sm.engineOf(s).scan(s.keyspace, { includeTombstones: true, limit: 10_000 });
    for (const r of rows) out.push(`${s.shard}/${s.engine} ${hex(r.key)}=${hex(r.value)}@${hex(r.seq)}`);
  }
  return out;
}

describe('follower catch-up by snapshot', () => {
  const secret = new Uint8Array(randomBytes(32));
  const quiet = createLogger('storage', { level: 'error' });
  const nodes = new Map<NodeId, StorageNode>();
  const transports: Transport[] = [];
  let root = '';
  afterAll(async () => {
    for (const t of transports) await t.close();
    for (const n of nodes.values()) await n.close();
    if (root) await removeDir(root, { recursive: true, force: true });
  });

  const start = (id: NodeId, port = 0) =>
    StorageNode.start({
      dir: path.join(root, `n${id}`),
      listen: { host: '127.0.0.1', port },
      secret,
      mm: new Map(),
      nodeId: id,
      timing,
      logger: quiet,
      checkpointEntries: 20,
      compactionMarginEntries: 0,
    });

  it('installs the leader snapshot and ends with the same data', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'tessera-catchup-'));
    for (const id of ids) nodes.set(id, await start(id));
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
    await mm.request(
      ids[0] as NodeId,
      StorageKind.ctlCampaign,
      rpc.encodeCtlCampaign({ group: G, minTerm: term(1) }),
    );
    const leader = await until('a leader', () =>
      ids.find((id) => nodes.get(id)?.host.status(G)?.role === 'leader'),
    );
    for (const [shard, engine] of [
      [1, 'btree'],
      [2, 'lsm'],
    ] as const) {
      const entry = {
        type: 'assignShard' as const,
        shard: shardId(shard),
        table: tableId(shard),
        engine,
        start: new Uint8Array(0),
        end: new Uint8Array(0),
        epoch: 1,
        catalogVersion: 1,
      };
      await mm.request(leader, StorageKind.ctlPropose, rpc.encodeCtlPropose({ group: G, entry }));
    }
    const put = (shard: number, key: string, number: number) =>
      rm.request(
        leader,
        StorageKind.kvPut,
        rpc.encodeKvPut({
          group: G,
          shard: shardId(shard),
          epoch: 1,
          catalogVersion: 1,
          deadlineMs: 5000,
          key: enc(key),
          value: enc(`${key}-value`),
          condition: { type: 'none' },
          request: { client: 5n, number },
        }),
      );
    await put(1, 'before', 1);

    // Stop a follower; write enough that the leader compacts past it.
    const down = ids.find((id) => id !== leader) as NodeId;
    const downNode = nodes.get(down) as StorageNode;
    const port = Number(downNode.address.split(':')[1]);
    await downNode.close();
    nodes.delete(down);
    await Promise.all(
      Array.from({ length: 120 }, (_, i) => put(1 + (i % 2), `k${String(i).padStart(3, '0')}`, 2 + i)),
    );
    const leaderNode = nodes.get(leader) as StorageNode;
    await leaderNode.host.checkpoint(G);
    const status = leaderNode.host.status(G);
    expect(status?.firstIndex).toBeGreaterThan(10);

    // Restart it on the same address: it learns its peers from peers.json, gets a snapshot.
    const back = await start(down, port);
    nodes.set(down, back);
    const want = await dump(leaderNode);
    expect(want.length).toBe(121);
    await until('the snapshot installed', async () =>
      (await dump(back)).length === want.length ? true : undefined,
    );
    expect(await dump(back)).toEqual(want);
    expect((await dump(back)).length).toBe(121);
    // The shard registry came along too.
    const sm = back.host.stateMachine(G) as KvStateMachine;
    expect(sm.shards().map((s) => s.shard)).toEqual([1, 2]);
  }, 40_000);
});
