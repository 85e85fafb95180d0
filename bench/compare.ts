/**
 * `npm run bench`: Tessera vs etcd in one run, each driven by its most efficient client so that the
 * servers are compared, not the clients: etcd (3 members on loopback, default fsync durability) by
 * the Go loadgen on clientv3, Tessera's HTTP API by wrk. For each client count (16, 64, 256): puts
 * of 100-byte values on uniform random keys; at 64 clients: linearizable gets of loaded keys.
 * Prints a table (ops/s, p50/p99, ratio Tessera/etcd), a live progress line, and with --json a last
 * JSON line (`"tool":"compare","version":1`). If Tessera is not reachable it runs the etcd side only.
 * Both systems get the same unmeasured warm-up (--warmup seconds of puts before the first measured
 * put run, as many of gets before the measured gets): Tessera's processes are fresh Node processes
 * whose first seconds go to the JIT compiler, and a benchmark compares steady states.
 * The two systems take turns case by case (etcd put c=16, Tessera put c=16, ...; which goes first
 * alternates by round), each case --rounds times per system, combined into one figure: the
 * machine's speed drifts over minutes, and adjacent runs compare the servers better than all of one
 * system followed by all of the other. Both clusters stay up while the other is measured.
 * In the same run, the YCSB generator over Tessera's own TypeScript client (src/client): workloads
 * A, B and C, uniform and zipfian keys, 1/16/64/256 clients, on the keys loaded for the gets.
 *
 *   npm run bench -- [--url U] [--token T | --dir DIR] [--duration 10] [--keys 10000]
 *     [--clients 16,64,256] [--read-clients 64] [--warmup 10] [--rounds 2] [--skip-etcd]
 *     [--skip-tessera] [--json] [--ycsb-duration 5] [--ycsb-clients 1,16,64,256] [--skip-ycsb]
 */
import { parseArgs } from 'node:util';
import { limits } from '../src/lib/limits.js';
import { ensureLoadgen, restartEtcd, runLoadgen, startEtcd, stopEtcd } from './etcd/cluster.js';
import type { Measurement } from './lib/parse.js';
import { fmtInt, fmtMs, formatTable, ProgressLine } from '../src/bench/report.js';
import {
  ensureTable,
  type KvClient,
  openClient,
  resolveToken,
  unreachableReason,
  serverArgOptions,
} from '../src/bench/tessera.js';
import { runWrk } from './lib/wrk.js';
import { intIn, runPhase, runYcsb, ycsbDefaults, type YcsbResult, ycsbTable } from '../src/bench/ycsb.js';

interface CompareOptions {
  url: string;
  token: string | undefined;
  durationS: number;
  keys: number;
  clients: number[];
  readClients: number;
  skipEtcd: boolean;
  skipTessera: boolean;
  json: boolean;
  etcdPort: number;
  table: string;
  threads: number;
  ycsbDurationS: number;
  ycsbClients: number[];
  skipYcsb: boolean;
  warmupS: number;
  /** Runs of each case per system, taking turns (their figures are combined). */
  rounds: number;
}

export interface Row {
  op: 'put' | 'get';
  clients: number;
  etcd: Measurement | undefined;
  tessera: Measurement | undefined;
}

function parseOptions(argv: string[]): CompareOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...serverArgOptions,
      duration: { type: 'string', default: '10' },
      keys: { type: 'string', default: '10000' },
      clients: { type: 'string', default: '16,64,256' },
      'read-clients': { type: 'string', default: '64' },
      'skip-etcd': { type: 'boolean', default: false },
      'skip-tessera': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'etcd-port': { type: 'string', default: '23790' },
      table: { type: 'string', default: 'bench' },
      threads: { type: 'string', default: '2' },
      'ycsb-duration': { type: 'string', default: '5' },
      'ycsb-clients': { type: 'string', default: ycsbDefaults.clients.join(',') },
      'skip-ycsb': { type: 'boolean', default: false },
      warmup: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '2' },
    },
  });
  return {
    url: values.url,
    token: resolveToken(values.token, values.dir),
    durationS: intIn(values.duration, '--duration', 1, limits.benchDurationSMax),
    keys: intIn(values.keys, '--keys', 2, limits.benchKeysMax),
    clients: values.clients.split(',').map((c) => intIn(c, '--clients', 1, limits.benchClientsMax)),
    readClients: intIn(values['read-clients'], '--read-clients', 1, limits.benchClientsMax),
    skipEtcd: values['skip-etcd'],
    skipTessera: values['skip-tessera'],
    json: values.json,
    etcdPort: intIn(values['etcd-port'], '--etcd-port', 1024, 65_000),
    table: values.table,
    threads: intIn(values.threads, '--threads', 1, 64),
    ycsbDurationS: intIn(values['ycsb-duration'], '--ycsb-duration', 1, limits.benchDurationSMax),
    ycsbClients: values['ycsb-clients']
      .split(',')
      .map((c) => intIn(c, '--ycsb-clients', 1, limits.benchClientsMax)),
    skipYcsb: values['skip-ycsb'],
    warmupS: intIn(values.warmup, '--warmup', 0, limits.benchDurationSMax),
    rounds: intIn(values.rounds, '--rounds', 1, limits.benchRoundsMax),
  };
}

type Progress = ProgressLine;

/** The puts' warm-up runs at the first measured client count, on both systems. */
const warmClients = (o: CompareOptions): number => o.clients[0] ?? 16;

function ticker(progress: Progress, label: string, durationS: number) {
  return (elapsedS: number, opsPerSec?: number): void => {
    const rate = opsPerSec === undefined ? '' : `  ${fmtInt(opsPerSec)} ops/s`;
    progress.update(`${label}  ${elapsedS.toFixed(0)}/${durationS}s${rate}`);
  };
}

/**
 * One system under test, phase by phase, so that the two systems' runs can interleave: the
 * machine's speed drifts over minutes (other tenants, thermal), and back-to-back runs of the same
 * case compare the servers better than all of one system, then all of the other.
 */
interface Side {
  warmPuts(): Promise<void>;
  put(clients: number): Promise<Measurement>;
  /** Writes every key once, then prepares the reads (warm-up; etcd: a restart first). */
  load(): Promise<void>;
  get(): Promise<Measurement>;
  close(): Promise<void>;
}

async function etcdSide(o: CompareOptions, progress: Progress): Promise<Side> {
  progress.update('etcd: building the loadgen if missing or stale');
  await ensureLoadgen();
  progress.update('etcd: starting 3 members');
  const c = await startEtcd(o.etcdPort);
  const run = (workload: 'put' | 'c', clients: number, label: string, as?: 'get'): Promise<Measurement> => {
    const tick = ticker(progress, label, o.durationS);
    const onProgress = (p: { elapsedS: number; opsPerSec?: number }) => tick(p.elapsedS, p.opsPerSec);
    return runLoadgen(c, { workload, clients, durationS: o.durationS, keys: o.keys, onProgress }, as);
  };
  return {
    async warmPuts() {
      if (o.warmupS === 0) return;
      progress.update(`etcd: warming up (${o.warmupS} s of puts, not measured)`);
      await runLoadgen(c, { workload: 'put', clients: warmClients(o), durationS: o.warmupS, keys: o.keys });
    },
    put: (clients) => run('put', clients, `etcd put c=${clients}`),
    async load() {
      progress.update('etcd: loading the key space');
      await runLoadgen(c, { workload: 'load', clients: 64, durationS: o.durationS, keys: o.keys });
      // Debian's etcd 3.4.23 serves reads slowly after big write bursts until restarted.
      progress.update('etcd: restarting before the read workload');
      await restartEtcd(c);
      if (o.warmupS > 0) {
        progress.update(`etcd: warming up (${o.warmupS} s of gets, not measured)`);
        await runLoadgen(c, { workload: 'c', clients: o.readClients, durationS: o.warmupS, keys: o.keys });
      }
    },
    get: () => run('c', o.readClients, `etcd get c=${o.readClients}`, 'get'),
    async close() {
      progress.update('etcd: stopping');
      await stopEtcd(c);
    },
  };
}

async function tesseraSide(
  o: CompareOptions,
  token: string,
  progress: Progress,
): Promise<Side & { client: KvClient }> {
  await ensureTable(o.url, token, o.table);
  const wrk = { url: o.url, token, table: o.table, keys: o.keys, durationS: o.durationS, threads: o.threads };
  const warm = { ...wrk, durationS: o.warmupS };
  const client = openClient(o.url, token, Math.max(64, ...o.ycsbClients));
  return {
    client,
    async warmPuts() {
      if (o.warmupS === 0) return;
      progress.update(`tessera: warming up (${o.warmupS} s of puts, not measured)`);
      await runWrk({ ...warm, mode: 'put', clients: warmClients(o) });
    },
    put: (clients) =>
      runWrk({
        ...wrk,
        mode: 'put',
        clients,
        onTick: ticker(progress, `tessera put c=${clients}`, o.durationS),
      }),
    async load() {
      progress.update('tessera: loading the key space');
      const load = await runPhase(
        client,
        { ...ycsbBase(o), durationS: limits.benchDurationSMax },
        { workload: 'load', dist: 'uniform', clients: 64 },
      );
      if (load.errors > 0)
        throw new Error(`tessera load phase: ${load.errors} errors, first: ${load.firstError}`);
      if (o.warmupS > 0) {
        progress.update(`tessera: warming up (${o.warmupS} s of gets, not measured)`);
        await runWrk({ ...warm, mode: 'get', clients: o.readClients });
      }
    },
    get: () =>
      runWrk({
        ...wrk,
        mode: 'get',
        clients: o.readClients,
        onTick: ticker(progress, `tessera get c=${o.readClients}`, o.durationS),
      }),
    async close() {
      client.close();
    },
  };
}

/** The YCSB generator's options on the bench table's loaded keys (no load of its own). */
const ycsbBase = (o: CompareOptions) => ({ ...ycsbDefaults, table: o.table, keys: o.keys, load: false });

/** The runs of one case, one figure: ops over the whole time, the mean p50, the worst p99. */
export function combine(runs: readonly Measurement[]): Measurement {
  const first = runs[0];
  if (first === undefined) throw new Error('combine: no runs');
  const ops = runs.reduce((n, m) => n + m.ops, 0);
  const elapsedS = runs.reduce((n, m) => n + m.elapsedS, 0);
  return {
    ...first,
    ops,
    errors: runs.reduce((n, m) => n + m.errors, 0),
    elapsedS,
    opsPerSec: elapsedS > 0 ? ops / elapsedS : 0,
    p50Ms: runs.reduce((n, m) => n + m.p50Ms, 0) / runs.length,
    p99Ms: Math.max(...runs.map((m) => m.p99Ms)),
  };
}

/**
 * Puts, then gets, each case run `rounds` times, the systems taking turns (and which goes first
 * alternating by round). Both clusters stay up throughout: each is measured while the other idles.
 */
async function measure(o: CompareOptions, sides: readonly Side[]): Promise<Measurement[]> {
  const runs = new Map<string, Measurement[]>();
  const keep = (m: Measurement): void => {
    const k = `${m.system} ${m.op} ${m.clients}`;
    runs.set(k, [...(runs.get(k) ?? []), m]);
  };
  const turns = (round: number): readonly Side[] => (round % 2 === 0 ? sides : [...sides].reverse());
  for (const s of sides) await s.warmPuts();
  for (let round = 0; round < o.rounds; round++)
    for (const clients of o.clients) for (const s of turns(round)) keep(await s.put(clients));
  for (const s of sides) await s.load();
  for (let round = 0; round < o.rounds; round++) for (const s of turns(round)) keep(await s.get());
  return [...runs.values()].map(combine);
}

export function buildRows(o: { clients: number[]; readClients: number }, ms: Measurement[]): Row[] {
  const find = (system: Measurement['system'], op: string, clients: number) =>
    ms.find((m) => m.system === system && m.op === op && m.clients === clients);
  const keys: Array<[Row['op'], number]> = [
    ...o.clients.map((c): [Row['op'], number] => ['put', c]),
    ['get', o.readClients],
  ];
  return keys.map(([op, clients]) => ({
    op,
    clients,
    etcd: find('etcd', op, clients),
    tessera: find('tessera', op, clients),
  }));
}

export function ratio(r: Row): number | undefined {
  if (r.etcd === undefined || r.tessera === undefined || r.etcd.opsPerSec === 0) return undefined;
  return r.tessera.opsPerSec / r.etcd.opsPerSec;
}

export function compareTable(rows: Row[]): string {
  const cells = (m: Measurement | undefined): string[] =>
    m === undefined ? ['-', '-', '-'] : [fmtInt(m.opsPerSec), fmtMs(m.p50Ms), fmtMs(m.p99Ms)];
  const body = rows.map((r) => {
    const q = ratio(r);
    const op = r.op === 'get' ? 'get (linearizable)' : 'put';
    return [
      op,
      String(r.clients),
      ...cells(r.etcd),
      ...cells(r.tessera),
      q === undefined ? '-' : `${q.toFixed(2)}x`,
    ];
  });
  const header = [
    'operation',
    'clients',
    'etcd ops/s',
    'p50 ms',
    'p99 ms',
    'tessera ops/s',
    'p50 ms',
    'p99 ms',
    'ratio',
  ];
  return formatTable(header, body);
}

function jsonOf(m: Measurement | undefined) {
  if (m === undefined) return null;
  return { ops_per_sec: m.opsPerSec, p50_ms: m.p50Ms, p99_ms: m.p99Ms, ops: m.ops, errors: m.errors };
}

async function main(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  const progress = new ProgressLine();
  let skipped: string | undefined = o.skipTessera ? 'skipped (--skip-tessera)' : undefined;
  if (skipped === undefined) {
    const reason = await unreachableReason(o.url);
    if (reason !== undefined) skipped = `not reachable: ${reason}`;
    else if (o.token === undefined)
      skipped = 'no token (--token, TESSERA_TOKEN or --dir DIR with admin.token)';
    if (skipped !== undefined) console.log(`Tessera at ${o.url}: ${skipped}; running the etcd side only.`);
  }
  let etcd: Side | undefined;
  let tessera: (Side & { client: KvClient }) | undefined;
  let ms: Measurement[] = [];
  let ycsb: YcsbResult[] = [];
  try {
    if (!o.skipEtcd) etcd = await etcdSide(o, progress);
    if (skipped === undefined && o.token !== undefined) tessera = await tesseraSide(o, o.token, progress);
    ms = await measure(
      o,
      [etcd, tessera].filter((s) => s !== undefined),
    );
    // etcd stops before the YCSB runs (Tessera only): they do not share the cores with it.
    const stopping = etcd;
    etcd = undefined;
    await stopping?.close();
    if (tessera !== undefined && !o.skipYcsb) {
      ycsb = await runYcsb(
        tessera.client,
        { ...ycsbBase(o), durationS: o.ycsbDurationS, clients: o.ycsbClients },
        progress,
      );
    }
  } finally {
    await tessera?.close();
    await etcd?.close(); // a failed run still stops etcd
  }
  progress.clear();
  const rows = buildRows(o, ms);
  console.log(
    `Tessera vs etcd: ${o.rounds} x ${o.durationS} s per case and system, taking turns, after ${o.warmupS} s of warm-up, ${fmtInt(o.keys)} keys, 100-byte values, uniform keys`,
  );
  console.log(compareTable(rows));
  if (ycsb.length > 0) {
    console.log(
      `\nYCSB over Tessera's TypeScript client: ${o.ycsbDurationS} s per run, same keys (A 50/50 read/update, B 95/5, C reads)`,
    );
    console.log(ycsbTable(ycsb));
  }
  const errors = ms.filter((m) => m.errors > 0);
  for (const m of errors)
    console.log(`warning: ${m.system} ${m.op} c=${m.clients}: ${fmtInt(m.errors)} errors`);
  for (const r of ycsb.filter((y) => y.errors > 0))
    console.log(
      `warning: ycsb ${r.workload} ${r.dist} c=${r.clients}: ${fmtInt(r.errors)} errors, first: ${r.firstError}`,
    );
  if (o.json) {
    const results = rows.map((r) => ({
      op: r.op,
      clients: r.clients,
      etcd: jsonOf(r.etcd),
      tessera: jsonOf(r.tessera),
      ratio: ratio(r) ?? null,
    }));
    console.log(
      JSON.stringify({
        tool: 'compare',
        version: 1,
        duration_s: o.durationS,
        warmup_s: o.warmupS,
        rounds: o.rounds,
        keys: o.keys,
        url: o.url,
        tessera: skipped ?? 'measured',
        results,
        ycsb,
      }),
    );
  }
  return 0;
}

const isMain = process.argv[1] !== undefined && /compare\.ts$/.test(process.argv[1]);
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
