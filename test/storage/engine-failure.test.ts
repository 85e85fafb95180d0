/**
 * A storage node whose index engine fails a write (a full disk, EIO): the engine takes no more
 * writes until a restart, and the node reports an unhealthy disk, so the control plane moves its
 * replicas and leadership away (control/liveness.ts: a live node with diskOk false is replaced).
 * Before, it went on reporting a healthy disk while its replicas of the group were stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupId, type NodeId, nodeId, shardId, tableId } from '../../src/lib/ids.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import { rejection } from '../support/rejection.js';
import { StorageGroup } from './group-harness.js';

const G = groupId(3);
const S = shardId(9);
const ids = [nodeId(21), nodeId(22), nodeId(23)];
const enc = (s: string) => new TextEncoder().encode(s);
const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1500, leaseDriftMarginMs: 200 };

describe('a storage node whose index engine fails', () => {
  let group: StorageGroup;
  let leader: NodeId;
  let reqNo = 0;
  let diskFull = false;
  const client = 0x0badn;

  beforeAll(async () => {
    group = await StorageGroup.start({
      group: G,
      ids,
      tmpPrefix: 'tessera-engine-failure-',
      node: { timing, diskProbe: async () => !diskFull },
    });
    await group.campaign(ids[0] as NodeId);
    leader = await group.waitForLeader();
    await group.assignShard(leader, { shard: S, table: tableId(4), engine: 'btree', catalogVersion: 1 });
  }, 30_000);

  afterAll(async () => {
    await group.close();
  });

  it('reports an unhealthy disk, refuses writes with DISK_FULL and serves reads', async () => {
    for (let i = 0; i < 100; i++) {
      await group.put(leader, S, enc(`k${i}`), enc(`v${i}`), { client, number: ++reqNo });
    }
    const node = group.node(leader);
    expect(await node.probeDisk()).toBe(true);
    // The btree engine's writes fail from now on as a full disk would (nothing written).
    const engine = node.engines.get('btree') as unknown as Record<
      '_write' | '_writeAhead',
      (...a: unknown[]) => Promise<void>
    >;
    for (const name of ['_write', '_writeAhead'] as const) {
      engine[name] = () =>
        Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    }
    // The group's checkpoint flushes its memtable into the engine: that write fails.
    await expect(node.host.checkpoint(G)).rejects.toThrow(/no space left/i);
    expect(node.engines.get('btree')?.failure()).toBeDefined();
    expect(node.engines.get('lsm')?.failure()).toBeUndefined();
    // The probe file still writes, but the node now reports an unhealthy disk.
    expect(await node.probeDisk()).toBe(false);
    // What the metadata manager reads (ctl.status; heartbeats carry the same flag).
    const status = rpc.decodeCtlStatusResult(
      await group.ctl(leader, StorageKind.ctlStatus, rpc.encodeEmpty()),
    );
    expect(status.diskOk).toBe(false);
    const refused = await rejection(
      group.put(leader, S, enc('after'), enc('x'), { client, number: ++reqNo }),
    );
    expect(refused.code).toBe('DISK_FULL');
    const got = rpc.decodeKvGetResult(
      await group.rm.request(
        leader,
        StorageKind.kvGet,
        rpc.encodeKvGet({
          group: G,
          shard: S,
          epoch: 1,
          catalogVersion: 1,
          deadlineMs: 2000,
          key: enc('k7'),
        }),
      ),
    );
    expect(got.value && new TextDecoder().decode(got.value)).toBe('v7');
  });

  it('asks for a restart once the disk takes writes again, not while it is full', async () => {
    const node = group.node(leader);
    let asked = false;
    void node.whenEngineRecoverable().then(() => {
      asked = true;
    });
    diskFull = true;
    expect(await node.probeDisk()).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(asked).toBe(false);
    diskFull = false;
    expect(await node.probeDisk()).toBe(false); // the engine still refuses writes
    await new Promise((r) => setImmediate(r));
    expect(asked).toBe(true);
  });
});
