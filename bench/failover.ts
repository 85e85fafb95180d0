/**
 * Failover of a replication group on real processes (issue 4's control-plane target: writes resume
 * within 2 s of a leader's kill -9). Starts `tessera dev` (3 MM, 2 groups x 3), runs a steady write
 * load on one table through the request manager, and `--rounds` times (default 20): waits until the
 * group is healed (the previous victim restarted by dev, every replica caught up), kill -9s the
 * group's leader, and measures the time from the kill to the first successful write invoked after
 * it. Prints each round, then p50 / p99 / max (nearest rank); `--json` prints one JSON line.
 *
 *   npm run bench:failover -- [--rounds N] [--writers N] [--json] [--keep]
 *
 * --keep leaves the cluster directory (DIR/logs; run with TESSERA_LOG_LEVEL=info for campaigns).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentile } from '../src/bench/stats.js';
import { TesseraClient } from '../src/client/client.js';
import { isTesseraError } from '../src/lib/errors.js';
import { ChaosCluster, sleep } from '../test/e2e/chaos-cluster.js';

interface Options {
  rounds: number;
  writers: number;
  json: boolean;
  /** Keep the cluster directory (logs) instead of deleting it. */
  keep: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = { rounds: 20, writers: 4, json: false, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--rounds') o.rounds = Number(argv[++i]);
    else if (a === '--writers') o.writers = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 1000) throw new Error('--rounds 1..1000');
  if (!Number.isInteger(o.writers) || o.writers < 1 || o.writers > 64) throw new Error('--writers 1..64');
  return o;
}

/** The steady write load: each writer puts in a loop; remembers successful writes' start/end. */
class Load {
  private running = true;
  private readonly loops: Promise<void>[];
  private readonly clients: TesseraClient[] = [];
  /** (start, end) of recent successful writes, performance.now() ms; bounded. */
  private oks: { start: number; end: number }[] = [];
  writes = 0;
  errors = 0;

  constructor(url: string, token: string, writers: number) {
    for (let i = 0; i < writers; i++)
      this.clients.push(new TesseraClient({ url, token, deadlineMs: 10_000 }));
    this.loops = this.clients.map((c, i) => this.loop(c, i));
  }

  private async loop(c: TesseraClient, i: number): Promise<void> {
    for (let n = 0; this.running; n++) {
      const start = performance.now();
      try {
        await c.put('failover', `w${i}-${n % 100}`, `v${n}`);
        this.writes++;
        this.oks.push({ start, end: performance.now() });
        if (this.oks.length > 10_000) this.oks = this.oks.slice(-1_000);
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        this.errors++;
        await sleep(5);
      }
    }
  }

  /** Completion time of the first successful write invoked at or after `t`, if any yet. */
  firstOkAfter(t: number): number | undefined {
    let best: number | undefined;
    for (const w of this.oks) if (w.start >= t && (best === undefined || w.end < best)) best = w.end;
    return best;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
  }
}

async function round(
  c: ChaosCluster,
  load: Load,
): Promise<{ ms: number; term: number; leader: number; at: string }> {
  await c.waitConverged(60_000);
  const g = await c.waitLeader('failover');
  const leader = g.leader as number;
  const pid = c.pidOf(leader, 'storage');
  await sleep(500); // steady load on the healed group
  const t = performance.now();
  const at = new Date().toISOString();
  c.kill9(pid);
  let resumed: number | undefined;
  const end = t + 60_000;
  while ((resumed = load.firstOkAfter(t)) === undefined) {
    if (performance.now() > end) throw new Error('writes did not resume within 60 s');
    await sleep(5);
  }
  await c.waitRestarted(leader, 'storage', pid, 30_000);
  return { ms: resumed - t, term: g.term, leader, at };
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-failover-'));
  let c: ChaosCluster | undefined;
  let load: Load | undefined;
  const say = (s: string): void => {
    if (!o.json) process.stdout.write(`${s}\n`);
  };
  try {
    c = await ChaosCluster.start({ dir, groups: 2, spares: 0, replaceAfterS: 600, readyTimeoutMs: 120_000 });
    await c.client.createTable('failover', { engine: 'btree' });
    load = new Load(c.url, c.token, o.writers);
    const samples: number[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      const res = await round(c, load);
      samples.push(res.ms);
      say(
        `kill ${r} at ${res.at}: leader ${res.leader} (term ${res.term}) -> writes resumed after ${res.ms.toFixed(0)} ms`,
      );
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const out = {
      bench: 'failover',
      version: 1,
      kills: samples.length,
      p50Ms: Math.round(percentile(sorted, 50)),
      p99Ms: Math.round(percentile(sorted, 99)),
      maxMs: Math.round(sorted[sorted.length - 1] ?? 0),
      over2s: samples.filter((s) => s > 2_000).length,
      writes: load.writes,
      writeErrors: load.errors,
      samplesMs: samples.map((s) => Math.round(s)),
    };
    if (o.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else
      say(
        `failover over ${out.kills} kills: p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms, max ${out.maxMs} ms ` +
          `(${out.over2s} over 2 s); ${out.writes} writes, ${out.writeErrors} errors`,
      );
  } finally {
    await load?.stop();
    await c?.stop();
    if (o.keep) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
