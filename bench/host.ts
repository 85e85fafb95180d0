/**
 * Group host micro-benchmark: 3 GroupHosts in one process (real logs with fsync in temp dirs, real
 * TCP on loopback), the in-memory state machine, C concurrent proposers of one command each, for
 * D seconds, over G groups (all led by node 1). Prints throughput, latency and fsyncs.
 * Usage: npx tsx bench/host.ts [groups=1] [concurrency=64] [seconds=3]
 */
import { memoryCommand } from '../src/host/memory-sm.js';
import { type GroupId, term } from '../src/lib/ids.js';
import { Cluster, members } from '../test/host/harness.js';

const groups = Number(process.argv[2] ?? 1);
const concurrency = Number(process.argv[3] ?? 64);
const seconds = Number(process.argv[4] ?? 3);

function appendCount(text: string, node: number): number {
  const m = new RegExp(`tessera_host_log_append_seconds_count\\{node="${node}"\\} (\\d+)`).exec(text);
  return Number(m?.[1] ?? 0);
}

async function main(): Promise<void> {
  const c = await Cluster.start(3);
  try {
    const gs: GroupId[] = [];
    for (let g = 1; g <= groups; g++) gs.push(await c.addGroup(g, members(1, 2, 3), 'directed'));
    for (const g of gs) c.host(1).campaign(g, term(0));
    for (const g of gs) await c.leader(g);
    const lat: number[] = [];
    const appends0 = appendCount(c.node(1).registry.expose(), 1);
    const end = performance.now() + seconds * 1000;
    let n = 0;
    const worker = async (w: number): Promise<void> => {
      const g = gs[w % gs.length]!;
      while (performance.now() < end) {
        const t0 = performance.now();
        const [o] = await c.host(1).propose(g, [memoryCommand(`k${w}-${n++ % 1000}`, 'value-0123456789')]);
        if (!o!.ok) throw o!.error;
        lat.push(performance.now() - t0);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
    const el = (performance.now() - t0) / 1000;
    const appends = appendCount(c.node(1).registry.expose(), 1) - appends0;
    lat.sort((a, b) => a - b);
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!.toFixed(2);
    console.log(
      `groups=${groups} concurrency=${concurrency}: ${(lat.length / el).toFixed(0)} commits/s, ` +
        `latency p50 ${pct(0.5)} ms p99 ${pct(0.99)} ms, leader log appends ${appends} ` +
        `(${(lat.length / Math.max(1, appends)).toFixed(1)} commands per append)`,
    );
  } finally {
    await c.close();
  }
}

await main();
