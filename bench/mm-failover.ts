/**
 * Leader failover through the metadata manager, with default timings (heartbeats 500 ms, 3 missed,
 * election timeout 1.5 s): 3 MM nodes and 4 storage nodes in ONE process (so a stop is a close(),
 * which drops the TCP connections as kill -9 would, but shares the event loop). Each round stops a
 * group's leader and measures how long until a write succeeds on the new leader; then restarts the
 * stopped node from its directory. Prints p50 / p99 / max.
 *
 *   npx tsx bench/mm-failover.ts [ROUNDS=20]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTesseraError } from '../src/lib/errors.js';
import { type GroupId, type NodeId, nodeId, shardId } from '../src/lib/ids.js';
import { createLogger } from '../src/lib/log.js';
import { MmClient } from '../src/metadata/client.js';
import { MetadataNode } from '../src/metadata/node.js';
import { provisionalNodeId } from '../src/metadata/rpc.js';
import { StorageNode } from '../src/storage/node.js';
import { encodeKvPut, StorageKind } from '../src/storage/rpc.js';
import { type PeerAddress, Transport } from '../src/transport/index.js';

const rounds = Number(process.argv[2] ?? 20);
const quiet = createLogger('bench', { level: 'error' });
const quietT = { info: () => {}, warn: () => {} };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'tessera-failover-'));
  const secret = new Uint8Array(randomBytes(32));
  const members = new Map<NodeId, PeerAddress>();
  for (let i = 1; i <= 3; i++) members.set(nodeId(i), { host: '127.0.0.1', port: await freePort() });
  const mms: MetadataNode[] = [];
  for (const [id, listen] of members) {
    mkdirSync(join(root, `mm${id}`));
    mms.push(
      await MetadataNode.start({
        id,
        dir: join(root, `mm${id}`),
        listen,
        members,
        secret,
        groupsTarget: 1,
        logger: quiet,
      }),
    );
  }
  const storage = new Map<NodeId, StorageNode>();
  const dirs = new Map<NodeId, string>();
  const startStorage = async (dir: string, port = 0): Promise<StorageNode> => {
    const s = await StorageNode.start({
      dir,
      listen: { host: '127.0.0.1', port },
      secret,
      mm: members,
      logger: quiet,
    });
    storage.set(s.id, s);
    dirs.set(s.id, dir);
    return s;
  };
  for (let i = 1; i <= 4; i++) await startStorage(join(root, `s${i}`));
  const prov = await Transport.start({
    self: { nodeId: provisionalNodeId, role: 'request' },
    secret,
    log: quietT,
  });
  const reg = await new MmClient({ transport: prov, members }).call('register', {
    role: 'request',
    nodeKey: 'bench',
    address: '127.0.0.1:1',
    pid: process.pid,
    capacity: { replicasMax: 0, diskBytes: 0 },
  });
  const t = await Transport.start({ self: { nodeId: reg.node, role: 'request' }, secret, log: quietT });
  const mm = new MmClient({ transport: t, members, deadlineMs: 30_000 });
  const leaderMm = (): MetadataNode => mms.find((m) => m.isLeader) as MetadataNode;
  for (;;) {
    const g = [...(leaderMm()?.catalog.state.groups.values() ?? [])][0];
    if (g?.leader !== null && g !== undefined) break;
    await sleep(100);
  }
  const table = (await mm.call('createTable', { name: 'F', engine: 'btree' })).table;
  const shard = table.shards[0]!;
  let n = 0;
  const put = async (leader: NodeId, group: GroupId): Promise<void> => {
    const s = storage.get(leader);
    if (s === undefined) throw new Error('gone');
    t.setPeer(leader, s.transport.address!);
    await t.request(
      leader,
      StorageKind.kvPut,
      encodeKvPut({
        group,
        shard: shardId(shard.shard),
        epoch: shard.epoch,
        catalogVersion: 1e9,
        deadlineMs: 1000,
        key: Buffer.from(`k${n}`),
        value: Buffer.from('v'),
        condition: { type: 'none' },
        request: { client: 9n, number: ++n },
      }),
      { timeoutMs: 1000 },
    );
  };
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const g = leaderMm().catalog.group(shard.group)!;
    const old = g.leader!;
    await put(old, g.id);
    const port = storage.get(old)!.transport.address!.port;
    const t0 = performance.now();
    await storage.get(old)!.close();
    storage.delete(old);
    for (;;) {
      const now = leaderMm()?.catalog.group(g.id);
      // Try every live member: the new leader accepts, the others answer NOT_LEADER.
      const ok = await Promise.any(
        [...storage.keys()]
          .filter((id) => now?.members.some((m) => m.node === id))
          .map((id) => put(id, g.id)),
      ).then(
        () => true,
        () => false,
      );
      if (ok) break;
      await sleep(20);
    }
    const ms = performance.now() - t0;
    times.push(ms);
    console.log(`round ${r + 1}: writes resumed after ${ms.toFixed(0)} ms`);
    await startStorage(dirs.get(old)!, port);
    await sleep(3000); // let it catch up and the MM see it live again
  }
  times.sort((a, b) => a - b);
  const q = (p: number): number => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
  console.log(
    `leader failover, ${times.length} rounds: p50 ${q(0.5).toFixed(0)} ms, p99 ${q(0.99).toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms`,
  );
  await t.close();
  await prov.close();
  for (const s of storage.values()) await s.close();
  for (const m of mms) await m.close();
  rmSync(root, { recursive: true, force: true });
  void isTesseraError;
}

await main();
