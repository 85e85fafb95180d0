/**
 * The key-value state machine of one group on a storage node (the host's StateMachine), over the
 * node's shared engine instances (one btree, one lsm). Log entries are statemachine commands
 * (src/statemachine, applied by applyCommitted: conditions, dedup, dropped tables) or catalog
 * entries from the metadata manager (first byte 0x81): assignShard fills the group's shard
 * registry, dropTable becomes a statemachine dropTable over the table's keyspaces here.
 * See docs/storage.md for the formats.
 */
import { Packr } from 'msgpackr';
import type { Entry, SnapshotMeta } from '../consensus/types.js';
import type { Engine, EngineKind, KeyspaceId, MetaRecord, MetaWrite } from '../engine/types.js';
import { keyspaceId } from '../engine/types.js';
import type { AppliedPosition, StateMachine } from '../host/types.js';
import { assert } from '../lib/assert.js';
import { compareBytes } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, Seq, ShardId, TableId } from '../lib/ids.js';
import { logIndex } from '../lib/ids.js';
import { type Command, encodeCommand, noRequest } from '../statemachine/command.js';
import type { Outcome } from '../statemachine/decide.js';
import { applyCommitted, type GroupEngines, GroupState } from '../statemachine/apply.js';
import { type CatalogEntry, catalogEntryFields, readCatalogEntry } from './rpc.js';
import { KvMemtable } from './kv-memtable.js';
import { readSnapshotStream, writeSnapshotStream } from './kv-snapshot.js';

/** First byte of a catalog entry in a group's log (0x80 | format version 1). */
export const catalogEntryTag = 0x81;
const registryTag = 0x73; // 's'
const registryVersion = 1;
const packr = new Packr({ useRecords: false, mapsAsObjects: false });
const maxIndex = logIndex(Number.MAX_SAFE_INTEGER);

/** The node's engine instances, shared by every group. */
export type NodeEngines = ReadonlyMap<EngineKind, Engine>;

/** What apply returns per entry: the client's answer for commands (undefined for the rest). */
export type KvResult = Outcome | undefined;

export interface ShardInfo {
  readonly shard: ShardId;
  readonly table: TableId;
  readonly engine: EngineKind;
  readonly keyspace: KeyspaceId;
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly epoch: number;
  readonly catalogVersion: number;
}

export function encodeCatalogEntry(e: CatalogEntry): Uint8Array {
  const body = packr.pack(catalogEntryFields(e));
  const out = new Uint8Array(1 + body.length);
  out[0] = catalogEntryTag;
  out.set(body, 1);
  return out;
}

function decodeCatalogEntry(data: Uint8Array): CatalogEntry {
  try {
    const f = packr.unpack(data.subarray(1));
    if (!Array.isArray(f)) throw new Error('not an array');
    return readCatalogEntry(f);
  } catch (e) {
    throw new TesseraError('CORRUPTION', `catalog entry: ${(e as Error).message}`);
  }
}

const isCatalog = (e: Entry): boolean => e.kind === 'command' && e.data[0] === catalogEntryTag;

function registryRecord(s: ShardInfo): MetaWrite {
  const key = new Uint8Array(5);
  key[0] = registryTag;
  new DataView(key.buffer).setUint32(1, s.shard);
  const value = new Uint8Array(
    packr.pack([registryVersion, s.table, s.engine, s.start, s.end, s.epoch, s.catalogVersion]),
  );
  return { key, value };
}

function readRegistry(records: readonly MetaRecord[]): Map<ShardId, ShardInfo> {
  const out = new Map<ShardId, ShardInfo>();
  for (const r of records) {
    if (r.key.length !== 5 || r.key[0] !== registryTag) continue;
    const shard = new DataView(r.key.buffer, r.key.byteOffset, 5).getUint32(1) as ShardId;
    const f = packr.unpack(r.value) as unknown[];
    if (!Array.isArray(f) || f[0] !== registryVersion || (f[2] !== 'btree' && f[2] !== 'lsm'))
      throw new TesseraError('CORRUPTION', `shard registry record ${shard}`);
    out.set(shard, {
      shard,
      table: f[1] as TableId,
      engine: f[2],
      keyspace: keyspaceId(shard),
      start: new Uint8Array(f[3] as Uint8Array),
      end: new Uint8Array(f[4] as Uint8Array),
      epoch: f[5] as number,
      catalogVersion: f[6] as number,
    });
  }
  return out;
}

function maxSeq(a: Seq, b: Seq): Seq {
  return compareBytes(a, b) >= 0 ? a : b;
}

export class KvStateMachine implements StateMachine<KvResult> {
  private state!: GroupState;
  private registry = new Map<ShardId, ShardInfo>();
  private readonly g: GroupEngines;
  /** Applied writes not yet in the engines; `g.engines` are its views (memtable over engine). */
  private readonly mem: KvMemtable;

  private constructor(
    readonly group: GroupId,
    private readonly engines: NodeEngines,
    readonly metaKind: EngineKind,
  ) {
    this.mem = new KvMemtable(group, engines);
    this.g = { group, engines: this.mem.engines, metaKind };
  }

  /** Opens the state machine of a group (a partial snapshot install is wiped: position 0). */
  static async open(
    group: GroupId,
    engines: NodeEngines,
    metaKind: EngineKind = 'btree',
  ): Promise<KvStateMachine> {
    assert(engines.has(metaKind), 'metaKind engine missing');
    const sm = new KvStateMachine(group, engines, metaKind);
    for (const e of engines.values()) {
      if ((await e.getApplied(group)).installing) {
        await sm.wipe();
        break;
      }
    }
    await sm.load();
    return sm;
  }

  private meta(): Engine {
    return this.engines.get(this.metaKind) as Engine;
  }

  private async load(): Promise<void> {
    this.state = await GroupState.load(this.g);
    this.registry = readRegistry(await this.meta().readMeta(this.group, Uint8Array.of(registryTag)));
  }

  /** Deletes the group's keyspaces (those in the registry) and meta on every instance. */
  private async wipe(): Promise<void> {
    const reg = readRegistry(await this.meta().readMeta(this.group, Uint8Array.of(registryTag)));
    for (const s of reg.values()) await (this.engines.get(s.engine) as Engine).dropKeyspace(s.keyspace);
    for (const e of this.engines.values()) await e.dropGroup(this.group);
  }

  // --- reads for the node ---------------------------------------------------------------------

  /** The shard as registered in this group, unless its table was dropped. */
  shard(shard: ShardId): ShardInfo | undefined {
    const s = this.registry.get(shard);
    if (s === undefined || this.state.dropped.isDropped(s.table, maxIndex)) return undefined;
    return s;
  }

  /** The shard as registered, even if its table was dropped. */
  registered(shard: ShardId): ShardInfo | undefined {
    return this.registry.get(shard);
  }

  /** Shards of live tables in this group. */
  shards(): ShardInfo[] {
    return [...this.registry.keys()].map((s) => this.shard(s)).filter((s) => s !== undefined);
  }

  tableDropped(table: TableId): boolean {
    return this.state.dropped.isDropped(table, maxIndex);
  }

  /** The shard's instance as this group sees it: the memtable over the engine (reads only). */
  engineOf(s: ShardInfo): Engine {
    return this.g.engines.get(s.engine) as Engine;
  }

  /** Bytes and records applied but not yet flushed to the engines (for tests and metrics). */
  memtableSize(): { bytes: number; records: number } {
    return { bytes: this.mem.bytes, records: this.mem.records };
  }

  /** Writes everything applied so far to the engines (not yet fsynced: checkpoint() does). */
  flush(): Promise<void> {
    return this.mem.flush();
  }

  // --- StateMachine ----------------------------------------------------------------------------

  /** What the ENGINES hold (the memtable's part is still in the log and replays on restart). */
  async appliedPosition(): Promise<AppliedPosition> {
    let index = maxIndex;
    let seq: Seq | undefined;
    for (const e of this.engines.values()) {
      const p = await e.getApplied(this.group);
      if (p.index < index) index = p.index;
      seq = seq === undefined ? p.seq : maxSeq(seq, p.seq);
    }
    return { index, seq: seq as Seq };
  }

  async apply(entries: readonly Entry[]): Promise<readonly KvResult[]> {
    await this.mem.admit();
    const results: KvResult[] = [];
    let run: Entry[] = [];
    const flush = async (): Promise<void> => {
      if (run.length === 0) return;
      for (const r of await applyCommitted(run, this.g, this.state)) results.push(r.outcome);
      run = [];
    };
    for (const entry of entries) {
      if (!isCatalog(entry)) {
        run.push(entry);
        continue;
      }
      const c = decodeCatalogEntry(entry.data);
      if (c.type === 'dropTable') {
        run.push({ ...entry, data: encodeCommand(this.dropCommand(c.table)) });
        continue;
      }
      await flush();
      results.push(await this.assign(entry, c));
    }
    await flush();
    return results;
  }

  private dropCommand(table: TableId): Command {
    const shards = [...this.registry.values()]
      .filter((s) => s.table === table)
      .map((s) => ({ engine: s.engine, keyspace: s.keyspace }));
    return { type: 'dropTable', request: noRequest, table, shards };
  }

  /** Applies an assignShard entry: registry record + applied position, atomically in metaKind. */
  private async assign(entry: Entry, c: CatalogEntry & { type: 'assignShard' }): Promise<KvResult> {
    const live = entry.index > this.state.appliedOf(this.metaKind);
    const prev = this.registry.get(c.shard);
    const writes: MetaWrite[] = [];
    // The same epoch again (the MM re-sends assignments) keeps the first catalog version.
    if (live && (prev === undefined || prev.epoch < c.epoch) && !this.tableDropped(c.table)) {
      const info: ShardInfo = { ...c, keyspace: keyspaceId(c.shard) };
      this.registry.set(c.shard, info);
      writes.push(registryRecord(info));
    }
    for (const [kind, engine] of this.g.engines) {
      if (entry.index <= this.state.appliedOf(kind)) continue;
      await engine.applyBatch(this.group, [], entry.index, entry.seq, kind === this.metaKind ? writes : []);
      this.state.applied.set(kind, entry.index);
    }
    return live ? { ok: true, seq: entry.seq } : undefined;
  }

  async checkpoint(): Promise<AppliedPosition> {
    await this.mem.flush();
    const pos = await this.appliedPosition();
    for (const e of this.engines.values()) await e.checkpoint();
    return pos;
  }

  /** Flushes the memtable, then captures the engines (no apply runs until this resolves). */
  async snapshot(_meta: SnapshotMeta): Promise<AsyncIterable<Uint8Array>> {
    await this.mem.flush();
    const keyspaces = new Map<EngineKind, KeyspaceId[]>();
    for (const kind of this.engines.keys()) keyspaces.set(kind, []);
    for (const s of this.registry.values()) keyspaces.get(s.engine)?.push(s.keyspace);
    return writeSnapshotStream(this.group, this.engines, keyspaces);
  }

  async install(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const old = this.registry;
    await this.mem.settle();
    this.mem.clear();
    await readSnapshotStream(this.group, this.engines, chunks);
    await this.load();
    for (const s of old.values()) {
      if (!this.registry.has(s.shard)) await (this.engines.get(s.engine) as Engine).dropKeyspace(s.keyspace);
    }
    const pos = await this.appliedPosition();
    if (pos.index !== meta.index)
      throw new TesseraError(
        'CORRUPTION',
        `group ${this.group}: snapshot at ${pos.index}, expected ${meta.index}`,
      );
    for (const e of this.engines.values()) await e.checkpoint();
  }

  /**
   * Flushes the memtable (a restart then replays less; what a failed flush left behind is still
   * in the log, so its error is not raised again here). The engines are the node's.
   */
  async close(): Promise<void> {
    await this.mem.flush().catch(() => this.mem.settle());
  }

  async destroy(): Promise<void> {
    await this.mem.settle();
    this.mem.clear();
    await this.wipe();
    this.registry = new Map();
    this.state = new GroupState();
  }
}

/** The applied index of a group is the lowest among the instances (exported for tests). */
export function lowestApplied(state: GroupState): LogIndex {
  return logIndex(state.replayFrom - 1);
}
