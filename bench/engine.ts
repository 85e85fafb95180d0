/**
 * Index engine micro-benchmark: options of each engine (sync modes, LMDB keyspaces as prefixes vs
 * named databases), apply throughput, gets, scans and on-disk overhead per key-value.
 *
 *   npx tsx bench/engine.ts [--records N] [--batch N]
 *
 * 16-byte random keys, 100-byte random (incompressible) values. Overhead = on-disk bytes (after a full
 * compaction for lsm) / records - 116. Figures are noisy on a shared 2-core machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from 'lmdb';
import {
  type Engine,
  type EngineKind,
  type EngineOptions,
  type EngineWrite,
  keyspaceId,
  openEngine,
} from '../src/engine/index.js';
import { groupId, logIndex } from '../src/lib/ids.js';
import { Prng } from '../src/lib/prng.js';
import { makeSeq } from '../src/sequencer/seq.js';

const args = process.argv.slice(2);
const arg = (name: string, d: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : d);
const RECORDS = arg('--records', 200_000);
const BATCH = arg('--batch', 1000);

function randomBytes(prng: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = prng.int(0, 255);
  return b;
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? diskBytes(p) : fs.statSync(p).size;
  }
  return total;
}

const prng = new Prng(1);
const keys = Array.from({ length: RECORDS }, () => randomBytes(prng, 16));
const values = Array.from({ length: 1024 }, () => randomBytes(prng, 100));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-bench-engine-'));

async function load(e: Engine): Promise<number> {
  const t0 = performance.now();
  for (let at = 0, idx = 1; at < RECORDS; at += BATCH, idx++) {
    const writes: EngineWrite[] = [];
    for (let i = at; i < Math.min(RECORDS, at + BATCH); i++) {
      writes.push({
        type: 'put',
        keyspace: keyspaceId(1),
        key: keys[i]!,
        value: values[i % 1024]!,
        seq: makeSeq(BigInt(i + 1), 0, 1),
      });
    }
    await e.applyBatch(groupId(1), writes, logIndex(idx), makeSeq(BigInt(at + BATCH), 0, 1));
  }
  await e.checkpoint();
  return RECORDS / ((performance.now() - t0) / 1000);
}

async function engineFigures(kind: EngineKind, options: EngineOptions, label: string) {
  const dir = path.join(tmp, `${kind}-${label}`);
  const e = await openEngine(kind, dir, options);
  const applyPerS = await load(e);
  let t0 = performance.now();
  const n = Math.min(RECORDS, 100_000);
  for (let i = 0; i < n; i += 100) {
    await e.getMany(keys.slice(i, i + 100).map((key) => ({ keyspace: keyspaceId(1), key })));
  }
  const getManyPerS = n / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < 20_000; i++) await e.get(keyspaceId(1), keys[(i * 7919) % RECORDS]!);
  const getPerS = 20_000 / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  let rows = 0;
  for (let r = 0; r < 20; r++)
    rows += (await e.scan(keyspaceId(1), { limit: 10_000, start: keys[r]! })).length;
  const scanPerS = rows / ((performance.now() - t0) / 1000);
  await e.compact();
  await e.close();
  const overhead = diskBytes(dir) / RECORDS - 116;
  return { applyPerS, getManyPerS, getPerS, scanPerS, overhead };
}

/** Raw LMDB: one database with prefixes vs one named database per keyspace. */
async function lmdbLayouts(keyspaces: number) {
  const out: Record<string, number> = {};
  for (const layout of ['prefix', 'named'] as const) {
    const dir = path.join(tmp, `lmdb-${layout}-${keyspaces}`);
    fs.mkdirSync(dir);
    const root = open<Buffer, Buffer>({
      path: path.join(dir, 'x.mdb'),
      keyEncoding: 'binary',
      encoding: 'binary',
      noSync: true,
      maxDbs: keyspaces + 2,
    });
    const dbs =
      layout === 'named'
        ? Array.from({ length: keyspaces }, (_, i) =>
            root.openDB<Buffer, Buffer>(`ks${i}`, { keyEncoding: 'binary', encoding: 'binary' }),
          )
        : [];
    for (let at = 0; at < RECORDS; at += BATCH) {
      await root.transaction(() => {
        for (let i = at; i < Math.min(RECORDS, at + BATCH); i++) {
          const ks = i % keyspaces;
          const v = Buffer.concat([Buffer.alloc(16), Buffer.from(values[i % 1024]!)]);
          if (layout === 'named') dbs[ks]!.putSync(Buffer.from(keys[i]!), v);
          else
            root.putSync(
              Buffer.concat([
                Buffer.from([1 + (ks % 127), ...(ks >= 127 ? [ks >> 7] : [])]),
                Buffer.from(keys[i]!),
              ]),
              v,
            );
        }
      });
    }
    await root.close();
    out[layout] = diskBytes(dir) / RECORDS - 116;
  }
  return out;
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
console.log(`records ${RECORDS}, batch ${BATCH}, ${os.cpus().length} cpus, node ${process.version}`);
const modes: [EngineKind, EngineOptions, string][] = [
  ['btree', {}, 'overlappingSync + checkpoint'],
  ['btree', { lmdbMode: 'noSync' }, 'noSync + checkpoint'],
  ['btree', { syncEachBatch: true }, 'sync each batch'],
  ['lsm', {}, 'sync:false + checkpoint'],
  ['lsm', { syncEachBatch: true }, 'sync each batch'],
];
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
for (const [kind, options, label] of modes) {
  if (only !== undefined && only !== kind) continue;
  const f = await engineFigures(kind, options, label.replace(/\W+/g, '-'));
  console.log(
    `${kind.padEnd(5)} ${label.padEnd(28)} apply ${fmt(f.applyPerS)}/s  getMany ${fmt(f.getManyPerS)}/s  get ${fmt(f.getPerS)}/s  scan ${fmt(f.scanPerS)} rows/s  overhead ${f.overhead.toFixed(1)} B/kv`,
  );
}
for (const n of only === undefined ? [1, 1000] : []) {
  const o = await lmdbLayouts(n);
  console.log(
    `lmdb layout, ${n} keyspaces: overhead prefix ${o.prefix?.toFixed(1)} B/kv, named dbs ${o.named?.toFixed(1)} B/kv`,
  );
}
fs.rmSync(tmp, { recursive: true, force: true });
