/**
 * YCSB-style closed-loop load generator over Tessera's TypeScript client (`tessera bench` calls
 * `ycsbMain`). A load phase writes every key once; then workloads A (50/50 read/update), B (95/5)
 * and C (read-only) run for a fixed time each with uniform or zipfian keys, 100-byte values, and
 * 1, 16, 64, 256 concurrent clients (each one request at a time, back to back). A live progress line
 * on stderr; a final table and, with --json, one JSON line (`"tool":"ycsb","version":1`).
 *
 *   npx tsx src/bench/ycsb.ts [--url U] [--token T | --dir DIR] [--duration 10] [--keys 10000]
 *     [--clients 1,16,64,256] [--workloads a,b,c] [--dist uniform,zipfian] [--no-load] [--json]
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { limits } from '../lib/limits.js';
import { Prng } from '../lib/prng.js';
import { fmtInt, fmtMs, formatTable, ProgressLine } from './report.js';
import { Histogram } from './stats.js';
import { type Distribution, keyChooser, keyName } from './zipfian.js';
import {
  ensureTable,
  type KvClient,
  openClient,
  resolveToken,
  unreachableReason,
  serverArgOptions,
} from './tessera.js';

export type Workload = 'a' | 'b' | 'c';
export const readFractions: Record<Workload | 'load', number> = { load: 0, a: 0.5, b: 0.95, c: 1 };

export interface YcsbOptions {
  table: string;
  keys: number;
  durationS: number;
  clients: number[];
  workloads: Workload[];
  dists: Distribution[];
  valueBytes: number;
  load: boolean;
  loadClients: number;
  seed: number;
  /** Key prefix (before "user0000000042"). */
  prefix: string;
}

export interface YcsbResult {
  workload: Workload | 'load';
  dist: Distribution;
  clients: number;
  ops: number;
  reads: number;
  writes: number;
  errors: number;
  notFound: number;
  elapsedS: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  firstError?: string;
}

export const ycsbDefaults: YcsbOptions = {
  table: 'ycsb',
  keys: 10_000,
  durationS: 10,
  clients: [1, 16, 64, 256],
  workloads: ['a', 'b', 'c'],
  dists: ['uniform', 'zipfian'],
  valueBytes: 100,
  load: true,
  loadClients: 64,
  seed: 1,
  prefix: '',
};

/** Runs stop once this many requests failed and none succeeded: the server is not there. */
const errorsBeforeAbort = 1000;

interface RunState {
  hist: Histogram;
  reads: number;
  writes: number;
  errors: number;
  notFound: number;
  firstError: string | undefined;
  stop: boolean;
}

interface Phase {
  workload: Workload | 'load';
  dist: Distribution;
  clients: number;
}

async function one(
  client: KvClient,
  o: YcsbOptions,
  s: RunState,
  key: string,
  read: boolean,
  value: Uint8Array,
) {
  const t0 = performance.now();
  try {
    if (read) {
      s.reads++;
      if ((await client.get(o.table, key)) === undefined) s.notFound++;
    } else {
      s.writes++;
      await client.put(o.table, key, value);
    }
    s.hist.record((performance.now() - t0) * 1000);
  } catch (e) {
    s.errors++;
    s.firstError ??= e instanceof Error ? e.message : String(e);
    if (s.errors >= errorsBeforeAbort && s.hist.count === 0) s.stop = true;
  }
}

/** One closed-loop run: `clients` workers, each one request at a time, until time or keys run out. */
export async function runPhase(
  client: KvClient,
  o: YcsbOptions,
  phase: Phase,
  onProgress?: (elapsedS: number, ops: number) => void,
): Promise<YcsbResult> {
  const s: RunState = {
    hist: new Histogram(),
    reads: 0,
    writes: 0,
    errors: 0,
    notFound: 0,
    firstError: undefined,
    stop: false,
  };
  const value = new Uint8Array(o.valueBytes).fill(0x76);
  const readFraction = readFractions[phase.workload];
  const chooser = keyChooser(phase.dist, o.keys);
  const seedPrng = new Prng(o.seed);
  let nextKey = 0;
  const start = performance.now();
  const endMs = start + o.durationS * 1000;
  const worker = async (prng: Prng): Promise<void> => {
    while (!s.stop) {
      let k: number;
      if (phase.workload === 'load') {
        if (nextKey >= o.keys) return;
        k = nextKey++;
      } else {
        if (performance.now() >= endMs) return;
        k = chooser.next(prng);
      }
      await one(client, o, s, keyName(o.prefix, k), readFraction > 0 && prng.next() < readFraction, value);
    }
  };
  const ticker = setInterval(() => onProgress?.((performance.now() - start) / 1000, s.hist.count), 250);
  try {
    await Promise.all(Array.from({ length: phase.clients }, () => worker(seedPrng.fork())));
  } finally {
    clearInterval(ticker);
  }
  const elapsedS = (performance.now() - start) / 1000;
  const r: YcsbResult = {
    ...phase,
    ops: s.hist.count,
    reads: s.reads,
    writes: s.writes,
    errors: s.errors,
    notFound: s.notFound,
    elapsedS: round3(elapsedS),
    opsPerSec: Math.round(s.hist.count / elapsedS),
    p50Ms: round3(s.hist.percentile(50) / 1000),
    p99Ms: round3(s.hist.percentile(99) / 1000),
    maxMs: round3(s.hist.percentile(100) / 1000),
  };
  if (s.firstError !== undefined) r.firstError = s.firstError;
  return r;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function phaseLabel(p: Phase): string {
  return p.workload === 'load'
    ? `load c=${p.clients}`
    : `${p.workload.toUpperCase()} ${p.dist} c=${p.clients}`;
}

/** The load phase (if asked), then every workload × distribution × client count. */
export async function runYcsb(
  client: KvClient,
  o: YcsbOptions,
  progress = new ProgressLine(),
): Promise<YcsbResult[]> {
  const phases: Phase[] = [];
  if (o.load) phases.push({ workload: 'load', dist: 'uniform', clients: o.loadClients });
  for (const clients of o.clients) {
    for (const dist of o.dists) for (const workload of o.workloads) phases.push({ workload, dist, clients });
  }
  const results: YcsbResult[] = [];
  for (const [i, phase] of phases.entries()) {
    const label = `[${i + 1}/${phases.length}] ${phaseLabel(phase)}`;
    const r = await runPhase(client, o, phase, (el, ops) =>
      progress.update(
        `${label}  ${el.toFixed(0)}s  ${fmtInt(ops)} ops  ${fmtInt(ops / Math.max(el, 0.001))} ops/s`,
      ),
    );
    progress.clear();
    results.push(r);
    if (r.ops === 0 && r.errors > 0)
      throw new Error(`${phaseLabel(phase)}: every request failed: ${r.firstError}`);
  }
  return results;
}

export function ycsbTable(results: YcsbResult[]): string {
  const rows = results.map((r) => [
    r.workload === 'load' ? 'load' : r.workload.toUpperCase(),
    r.workload === 'load' ? '-' : r.dist,
    String(r.clients),
    fmtInt(r.opsPerSec),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    fmtInt(r.errors),
  ]);
  return formatTable(['workload', 'keys', 'clients', 'ops/s', 'p50 ms', 'p99 ms', 'errors'], rows);
}

function list<T extends string>(s: string, allowed: readonly T[], what: string): T[] {
  const items = s.split(',').map((x) => x.trim().toLowerCase());
  for (const x of items)
    if (!(allowed as readonly string[]).includes(x)) throw new Error(`bad ${what}: ${x}`);
  return items as T[];
}

/** `s` as an integer in [lo, hi]; throws naming `what` otherwise (command-line options). */
export function intIn(s: string, what: string, lo: number, hi: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < lo || n > hi)
    throw new Error(`${what} must be an integer in [${lo}, ${hi}]`);
  return n;
}

export function parseYcsbArgs(
  argv: string[],
): YcsbOptions & { url: string; token?: string; dir?: string; json: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...serverArgOptions,
      table: { type: 'string', default: ycsbDefaults.table },
      keys: { type: 'string', default: String(ycsbDefaults.keys) },
      duration: { type: 'string', default: String(ycsbDefaults.durationS) },
      clients: { type: 'string', default: ycsbDefaults.clients.join(',') },
      workloads: { type: 'string', default: ycsbDefaults.workloads.join(',') },
      dist: { type: 'string', default: ycsbDefaults.dists.join(',') },
      'value-bytes': { type: 'string', default: String(ycsbDefaults.valueBytes) },
      'no-load': { type: 'boolean', default: false },
      seed: { type: 'string', default: String(ycsbDefaults.seed) },
      json: { type: 'boolean', default: false },
    },
  });
  return {
    ...ycsbDefaults,
    url: values.url,
    ...(values.token === undefined ? {} : { token: values.token }),
    ...(values.dir === undefined ? {} : { dir: values.dir }),
    table: values.table,
    keys: intIn(values.keys, '--keys', 2, limits.benchKeysMax),
    durationS: intIn(values.duration, '--duration', 1, limits.benchDurationSMax),
    clients: values.clients.split(',').map((c) => intIn(c, '--clients', 1, limits.benchClientsMax)),
    workloads: list(values.workloads, ['a', 'b', 'c'] as const, 'workload'),
    dists: list(values.dist, ['uniform', 'zipfian'] as const, 'distribution'),
    valueBytes: intIn(values['value-bytes'], '--value-bytes', 0, limits.valueBytesMax),
    load: !values['no-load'],
    seed: intIn(values.seed, '--seed', 0, 0xffff_ffff),
    json: values.json,
  };
}

/** `tessera bench` and `npx tsx src/bench/ycsb.ts`: returns the exit status. */
export async function ycsbMain(argv: string[]): Promise<number> {
  const o = parseYcsbArgs(argv);
  const token = resolveToken(o.token, o.dir);
  const reason = await unreachableReason(o.url);
  if (reason !== undefined) throw new Error(`Tessera is not reachable: ${reason}`);
  if (token === undefined)
    throw new Error('no token: pass --token, set TESSERA_TOKEN, or --dir with admin.token');
  await ensureTable(o.url, token, o.table);
  const client = openClient(o.url, token, Math.max(o.loadClients, ...o.clients));
  try {
    const results = await runYcsb(client, o);
    console.log(ycsbTable(results));
    if (o.json) console.log(JSON.stringify({ tool: 'ycsb', version: 1, url: o.url, keys: o.keys, results }));
    return results.some((r) => r.errors > 0) ? 1 : 0;
  } finally {
    client.close();
  }
}

/** The CLI's role-module contract (src/cli/main.ts): `run(args)` resolves to the exit status. */
export const run = ycsbMain;

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ycsbMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`ycsb: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
