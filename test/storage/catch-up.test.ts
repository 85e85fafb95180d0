/**
 * A follower that was down while the leader compacted its log catches up from a snapshot of the
 * key-value state machine (engine snapshots of both instances + registry + dedup), streamed by the
 * host, and then has exactly the leader's data. The restarted node finds its peers in peers.json.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { groupId, type NodeId, nodeId, shardId, tableId } from '../../src/lib/ids.js';
import type { KvStateMachine } from '../../src/storage/kv-sm.js';
import type { StorageNode } from '../../src/storage/node.js';
import { hex } from '../statemachine/helpers.js';
import { waitFor } from '../support/wait.js';
import { StorageGroup } from './group-harness.js';

const enc = (s: string) => new TextEncoder().encode(s);
const G = groupId(1);
const ids = [nodeId(16), nodeId(17), nodeId(18)];
const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1500, leaseDriftMarginMs: 200 };

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
  let group: StorageGroup | undefined;
  afterAll(async () => {
    await group?.close();
  });

  it('installs the leader snapshot and ends with the same data', async () => {
    const g = await StorageGroup.start({
      group: G,
      ids,
      tmpPrefix: 'tessera-catchup-',
      node: { timing, checkpointEntries: 20, compactionMarginEntries: 0 },
    });
    group = g;
    await g.campaign(ids[0] as NodeId);
    const leader = await g.waitForLeader();
    for (const [shard, engine] of [
      [1, 'btree'],
      [2, 'lsm'],
    ] as const) {
      await g.assignShard(leader, {
        shard: shardId(shard),
        table: tableId(shard),
        engine,
        catalogVersion: 1,
      });
    }
    const put = (shard: number, key: string, number: number) =>
      g.put(leader, shardId(shard), enc(key), enc(`${key}-value`), { client: 5n, number });
    await put(1, 'before', 1);

    // Stop a follower; write enough that the leader compacts past it.
    const down = ids.find((id) => id !== leader) as NodeId;
    const port = await g.stopNode(down);
    await Promise.all(
      Array.from({ length: 120 }, (_, i) => put(1 + (i % 2), `k${String(i).padStart(3, '0')}`, 2 + i)),
    );
    const leaderNode = g.node(leader);
    await leaderNode.host.checkpoint(G);
    const status = leaderNode.host.status(G);
    expect(status?.firstIndex).toBeGreaterThan(10);

    // Restart it on the same address: it learns its peers from peers.json, gets a snapshot.
    const back = await g.startNode(down, port);
    const want = await dump(leaderNode);
    expect(want.length).toBe(121);
    await waitFor(
      'the snapshot installed',
      async () => ((await dump(back)).length === want.length ? true : undefined),
      15_000,
    );
    expect(await dump(back)).toEqual(want);
    expect((await dump(back)).length).toBe(121);
    // The shard registry came along too.
    const sm = back.host.stateMachine(G) as KvStateMachine;
    expect(sm.shards().map((s) => s.shard)).toEqual([1, 2]);
  }, 40_000);
});
