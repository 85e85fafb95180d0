/**
 * Storage node RPC throughput: 3 storage nodes hosting one group and a request-role client, ALL IN
 * ONE PROCESS (one event loop does the work of 4 processes: a lower bound). Closed loop of C
 * concurrent kv.put (100-byte values) then kv.get, for a few seconds each.
 *   npx tsx bench/storage-node.ts [seconds=3]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { groupId, type NodeId, nodeId, shardId, tableId, term } from '../src/lib/ids.js';
import { createLogger } from '../src/lib/log.js';
import { StorageNode } from '../src/storage/node.js';
import * as rpc from '../src/storage/rpc.js';
import { StorageKind } from '../src/storage/rpc.js';
import { Transport } from '../src/transport/index.js';

const seconds = Number(process.argv[2] ?? 3);
const G = groupId(1);
const S = shardId(1);
const ids = [nodeId(16), nodeId(17), nodeId(18)];
const quiet = createLogger('storage', { level: 'error' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'tessera-bench-storage-'));
  const secret = new Uint8Array(randomBytes(32));
  const nodes: StorageNode[] = [];
  for (const id of ids)
    nodes.push(
      await StorageNode.start({
        dir: path.join(root, `n${id}`),
        listen: { host: '127.0.0.1', port: 0 },
        secret,
        mm: new Map(),
        nodeId: id,
        logger: quiet,
      }),
    );
  const mm = await Transport.start({ self: { nodeId: nodeId(1), role: 'metadata' }, secret });
  const client = await Transport.start({ self: { nodeId: nodeId(40), role: 'request' }, secret });
  const addresses = nodes.map((n) => ({ node: n.id, address: n.address }));
  for (const a of addresses) {
    const [host, port] = a.address.split(':');
    mm.setPeer(a.node, { host: host as string, port: Number(port) });
    client.setPeer(a.node, { host: host as string, port: Number(port) });
  }
  const hostGroup = rpc.encodeCtlHostGroup({
    group: G,
    membership: { voters: ids, learners: [] },
    addresses,
    mode: 'directed',
  });
  for (const id of ids) await mm.request(id, StorageKind.ctlHostGroup, hostGroup);
  await mm.request(
    ids[0] as NodeId,
    StorageKind.ctlCampaign,
    rpc.encodeCtlCampaign({ group: G, minTerm: term(1) }),
  );
  let leader: NodeId | undefined;
  while (leader === undefined) {
    await sleep(50);
    leader = nodes.find((n) => n.host.status(G)?.role === 'leader')?.id;
  }
  const entry = {
    type: 'assignShard' as const,
    shard: S,
    table: tableId(1),
    engine: 'lsm' as const,
    start: new Uint8Array(0),
    end: new Uint8Array(0),
    epoch: 1,
    catalogVersion: 1,
  };
  await mm.request(leader, StorageKind.ctlPropose, rpc.encodeCtlPropose({ group: G, entry }));
  const target = { group: G, shard: S, epoch: 1, catalogVersion: 1, deadlineMs: 5000 };
  const value = new Uint8Array(100).fill(120);
  let n = 0;
  const put = () =>
    client.request(
      leader as NodeId,
      StorageKind.kvPut,
      rpc.encodeKvPut({
        ...target,
        key: new TextEncoder().encode(`k${n % 10_000}`),
        value,
        condition: { type: 'none' },
        request: { client: 7n, number: ++n },
      }),
    );
  const get = () =>
    client.request(
      leader as NodeId,
      StorageKind.kvGet,
      rpc.encodeKvGet({ ...target, key: new TextEncoder().encode(`k${Math.floor(Math.random() * 10_000)}`) }),
    );

  async function run(name: string, op: () => Promise<unknown>, concurrency: number): Promise<void> {
    const lat: number[] = [];
    const end = performance.now() + seconds * 1000;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const s = performance.now();
          await op();
          lat.push(performance.now() - s);
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    lat.sort((a, b) => a - b);
    const q = (p: number) => (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0).toFixed(2);
    const cpuUs = (cpu.user + cpu.system) / lat.length;
    console.log(
      `${name.padEnd(4)} c=${String(concurrency).padStart(3)}  ${Math.round(lat.length / elapsed)
        .toString()
        .padStart(
          6,
        )} ops/s  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  cpu ${cpuUs.toFixed(0)} us/op (all 4 roles)`,
    );
  }

  const only = process.env.BENCH_ONLY; // e.g. "put:1" (profiling)
  const plan: [string, number][] = only
    ? [[only.split(':')[0] as string, Number(only.split(':')[1])]]
    : [
        ['put', 1],
        ['put', 16],
        ['put', 64],
        ['put', 256],
        ['get', 1],
        ['get', 64],
      ];
  for (const [name, c] of plan) await run(name, name === 'put' ? put : get, c);
  await client.close();
  await mm.close();
  for (const node of nodes) await node.close();
  await rm(root, { recursive: true, force: true });
}

void main();
