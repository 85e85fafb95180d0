/**
 * A group's snapshot on a storage node: the engine snapshots (with the group's meta: applied
 * position, dedup table, dropped tables, shard registry) of every instance, in one chunk stream.
 * Format version 1 (docs/storage.md):
 *   chunk 0:  'S' (0x53) | version u8 (=1) | n u8 | engine code u8 * n   (1 btree, 2 lsm)
 *   then:     engine code u8 | one chunk of that engine's snapshot stream, instance after instance.
 */
import type { Engine, EngineKind, KeyspaceId } from '../engine/types.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId } from '../lib/ids.js';

const magic = 0x53;
const version = 1;
const codes: Record<EngineKind, number> = { btree: 1, lsm: 2 };
const kindOf = (c: number | undefined): EngineKind | undefined =>
  c === 1 ? 'btree' : c === 2 ? 'lsm' : undefined;

function bad(what: string): never {
  throw new TesseraError('CORRUPTION', `storage snapshot: ${what}`);
}

function tag(code: number, chunk: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + chunk.length);
  out[0] = code;
  out.set(chunk, 1);
  return out;
}

/**
 * Starts every instance's snapshot now (each engine opens its consistent read view on its first
 * chunk, pulled here) and returns the combined stream.
 */
export async function writeSnapshotStream(
  group: GroupId,
  engines: ReadonlyMap<EngineKind, Engine>,
  keyspaces: ReadonlyMap<EngineKind, readonly KeyspaceId[]>,
): Promise<AsyncIterable<Uint8Array>> {
  const started: { kind: EngineKind; first: Uint8Array; rest: AsyncIterator<Uint8Array> }[] = [];
  for (const [kind, engine] of engines) {
    const it = engine.snapshot(group, keyspaces.get(kind) ?? [])[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done === true) bad(`${kind} snapshot is empty`);
    started.push({ kind, first: first.value, rest: it });
  }
  async function* stream(): AsyncGenerator<Uint8Array> {
    yield Uint8Array.of(magic, version, started.length, ...started.map((s) => codes[s.kind]));
    for (const s of started) {
      const code = codes[s.kind];
      yield tag(code, s.first);
      for (let r = await s.rest.next(); r.done !== true; r = await s.rest.next()) yield tag(code, r.value);
    }
  }
  return stream();
}

/** Installs a combined stream (mode 'replace') into the instances, one after the other. */
export async function readSnapshotStream(
  group: GroupId,
  engines: ReadonlyMap<EngineKind, Engine>,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  const it = chunks[Symbol.asyncIterator]();
  const head = await it.next();
  if (head.done === true) bad('empty');
  const h = head.value;
  if (h[0] !== magic || h[1] !== version || h.length !== 3 + (h[2] ?? 0)) bad('bad header');
  const kinds = [...h.subarray(3)].map((c) => kindOf(c) ?? bad(`engine code ${c}`));
  let pending: IteratorResult<Uint8Array> = await it.next();
  for (const kind of kinds) {
    const engine = engines.get(kind) ?? bad(`no ${kind} instance here`);
    const code = codes[kind];
    async function* part(): AsyncGenerator<Uint8Array> {
      while (pending.done !== true && pending.value[0] === code) {
        const chunk = pending.value.subarray(1);
        pending = await it.next();
        yield chunk;
      }
    }
    await engine.installSnapshot(group, part(), { mode: 'replace' });
  }
  if (pending.done !== true) bad('trailing chunks');
}
