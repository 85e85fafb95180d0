/**
 * Storage nodes with the real metadata manager (3 MM nodes in process): registration (node id in
 * node.json, kept across restarts), heartbeats, assignments from the answers, the MM's directed
 * election and shard assignment, then kv.* from a request-role client.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeId, shardId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import type { ClusterResponse } from '../../src/metadata/rpc.js';
import type { KvStateMachine } from '../../src/storage/kv-sm.js';
import { StorageNode } from '../../src/storage/node.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import type { Transport } from '../../src/transport/index.js';
import type { MmClient } from '../../src/metadata/client.js';
import { freePort, MmCluster, timing, waitFor } from '../metadata/mm-harness.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const quiet = createLogger('storage', { level: 'error' });

describe('storage nodes with the metadata manager', () => {
  let mmc: MmCluster;
  const storage: StorageNode[] = [];
  const dirs: string[] = [];
  let rm: { id: NodeId; mm: MmClient; t: Transport };

  async function startStorage(dir: string, port: number): Promise<StorageNode> {
    return StorageNode.start({
      dir,
      listen: { host: '127.0.0.1', port },
      secret: mmc.secret,
      mm: mmc.members,
      heartbeatIntervalMs: 50,
      timing,
      logger: quiet,
    });
  }

  beforeAll(async () => {
    mmc = await MmCluster.start(3, {
      groupsTarget: 1,
      replicas: 3,
      control: { heartbeatIntervalMs: 50, gracePeriodMs: 200 },
    });
    await mmc.leader();
    for (let i = 0; i < 3; i++) {
      const dir = path.join(mmc.root, `storage-${i}`);
      dirs.push(dir);
      storage.push(await startStorage(dir, await freePort()));
    }
    rm = await mmc.registeredClient();
  }, 30_000);

  afterAll(async () => {
    for (const s of storage) await s.close();
    await mmc?.close();
  });

  it('registers each node once and keeps its id in node.json', () => {
    const ids = storage.map((s) => s.id);
    expect(new Set(ids).size).toBe(3);
    for (const [i, s] of storage.entries()) {
      expect(s.id).toBeGreaterThanOrEqual(16);
      const file = JSON.parse(readFileSync(path.join(dirs[i] as string, 'node.json'), 'utf8'));
      expect(file).toMatchObject({ version: 1, node: s.id });
    }
  });

  it('hosts the group the MM forms, gets a leader, and serves a table created through the MM', async () => {
    const cluster = await waitFor(
      'a group with a leader',
      async () => {
        const c: ClusterResponse = await rm.mm.call('cluster', {});
        return c.groups.some((g) => g.leader !== 0 && g.voters.length === 3) ? c : undefined;
      },
      20_000,
    );
    for (const s of storage) expect(s.host.groups().length).toBe(1);
    const created = await rm.mm.call('createTable', { name: 'fruits', engine: 'lsm' });
    const shard = created.table.shards[0];
    expect(shard).toBeDefined();
    if (shard === undefined) return;
    for (const n of cluster.nodes) {
      if (n.role !== 'storage') continue;
      const [host, port] = n.addr.split(':');
      rm.t.setPeer(n.id, { host: host as string, port: Number(port) });
    }
    const target = {
      group: shard.group,
      shard: shardId(shard.shard),
      epoch: shard.epoch,
      catalogVersion: created.version,
      deadlineMs: 2000,
    };
    // Follow NOT_LEADER hints as a request manager does.
    let to = cluster.groups.find((g) => g.id === shard.group)?.leader as NodeId;
    const put = rpc.encodeKvPut({
      ...target,
      key: enc('kiwi'),
      value: enc('green'),
      condition: { type: 'none' },
      request: { client: 99n, number: 1 },
    });
    const seq = await waitFor('a write through the leader', async () => {
      try {
        return rpc.decodeKvWriteResult(await rm.t.request(to, StorageKind.kvPut, put)).seq;
      } catch (e) {
        const leader = Number((e as { detail?: { leader?: number } }).detail?.leader ?? 0);
        if (leader > 0) to = leader as NodeId;
        return undefined;
      }
    });
    expect(seq.length).toBe(16);
    const got = rpc.decodeKvGetResult(
      await rm.t.request(to, StorageKind.kvGet, rpc.encodeKvGet({ ...target, key: enc('kiwi') })),
    );
    expect(dec(got.value as Uint8Array)).toBe('green');
  }, 30_000);

  it('answers from an older catalog (a deposed MM leader) never remove a hosted replica', async () => {
    const n = storage[0] as StorageNode;
    const before = n.host.groups();
    expect(before.length).toBe(1);
    // Version 0 is below every catalog the node has seen: twice absent would remove the group if
    // stale answers were trusted.
    await n.applyAssignments([], 0);
    await n.applyAssignments([], 0);
    await n.applyAssignments([], 0);
    expect(n.host.groups()).toEqual(before);
  });

  it('a restarted node comes back under the same id with its data', async () => {
    const old = storage.pop() as StorageNode;
    const id = old.id;
    const addr = old.address;
    await old.close();
    const again = await startStorage(dirs[2] as string, Number(addr.split(':')[1]));
    storage.push(again);
    expect(again.id).toBe(id);
    const g = await waitFor('the group hosted again', () =>
      again.host.groups().length === 1 ? again.host.groups()[0] : undefined,
    );
    await waitFor('the replica caught up', () => {
      const s = again.host.status(g as NonNullable<typeof g>);
      return s !== undefined && s.applied >= s.commit && s.commit > 0 ? true : undefined;
    });
    const sm = again.host.stateMachine(g as NonNullable<typeof g>) as KvStateMachine;
    const sh = await waitFor('the shard registered', () => sm.shards()[0]);
    const rec = await waitFor('the write', () => sm.engineOf(sh).get(sh.keyspace, enc('kiwi')));
    expect(dec(rec.value)).toBe('green');
  }, 30_000);
});
