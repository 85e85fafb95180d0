/**
 * Drop table while a replica is down: the drop is an entry in the group's log keyed by the table
 * id, so the replica that missed it removes the table's data when it comes back and catches up
 * from the log, and a later restart (replay) does not bring the table back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { keyspaceId } from '../../src/engine/types.js';
import { groupId, type NodeId, nodeId, shardId, tableId } from '../../src/lib/ids.js';
import type { KvStateMachine } from '../../src/storage/kv-sm.js';
import type { StorageNode } from '../../src/storage/node.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import { waitFor } from '../support/wait.js';
import { StorageGroup } from './group-harness.js';

const enc = (s: string) => new TextEncoder().encode(s);
const G = groupId(1);
const ids = [nodeId(26), nodeId(27), nodeId(28)];
const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1500, leaseDriftMarginMs: 200 };

/** Rows (tombstones included) of shard `s`'s keyspace in node n's `engine` instance. */
async function rows(n: StorageNode, s: number, engine: 'btree' | 'lsm'): Promise<number> {
  const sm = n.host.stateMachine(G) as KvStateMachine;
  await sm.flush(); // the memtable's records into the engines, so the engine scan sees everything
  const all = await n.engines.get(engine)!.scan(keyspaceId(shardId(s)), { includeTombstones: true });
  return all.length;
}

function shardsOf(n: StorageNode): number[] {
  const sm = n.host.stateMachine(G) as KvStateMachine;
  return sm
    .shards()
    .map((s) => Number(s.shard))
    .sort();
}

describe('drop table while a replica is down', () => {
  let group: StorageGroup | undefined;
  afterAll(async () => {
    await group?.close();
  });

  it('the replica removes the data when it catches up, and replay keeps it removed', async () => {
    const g = await StorageGroup.start({ group: G, ids, tmpPrefix: 'tessera-dropdown-', node: { timing } });
    group = g;
    await g.campaign(ids[0] as NodeId);
    const leader = await g.waitForLeader();
    for (const [s, engine] of [
      [1, 'btree'],
      [2, 'lsm'],
      [3, 'lsm'],
    ] as const) {
      await g.assignShard(leader, { shard: shardId(s), table: tableId(s), engine, catalogVersion: 1 });
    }
    let n = 0;
    const put = (s: number, key: string) =>
      g.put(leader, shardId(s), enc(key), enc(`${key}-v`), { client: 9n, number: ++n });
    for (let i = 0; i < 20; i++) for (const s of [1, 2, 3]) await put(s, `k${i}`);

    const down = ids.find((id) => id !== leader) as NodeId;
    // Everything is on the follower before it goes down.
    await waitFor(
      'the follower to apply the puts',
      () => g.node(down).host.status(G)!.applied >= g.node(leader).host.status(G)!.commit || undefined,
      10_000,
    );
    expect(await rows(g.node(down), 1, 'btree')).toBe(20);
    expect(await rows(g.node(down), 2, 'lsm')).toBe(20);
    const port = await g.stopNode(down);

    // Drop tables 1 (btree) and 2 (lsm) while it is down; table 3 stays.
    let dropIndex = 0;
    for (const t of [1, 2]) {
      const drop = rpc.encodeCtlPropose({ group: G, entry: { type: 'dropTable', table: tableId(t) } });
      dropIndex = Number(rpc.decodeIndexResult(await g.ctl(leader, StorageKind.ctlPropose, drop)).index);
    }
    await put(3, 'after-drop');
    expect(await rows(g.node(leader), 1, 'btree')).toBe(0);
    expect(await rows(g.node(leader), 2, 'lsm')).toBe(0);

    // Back on the same address: it catches up from the leader's log, drops included.
    let back = await g.startNode(down, port);
    await waitFor(
      'the restarted replica to apply the drops',
      () => (back.host.status(G)?.applied ?? 0) > dropIndex || undefined,
      15_000,
    );
    expect(await rows(back, 1, 'btree')).toBe(0);
    expect(await rows(back, 2, 'lsm')).toBe(0);
    expect(await rows(back, 3, 'lsm')).toBe(21);
    expect(shardsOf(back)).toEqual([3]);

    // A restart replays its log from the engines' position: the dropped tables stay gone.
    await g.stopNode(down);
    back = await g.startNode(down, port);
    await waitFor('the replica to host the group again', () => back.host.status(G) ?? undefined, 10_000);
    expect(await rows(back, 1, 'btree')).toBe(0);
    expect(await rows(back, 2, 'lsm')).toBe(0);
    expect(await rows(back, 3, 'lsm')).toBe(21);
    expect(shardsOf(back)).toEqual([3]);
  }, 60_000);
});
