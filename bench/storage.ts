/**
 * Storage benchmark (one machine, no replication): durable puts at 1 / 64 / 256 concurrent writers,
 * gets, scans, log replay, and on-disk overhead per key-value, for both engines.
 *
 *   npm run bench:storage [-- --json] [-- --records N]
 *
 * 16-byte random keys, 100-byte random values, 200,000 records; gets by 256 concurrent readers
 * (the median of three passes over every key); replay: the median of three replays of fresh
 * stores. Overhead = on-disk bytes of the engine instance (after a full compaction, both engines;
 * also reported before it) / records - 116. With --json the last line is
 * {"btree":{"put_durable_per_s":{"1":N,"64":N,"256":N},"get_per_s":N,...},"lsm":{...}}.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EngineKind } from '../src/engine/types.js';
import type { LogIndex, Term } from '../src/lib/ids.js';
import { Prng } from '../src/lib/prng.js';
import { openLog } from '../src/log/index.js';
import { makeSeq } from '../src/sequencer/index.js';
import { encodeCommand } from '../src/storage/command.js';
import { LOCAL_GROUP, LocalStore } from '../src/storage/local-store.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const recordsArg = args.indexOf('--records');
const RECORDS = recordsArg >= 0 ? Number(args[recordsArg + 1]) : 200_000;
const KEY_BYTES = 16;
const VALUE_BYTES = 100;

interface Result {
  put_durable_per_s: { '1': number; '64': number; '256': number };
  get_per_s: number;
  scan_rows_per_s: number;
  replay_per_s: number;
  /** The first of the replays (the median of them is replay_per_s). */
  replay_first_per_s: number;
  overhead_bytes_per_kv: number;
  /** Before the compaction (the file as the store left it at close). */
  overhead_live_bytes_per_kv: number;
}

/**
 * `n` random keys in one flat buffer, handed out as views: the harness keeps no object per key, so
 * the garbage collector's full marks (which visit every live object) cost what they would in a
 * storage node, not 400,000 extra arrays' worth.
 */
class Keys {
  readonly length: number;
  private readonly flat: Uint8Array;

  constructor(n: number, seed: number) {
    const prng = new Prng(seed);
    this.length = n;
    this.flat = new Uint8Array(n * KEY_BYTES);
    const view = new DataView(this.flat.buffer);
    for (let j = 0; j < this.flat.length; j += 4) view.setUint32(j, prng.nextU32());
  }

  at(i: number): Uint8Array {
    return this.flat.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES);
  }
}

/** Random (incompressible) values: LevelDB compresses, so a constant value would flatter it. */
const VALUES = 65_536;
const values = ((): Uint8Array => {
  const prng = new Prng(99);
  const flat = new Uint8Array(VALUES * VALUE_BYTES);
  for (let i = 0; i < flat.length; i++) flat[i] = prng.nextU32() & 0xff;
  return flat;
})();
const valueFor = (i: number): Uint8Array => {
  const at = (i % VALUES) * VALUE_BYTES;
  return values.subarray(at, at + VALUE_BYTES);
};

function diskBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += diskBytes(p);
    else total += fs.statSync(p).blocks * 512;
  }
  return total;
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-'));
}

const now = (): number => performance.now();

/** CPU time of this process (all threads) per operation, in µs: steadier than rates on a shared machine. */
const cpuUsPerOp: Record<string, number> = {};
function cpuSince(start: NodeJS.CpuUsage, ops: number, what: string): void {
  const d = process.cpuUsage(start);
  cpuUsPerOp[what] = Math.round(((d.user + d.system) / ops) * 10) / 10;
}

/** `n` puts of the given keys with `concurrency` writers; returns puts per second. */
async function putRate(store: LocalStore, table: string, ks: Keys, concurrency: number): Promise<number> {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ks.length) {
        const i = next++;
        await store.put(table, ks.at(i), valueFor(i));
      }
    }),
  );
  const rate = ks.length / ((now() - t0) / 1000);
  cpuSince(cpu0, ks.length, `${currentKind} put x${concurrency}`);
  return rate;
}

async function getRate(store: LocalStore, table: string, ks: Keys): Promise<number> {
  let next = 0;
  let found = 0;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < ks.length) if (await store.get(table, ks.at(next++))) found++;
    }),
  );
  if (found !== ks.length) throw new Error(`get found ${found} of ${ks.length}`);
  const rate = ks.length / ((now() - t0) / 1000);
  cpuSince(cpu0, ks.length, `${currentKind} get`);
  return rate;
}

async function scanRate(store: LocalStore, table: string): Promise<number> {
  let rows = 0;
  let start: Uint8Array | undefined;
  const t0 = now();
  for (;;) {
    const page = await store.scan(table, { ...(start ? { start } : {}), limit: 10_000 });
    rows += page.length;
    if (page.length < 10_000) break;
    const last = page[page.length - 1]!.key;
    start = new Uint8Array(last.length + 1);
    start.set(last);
  }
  if (rows !== RECORDS) throw new Error(`scan saw ${rows} rows, want ${RECORDS}`);
  return rows / ((now() - t0) / 1000);
}

/** Runs of the replay and passes of the gets: the median of them is the figure. */
const passes = 3;

/** The median of `passes` runs of `run`, and the first of them. */
async function medianOf(run: () => Promise<number>): Promise<{ median: number; first: number }> {
  const xs: number[] = [];
  for (let i = 0; i < passes; i++) xs.push(await run());
  return { median: [...xs].sort((a, b) => a - b)[xs.length >> 1]!, first: xs[0]! };
}

/** Writes RECORDS put entries straight into the log (a crash before any apply), then times the open. */
async function replayRate(kind: EngineKind, ks: Keys): Promise<number> {
  const dir = tempDir();
  try {
    const store = await LocalStore.open(dir);
    const t = await store.createTable('bench', kind);
    await store.close();
    const log = await openLog(path.join(dir, 'log'));
    let index = log.groupState(LOCAL_GROUP)!.lastIndex + 1;
    const ts = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < ks.length; i += 4096) {
      const records = Array.from({ length: Math.min(4096, ks.length - i) }, (_, j) => ({
        kind: 'entry' as const,
        group: LOCAL_GROUP,
        term: 1 as Term,
        index: index++ as LogIndex,
        payload: encodeCommand({
          op: 'put',
          keyspace: t.keyspace,
          seq: makeSeq(ts, i + j, 1),
          key: ks.at(i + j),
          value: valueFor(i + j),
        }),
      }));
      await log.append(records);
    }
    await log.close();
    // Start from a quiet disk: the write-back of the earlier phases (and of this log) would
    // otherwise compete with the replay's engine writes.
    execFileSync('sync');
    const cpu0 = process.cpuUsage();
    const t0 = now();
    const again = await LocalStore.open(dir);
    const ms = now() - t0;
    cpuSince(cpu0, ks.length, `${kind} replay`);
    if (again.replayed !== ks.length) throw new Error(`replayed ${again.replayed}, want ${ks.length}`);
    await again.close();
    return ks.length / (ms / 1000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function benchEngine(kind: EngineKind): Promise<Result> {
  // Low-concurrency rates on a scratch store (their keys don't count in the 200,000 records).
  const scratch = tempDir();
  let put1: number;
  let put64: number;
  try {
    const s = await LocalStore.open(scratch);
    await s.createTable('bench', kind);
    put1 = await putRate(s, 'bench', new Keys(Math.min(2000, RECORDS), 1), 1);
    put64 = await putRate(s, 'bench', new Keys(Math.min(40_000, RECORDS), 2), 64);
    await s.close();
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }

  const dir = tempDir();
  try {
    const ks = new Keys(RECORDS, 3);
    const store = await LocalStore.open(dir);
    await store.createTable('bench', kind);
    const put256 = await putRate(store, 'bench', ks, 256);
    // Three passes over every key, the median is the figure (the first pass shares the cores with
    // the engine's background work after the puts: LMDB's flushes, LevelDB's compactions).
    const gets = (await medianOf(() => getRate(store, 'bench', ks))).median;
    const scans = await scanRate(store, 'bench');
    await store.close(); // checkpoint: engines durable, log released
    const engineDir = path.join(dir, kind);
    const live = diskBytes(engineDir) / RECORDS - (KEY_BYTES + VALUE_BYTES);
    // After a full compaction, for both engines (lsm: compactRange; btree: a copy without the
    // free pages that copy-on-write leaves behind, which LMDB would reuse for later writes).
    const { openEngine } = await import('../src/engine/index.js');
    const e = await openEngine(kind, engineDir);
    await e.compact();
    await e.close();
    const overhead = diskBytes(engineDir) / RECORDS - (KEY_BYTES + VALUE_BYTES);
    // Three replays, each of a fresh store: the median is the figure; the first one also pays
    // for compiling the replay path (a restarted node does), so it is shown on its own too.
    const replay = await medianOf(() => replayRate(kind, ks));
    return {
      put_durable_per_s: { '1': Math.round(put1), '64': Math.round(put64), '256': Math.round(put256) },
      get_per_s: Math.round(gets),
      scan_rows_per_s: Math.round(scans),
      replay_per_s: Math.round(replay.median),
      replay_first_per_s: Math.round(replay.first),
      overhead_bytes_per_kv: Math.round(overhead * 10) / 10,
      overhead_live_bytes_per_kv: Math.round(live * 10) / 10,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function table(results: Record<EngineKind, Result>): string {
  const rows: [string, (r: Result) => number][] = [
    ['durable puts/s, 1 writer', (r) => r.put_durable_per_s['1']],
    ['durable puts/s, 64 writers', (r) => r.put_durable_per_s['64']],
    ['durable puts/s, 256 writers', (r) => r.put_durable_per_s['256']],
    ['gets/s', (r) => r.get_per_s],
    ['scan rows/s', (r) => r.scan_rows_per_s],
    ['replay records/s (median of 3)', (r) => r.replay_per_s],
    ['replay records/s, first run', (r) => r.replay_first_per_s],
    ['overhead bytes/kv', (r) => r.overhead_bytes_per_kv],
    ['overhead before compaction', (r) => r.overhead_live_bytes_per_kv],
  ];
  const lines = [`${'metric'.padEnd(30)}${'btree'.padStart(12)}${'lsm'.padStart(12)}`];
  for (const [name, f] of rows) {
    lines.push(
      `${name.padEnd(30)}${String(f(results.btree)).padStart(12)}${String(f(results.lsm)).padStart(12)}`,
    );
  }
  return lines.join('\n');
}

const results = {} as Record<EngineKind, Result>;
let currentKind: EngineKind = 'btree';
for (const kind of ['btree', 'lsm'] as const) {
  currentKind = kind;
  if (!json) process.stdout.write(`${kind}...\n`);
  results[kind] = await benchEngine(kind);
}
process.stdout.write(
  `Tessera storage benchmark: ${RECORDS} records, ${KEY_BYTES}-byte keys, ${VALUE_BYTES}-byte values, ` +
    `${os.cpus().length} cores, Node ${process.versions.node}, load average ${os.loadavg()[0]!.toFixed(1)}\n` +
    `${table(results)}\nCPU µs per operation (all threads of this process):\n` +
    Object.entries(cpuUsPerOp)
      .map(([k, v]) => `  ${k.padEnd(28)}${String(v).padStart(8)}\n`)
      .join(''),
);
if (json) process.stdout.write(`${JSON.stringify(results)}\n`);
