/**
 * Three storage nodes in one process hosting one group, driven by a fake metadata manager (a
 * transport with role 'metadata' sending ctl.*) and a fake request manager (role 'request').
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keyspaceId } from '../../src/engine/types.js';
import { groupId, type NodeId, nodeId, type Seq, shardId, tableId, term } from '../../src/lib/ids.js';
import type { StorageNode } from '../../src/storage/node.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import { Transport } from '../../src/transport/index.js';
import { rejection } from '../support/rejection.js';
import { StorageGroup } from './group-harness.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const G = groupId(1);
const S = shardId(5);
const ids = [nodeId(16), nodeId(17), nodeId(18)];
// Generous: the 3 nodes share one event loop with the test, on a busy 2-core machine.
const timing = { heartbeatIntervalMs: 100, electionTimeoutMs: 1500, leaseDriftMarginMs: 200 };

describe('storage nodes: a group of 3 over the RPC', () => {
  let group: StorageGroup | undefined;
  let nodes: Map<NodeId, StorageNode>;
  let mm: Transport;
  let rm: Transport;
  let leader: NodeId;
  let reqNo = 0;
  let diskFull = false;
  const client = 0x1234_5678_9abc_def0n;

  const target = (epoch = 1) => ({ group: G, shard: S, epoch, catalogVersion: 3, deadlineMs: 2000 });
  const put = (
    to: NodeId,
    key: string,
    value: string,
    opts: { epoch?: number; n?: number; cond?: rpc.RpcCondition } = {},
  ) =>
    rm
      .request(
        to,
        StorageKind.kvPut,
        rpc.encodeKvPut({
          ...target(opts.epoch),
          key: enc(key),
          value: enc(value),
          condition: opts.cond ?? { type: 'none' },
          request: { client, number: opts.n ?? ++reqNo },
        }),
      )
      .then(rpc.decodeKvWriteResult);
  const get = (to: NodeId, key: string) =>
    rm
      .request(to, StorageKind.kvGet, rpc.encodeKvGet({ ...target(), key: enc(key) }))
      .then(rpc.decodeKvGetResult);
  const ctl = (to: NodeId, kind: number, payload: Uint8Array) =>
    (group as StorageGroup).ctl(to, kind, payload);
  const status = async (to: NodeId) =>
    rpc.decodeCtlStatusResult(await ctl(to, StorageKind.ctlStatus, rpc.encodeEmpty()));

  /** The group's leader among `among`; as the MM does, asks among[0] to campaign while there is none. */
  async function elect(among: NodeId[]): Promise<NodeId> {
    const campaign = rpc.encodeCtlCampaign({ group: G, minTerm: term(1) });
    for (let i = 0; i < 400; i++) {
      for (const id of among) {
        const r = (await status(id)).replicas.find((x) => x.group === G);
        if (r?.role === 'leader') return id;
      }
      if (i % 10 === 0)
        await ctl(among[0] as NodeId, StorageKind.ctlCampaign, campaign).catch(() => undefined);
      await sleep(50);
    }
    throw new Error('no leader');
  }

  beforeAll(async () => {
    const g = await StorageGroup.start({
      group: G,
      ids,
      tmpPrefix: 'tessera-storage-',
      node: { timing, diskProbe: async () => !diskFull },
    });
    group = g;
    ({ nodes, mm, rm } = g);
    leader = await elect(ids);
    await g.assignShard(leader, { shard: S, table: tableId(3), engine: 'lsm', catalogVersion: 3 });
  }, 30_000);

  afterAll(async () => {
    await group?.close();
  });

  beforeEach(async () => {
    leader = await elect([...nodes.keys()]);
  }, 30_000);

  it('writes and reads through the leader; a retry with the same id gets the first outcome', async () => {
    const a = await put(leader, 'apple', 'red');
    const got = await get(leader, 'apple');
    expect(got.value && dec(got.value)).toBe('red');
    expect(Buffer.from(got.seq as Seq).equals(Buffer.from(a.seq))).toBe(true);
    const n = ++reqNo;
    const first = await put(leader, 'pear', 'green', { n });
    const retry = await put(leader, 'pear', 'yellow', { n });
    expect(Buffer.from(retry.seq).equals(Buffer.from(first.seq))).toBe(true);
    expect(dec((await get(leader, 'pear')).value as Uint8Array)).toBe('green');
    expect(await get(leader, 'missing')).toEqual({ value: null, seq: null });
  });

  it('conditions, deletes and scans', async () => {
    const v1 = await put(leader, 'k1', 'one');
    const e = await rejection(put(leader, 'k1', 'x', { cond: { type: 'ifNoneMatch' } }));
    expect(e.code).toBe('CONDITION_FAILED');
    expect(e.detail?.currentSeq).toBe(Buffer.from(v1.seq).toString('hex'));
    await put(leader, 'k1', 'two', { cond: { type: 'ifMatch', seq: v1.seq } });
    await put(leader, 'k2', 'two');
    await put(leader, 'k3', 'three');
    const del = rpc.encodeKvDelete({
      ...target(),
      key: enc('k2'),
      condition: { type: 'none' },
      request: { client, number: ++reqNo },
    });
    rpc.decodeKvWriteResult(await rm.request(leader, StorageKind.kvDelete, del));
    const again = rpc.encodeKvDelete({
      ...target(),
      key: enc('k2'),
      condition: { type: 'none' },
      request: { client, number: ++reqNo },
    });
    expect((await rejection(rm.request(leader, StorageKind.kvDelete, again))).code).toBe('KEY_NOT_FOUND');
    const scan = (start: string, limit: number) =>
      rm
        .request(
          leader,
          StorageKind.kvScan,
          rpc.encodeKvScan({ ...target(), start: enc(start), end: enc('k9'), limit, bytesMax: 1 << 20 }),
        )
        .then(rpc.decodeKvScanResult);
    const page1 = await scan('k', 1);
    expect(page1.items.map((i) => `${dec(i.key)}=${dec(i.value)}`)).toEqual(['k1=two']);
    expect(dec(page1.next as Uint8Array)).toBe('k3');
    const page2 = await scan('k3', 10);
    expect(page2.items.map((i) => dec(i.key))).toEqual(['k3']);
    expect(page2.next).toBeNull();
  });

  it('scans page through many rows and stop at bytesMax with a next key', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `p${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50)
      await Promise.all(keys.slice(i, i + 50).map((k) => put(leader, k, 'v'.repeat(100))));
    const scan = (start: string, limit: number, bytesMax: number) =>
      rm
        .request(
          leader,
          StorageKind.kvScan,
          rpc.encodeKvScan({ ...target(), start: enc(start), end: enc('p1'), limit, bytesMax }),
        )
        .then(rpc.decodeKvScanResult);
    const all = await scan('p', 1000, 1 << 20);
    expect(all.items.map((i) => dec(i.key))).toEqual(keys);
    expect(all.next).toBeNull();
    const some = await scan('p', 1000, 1000);
    expect(some.items.length).toBe(10); // 10 x 105 bytes >= 1000
    expect(dec(some.next as Uint8Array)).toBe('p0010');
  });

  it('a follower answers NOT_LEADER with a hint of the leader and its address', async () => {
    const follower = ids.find((id) => id !== leader) as NodeId;
    const e = await rejection(get(follower, 'apple'));
    expect(e.code).toBe('NOT_LEADER');
    expect(e.detail?.leader).toBe(leader);
    expect(e.detail?.address).toBe((nodes.get(leader) as StorageNode).address);
    expect((await rejection(put(follower, 'x', 'y'))).code).toBe('NOT_LEADER');
  });

  it('a wrong epoch answers STALE_SHARD and writes nothing', async () => {
    const e = await rejection(put(leader, 'stale', 'v', { epoch: 2 }));
    expect(e.code).toBe('STALE_SHARD');
    expect(e.detail?.epoch).toBe(1);
    expect(await get(leader, 'stale')).toEqual({ value: null, seq: null });
    const other = { ...target(), shard: shardId(6), key: enc('a') };
    expect((await rejection(rm.request(leader, StorageKind.kvGet, rpc.encodeKvGet(other)))).code).toBe(
      'STALE_SHARD',
    );
    const old = { ...target(), catalogVersion: 2, key: enc('a') };
    expect((await rejection(rm.request(leader, StorageKind.kvGet, rpc.encodeKvGet(old)))).code).toBe(
      'BAD_REQUEST_MANAGER',
    );
  });

  it('refuses an unauthenticated client, a non-request role on kv.*, and ctl.* from a request manager', async () => {
    const stranger = await Transport.start({
      self: { nodeId: nodeId(41), role: 'request' },
      secret: new Uint8Array(randomBytes(32)),
      log: { info() {}, warn() {} },
    });
    try {
      const [host, port] = (nodes.get(leader) as StorageNode).address.split(':');
      stranger.setPeer(leader, { host: host as string, port: Number(port) });
      const e = await rejection(
        stranger.request(leader, StorageKind.kvGet, rpc.encodeKvGet({ ...target(), key: enc('apple') }), {
          timeoutMs: 500,
        }),
      );
      expect(['UNAVAILABLE', 'TIMEOUT']).toContain(e.code);
    } finally {
      await stranger.close();
    }
    const asStorage = await rejection(
      mm.request(leader, StorageKind.kvGet, rpc.encodeKvGet({ ...target(), key: enc('apple') })),
    );
    expect(asStorage.code).toBe('BAD_REQUEST_MANAGER');
    const ctlFromRm = await rejection(
      rm.request(leader, StorageKind.ctlDropGroup, rpc.encodeCtlGroup({ group: G })),
    );
    expect(ctlFromRm.code).toBe('FORBIDDEN');
  });

  it('deep check commits a no-op; the followers apply every write', async () => {
    const check = rpc.decodeCtlCheckResult(
      await ctl(leader, StorageKind.ctlCheck, rpc.encodeCtlGroup({ group: G })),
    );
    expect(check.diskOk).toBe(true);
    expect(check.index).toBeGreaterThan(1);
    for (let i = 0; i < 200; i++) {
      const applied = await Promise.all(ids.map(async (id) => (await status(id)).replicas[0]?.applied ?? 0));
      if (applied.every((a) => a >= check.index)) return;
      await sleep(20);
    }
    throw new Error('followers did not apply the no-op');
  });

  it('a full disk refuses writes with DISK_FULL while reads go on', async () => {
    diskFull = true;
    const check = rpc.decodeCtlCheckResult(
      await ctl(leader, StorageKind.ctlCheck, rpc.encodeCtlGroup({ group: G })),
    );
    expect(check.diskOk).toBe(false);
    expect((await rejection(put(leader, 'full', 'x'))).code).toBe('DISK_FULL');
    expect(dec((await get(leader, 'apple')).value as Uint8Array)).toBe('red');
    diskFull = false;
    await (nodes.get(leader) as StorageNode).probeDisk();
    await put(leader, 'full', 'x');
    expect(dec((await get(leader, 'full')).value as Uint8Array)).toBe('x');
  });

  it('dropTable through the group deletes the table on every replica', async () => {
    const t2 = { group: G, shard: shardId(7), epoch: 1, catalogVersion: 4, deadlineMs: 2000 };
    await group?.assignShard(leader, {
      shard: t2.shard,
      table: tableId(9),
      engine: 'btree',
      catalogVersion: 4,
    });
    const w = rpc.encodeKvPut({
      ...t2,
      key: enc('doomed'),
      value: enc('v'),
      condition: { type: 'none' },
      request: { client, number: ++reqNo },
    });
    await rm.request(leader, StorageKind.kvPut, w);
    const drop = rpc.encodeCtlPropose({ group: G, entry: { type: 'dropTable', table: tableId(9) } });
    const { index } = rpc.decodeIndexResult(await ctl(leader, StorageKind.ctlPropose, drop));
    const e = await rejection(
      rm.request(leader, StorageKind.kvGet, rpc.encodeKvGet({ ...t2, key: enc('doomed') })),
    );
    expect(e.code).toBe('TABLE_NOT_FOUND');
    for (const n of nodes.values()) {
      for (let i = 0; i < 200 && ((await status(n.id)).replicas[0]?.applied ?? 0) < index; i++)
        await sleep(10);
      const btree = n.engines.get('btree');
      expect(await btree?.scan(keyspaceId(7), { includeTombstones: true })).toEqual([]);
    }
    // The other table is untouched.
    expect(dec((await get(leader, 'apple')).value as Uint8Array)).toBe('red');
  });

  it('after the leader stops, another replica campaigns and serves the acknowledged data', async () => {
    await group?.stopNode(leader);
    const rest = ids.filter((id) => id !== leader);
    leader = await elect(rest);
    expect(dec((await get(leader, 'apple')).value as Uint8Array)).toBe('red');
    expect(dec((await get(leader, 'k1')).value as Uint8Array)).toBe('two');
    await put(leader, 'after', 'failover');
    expect(dec((await get(leader, 'after')).value as Uint8Array)).toBe('failover');
  }, 20_000);
});
