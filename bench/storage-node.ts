/**
 * Storage node RPC throughput: 3 storage nodes hosting one group and a request-role client, ALL IN
 * ONE PROCESS (one event loop does the work of 4 processes: a lower bound). Closed loop of C
 * concurrent kv.put (100-byte values) then kv.get, for a few seconds each.
 *   npx tsx bench/storage-node.ts [seconds=3]
 */
import { groupId, type NodeId, nodeId, shardId, tableId } from '../src/lib/ids.js';
import * as rpc from '../src/storage/rpc.js';
import { StorageKind } from '../src/storage/rpc.js';
import { StorageGroup } from '../test/storage/group-harness.js';

const seconds = Number(process.argv[2] ?? 3);
const G = groupId(1);
const S = shardId(1);
const ids = [nodeId(16), nodeId(17), nodeId(18)];

async function main(): Promise<void> {
  const g = await StorageGroup.start({ group: G, ids, tmpPrefix: 'tessera-bench-storage-' });
  const client = g.rm;
  await g.campaign(ids[0] as NodeId);
  const leader = await g.waitForLeader();
  await g.assignShard(leader, { shard: S, table: tableId(1), engine: 'lsm', catalogVersion: 1 });
  const target = { group: G, shard: S, epoch: 1, catalogVersion: 1, deadlineMs: 5000 };
  const value = new Uint8Array(100).fill(120);
  let n = 0;
  const put = () =>
    g.put(leader, S, new TextEncoder().encode(`k${n % 10_000}`), value, { client: 7n, number: ++n });
  const get = () =>
    client.request(
      leader,
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
  await g.close();
}

void main();
