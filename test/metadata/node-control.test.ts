/**
 * The control loop end to end, in one process: 3 MM nodes and 4 real storage nodes (src/storage)
 * over real disks and TCP. Group formation from the free pool, the first leader, create table
 * (committed in the owning group), leader replacement after a leader stops, replica replacement by
 * the spare, drop table.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isTesseraError } from '../../src/lib/errors.js';
import { type GroupId, type NodeId, shardId } from '../../src/lib/ids.js';
import { StorageNode } from '../../src/storage/node.js';
import { decodeKvWriteResult, encodeKvPut, StorageKind } from '../../src/storage/rpc.js';
import type { Transport } from '../../src/transport/index.js';
import { MmCluster, quiet, timing, waitFor } from './mm-harness.js';

const control = {
  heartbeatIntervalMs: 100,
  heartbeatsMissedMax: 3,
  gracePeriodMs: 400,
  replaceAfterMs: 2_500,
  campaignTimeoutMs: 800,
  deepCheckTimeoutMs: 1_000,
  deepCheckIntervalMinMs: 2_000,
  learnerCatchUpEntriesMax: 64,
};

let cluster: MmCluster | undefined;
const storage = new Map<number, StorageNode>();

afterEach(async () => {
  for (const s of storage.values()) await s.close();
  storage.clear();
  await cluster?.close();
  cluster = undefined;
});

async function startStorage(c: MmCluster, i: number): Promise<StorageNode> {
  const dir = join(c.root, `s${i}`);
  mkdirSync(dir, { recursive: true });
  const s = await StorageNode.start({
    dir,
    listen: { host: '127.0.0.1', port: 0 },
    secret: c.secret,
    mm: c.members,
    heartbeatIntervalMs: control.heartbeatIntervalMs,
    timing,
    logger: quiet,
  });
  storage.set(s.id, s);
  return s;
}

async function put(t: Transport, leader: NodeId, group: GroupId, shard: number, n: number): Promise<void> {
  const out = await t.request(
    leader,
    StorageKind.kvPut,
    encodeKvPut({
      group,
      shard: shardId(shard),
      epoch: 1,
      catalogVersion: 1_000_000,
      deadlineMs: 2_000,
      key: new TextEncoder().encode(`k${n}`),
      value: new TextEncoder().encode(`v${n}`),
      condition: { type: 'none' },
      request: { client: 7n, number: n },
    }),
    { timeoutMs: 2_000 },
  );
  expect(decodeKvWriteResult(out).seq).toHaveLength(16);
}

describe('control loop with real storage nodes', () => {
  it('forms a group, elects its leader, creates a table, replaces a stopped leader and replica, drops the table', async () => {
    cluster = await MmCluster.start(3, { groupsTarget: 1, replicas: 3, control });
    const c = cluster;
    for (let i = 1; i <= 4; i++) await startStorage(c, i);
    const mmLeader = await c.leader();

    // One group of 3 with a leader; the 4th node stays a spare.
    const group = await waitFor(
      'a group with a leader',
      () => {
        const g = [...mmLeader.catalog.state.groups.values()][0];
        return g !== undefined && g.leader !== null ? g : undefined;
      },
      15_000,
    );
    expect(group.members).toHaveLength(3);
    await waitFor('one spare', () => mmLeader.catalog.state.spares.length === 1);

    const client = await c.registeredClient();
    const created = await client.mm.call('createTable', { name: 'Stocks', engine: 'btree' });
    expect(created.table).toMatchObject({ name: 'Stocks', engine: 'btree' });
    const shard = created.table.shards[0]!;
    expect(shard.group).toBe(group.id);
    for (const s of storage.values())
      client.t.setPeer(s.id, { host: '127.0.0.1', port: s.transport.address!.port });
    const g0 = mmLeader.catalog.group(group.id)!;
    await put(client.t, g0.leader!, group.id, shard.shard, 1);

    // Stop the group's leader: the MM orders a campaign; writes resume on the new leader.
    const oldLeader = g0.leader!;
    const oldTerm = g0.term;
    const stoppedAt = Date.now();
    await storage.get(oldLeader)!.close();
    storage.delete(oldLeader);
    const newLeader = await waitFor(
      'a new leader',
      () => {
        const g = mmLeader.catalog.group(group.id)!;
        return g.leader !== null && g.leader !== oldLeader && g.term > oldTerm ? g.leader : undefined;
      },
      10_000,
    );
    await waitFor(
      'a write on the new leader',
      () =>
        put(client.t, newLeader, group.id, shard.shard, 2).then(
          () => true,
          (e: unknown) => (isTesseraError(e) ? undefined : Promise.reject(e)),
        ),
      10_000,
    );
    const resumedMs = Date.now() - stoppedAt;
    console.log(`writes resumed ${resumedMs} ms after the leader stopped`);

    // After replaceAfterMs the stopped node's replica is replaced by the spare.
    await waitFor(
      'the spare replaces the stopped node',
      () => {
        const g = mmLeader.catalog.group(group.id)!;
        const ids = g.members.map((m) => m.node);
        return !ids.includes(oldLeader) && g.members.every((m) => m.role === 'voter') && ids.length === 3;
      },
      20_000,
    );
    expect(mmLeader.catalog.state.spares).toEqual([]);

    // Drop: the catalog change, then the group logs it, then the drop finishes.
    const dropped = await client.mm.call('dropTable', { name: 'Stocks' });
    await waitFor(
      'the drop finished',
      () => mmLeader.catalog.state.tables.get(dropped.table as never)?.state === 'dropped',
      10_000,
    );
    const missing = await client.mm.call('describe', { name: 'Stocks' }).catch((e: unknown) => e);
    expect(isTesseraError(missing, 'TABLE_NOT_FOUND')).toBe(true);
  }, 60_000);
});
