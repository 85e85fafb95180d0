/**
 * Taking and installing snapshots over the engine primitives (format: snapshot.ts).
 * A snapshot reads one consistent view (LMDB read transaction / LevelDB snapshot).
 * Install 'replace' first durably marks the group as installing (so a crash midway is visible as
 * `installing: true` in getApplied), clears the group's meta and the keyspaces, writes the records,
 * then durably sets the applied position. Install 'merge' reconciles data records and raises the
 * group's highest seq to the source's (so the target never issues seqs below the migrated data).
 */
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { seqMax } from '../sequencer/seq.js';
import type { AbstractEngine, RawOp } from './abstract.js';
import { nextKey, scanBounds } from './keys.js';
import {
  appliedKey,
  dataKey,
  decodeApplied,
  decodeRecord,
  encodeApplied,
  keyspacePrefix,
  metaKey,
  successor,
  zeroSeq,
} from './keys.js';
import { type SnapshotHeader, type SnapshotRecord, SnapshotReader, SnapshotWriter } from './snapshot.js';
import type { EngineWrite, InstallOptions, KeyspaceId, SnapshotInfo, SnapshotOptions } from './types.js';
import { logIndex } from '../lib/ids.js';

export async function* streamSnapshot(
  engine: AbstractEngine,
  group: GroupId,
  keyspaces: readonly KeyspaceId[],
  options: SnapshotOptions,
): AsyncGenerator<Uint8Array> {
  await engine._ready();
  const view = engine._openView();
  try {
    const withMeta = options.meta ?? true;
    const [rawApplied] = await engine._getRaw([appliedKey(group)], view);
    const applied = rawApplied === undefined ? undefined : decodeApplied(rawApplied);
    if (applied?.installing) throw new TesseraError('UNAVAILABLE', `group ${group} is installing a snapshot`);
    const writer = new SnapshotWriter();
    yield writer.header({
      group,
      index: withMeta ? (applied?.index ?? logIndex(0)) : logIndex(0),
      seq: applied?.seq ?? zeroSeq,
      meta: withMeta,
      keyspaces,
    });
    if (withMeta) {
      for (const m of await engine._readMeta(group, new Uint8Array(0), view)) {
        const chunk = writer.add({ type: 'meta', key: m.key, value: m.value });
        if (chunk) yield chunk;
      }
    }
    for (const keyspace of keyspaces) {
      const bounds = scanBounds(keyspacePrefix(keyspace), options);
      if (bounds === undefined) continue;
      let from = bounds.gte;
      for (;;) {
        const page = await engine._range(from, bounds.lt, limits.engineSnapshotPageRecords, view);
        for (const e of page) {
          const chunk = writer.add({
            type: 'data',
            keyspace,
            key: e.key.subarray(bounds.skip),
            raw: e.value,
          });
          if (chunk) yield chunk;
        }
        if (page.length < limits.engineSnapshotPageRecords) break;
        from = nextKey(page[page.length - 1]!.key);
      }
    }
    const last = writer.flush();
    if (last) yield last;
    yield writer.trailer();
  } finally {
    view.release();
  }
}

export async function installSnapshot(
  engine: AbstractEngine,
  group: GroupId,
  chunks: AsyncIterable<Uint8Array>,
  options: InstallOptions,
): Promise<SnapshotInfo> {
  const mode = options.mode ?? 'replace';
  const map = (ks: KeyspaceId): KeyspaceId => options.keyspaceMap?.get(ks) ?? ks;
  const reader = new SnapshotReader();
  let header: SnapshotHeader | undefined;
  let records = 0;
  for await (const chunk of chunks) {
    const parsed = reader.parse(chunk);
    if (parsed.type === 'header') {
      header = parsed.header;
      if (mode === 'replace') {
        if (!header.meta)
          throw new TesseraError('BAD_REQUEST', 'a replace install needs a snapshot with meta');
        await engine._exclusive(() => beginReplace(engine, group, header!.keyspaces.map(map)));
      }
    } else if (parsed.type === 'records') {
      assert(header !== undefined, 'records before the header');
      const h = header;
      for (const r of parsed.records) {
        if (r.type === 'data' && !h.keyspaces.includes(r.keyspace)) {
          throw new TesseraError(
            'CORRUPTION',
            `snapshot stream: record of keyspace ${r.keyspace} not in its header`,
          );
        }
      }
      records += parsed.records.length;
      await engine._exclusive(() =>
        mode === 'replace'
          ? writeReplace(engine, group, parsed.records, map)
          : writeMerge(engine, parsed.records, map),
      );
    } else {
      assert(header !== undefined, 'trailer before the header');
      const h = header;
      await engine._exclusive(() => finish(engine, group, h, mode));
    }
  }
  if (!reader.complete || header === undefined) {
    throw new TesseraError('CORRUPTION', 'snapshot stream ended before its trailer');
  }
  return { group: header.group, keyspaces: header.keyspaces, index: header.index, seq: header.seq, records };
}

async function beginReplace(
  engine: AbstractEngine,
  group: GroupId,
  keyspaces: readonly KeyspaceId[],
): Promise<void> {
  const marker = encodeApplied({ index: logIndex(0), seq: zeroSeq, installing: true });
  await engine._write([{ key: appliedKey(group), value: marker }], true);
  const metaStart = metaKey(group, new Uint8Array(0));
  await engine._clearRange(metaStart, successor(metaStart));
  for (const ks of keyspaces) {
    const p = keyspacePrefix(ks);
    await engine._clearRange(p, successor(p));
  }
}

function writeReplace(
  engine: AbstractEngine,
  group: GroupId,
  records: readonly SnapshotRecord[],
  map: (ks: KeyspaceId) => KeyspaceId,
): Promise<void> {
  const ops: RawOp[] = records.map((r) =>
    r.type === 'data'
      ? { key: dataKey(keyspacePrefix(map(r.keyspace)), r.key), value: r.raw }
      : { key: metaKey(group, r.key), value: r.value },
  );
  return engine._write(ops, false);
}

async function writeMerge(
  engine: AbstractEngine,
  records: readonly SnapshotRecord[],
  map: (ks: KeyspaceId) => KeyspaceId,
): Promise<void> {
  const writes: EngineWrite[] = [];
  for (const r of records) {
    if (r.type !== 'data') continue;
    const rec = decodeRecord(r.raw);
    const keyspace = map(r.keyspace);
    writes.push(
      rec.tombstone
        ? { type: 'delete', keyspace, key: r.key, seq: rec.seq }
        : { type: 'put', keyspace, key: r.key, value: rec.value, seq: rec.seq },
    );
  }
  const { ops } = await engine._reconcile(writes);
  await engine._write(ops, false);
}

async function finish(
  engine: AbstractEngine,
  group: GroupId,
  h: SnapshotHeader,
  mode: 'replace' | 'merge',
): Promise<void> {
  if (mode === 'replace') {
    const applied = encodeApplied({ index: h.index, seq: h.seq, installing: false });
    await engine._write([{ key: appliedKey(group), value: applied }], true);
    return;
  }
  const [raw] = await engine._getRaw([appliedKey(group)]);
  const cur =
    raw === undefined ? { index: logIndex(0), seq: zeroSeq, installing: false } : decodeApplied(raw);
  const next = encodeApplied({ ...cur, seq: seqMax(cur.seq, h.seq) });
  await engine._write([{ key: appliedKey(group), value: next }], true);
}
