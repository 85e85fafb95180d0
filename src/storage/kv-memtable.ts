/**
 * The memtable of one group's key-value state machine (src/storage/kv-sm.ts): applied writes and
 * meta records (dedup, dropped tables, shard registry) held in memory per engine instance, newest
 * per key, and flushed to the node's engines in large trusted-order batches in the background,
 * each batch atomically with the applied position it reaches.
 *
 * `engines` are per-instance views the state machine applies through and reads from: applyBatch
 * buffers; get/getSync/getMany/scan see the buffered records over the engine's; getApplied and
 * readMeta answer what the ENGINE holds (the durable position: the log must still hold the rest).
 * dropKeyspace flushes everything first, so the engine never runs ahead of a partial memtable.
 * Two generations per instance: `active` takes writes, `flushing` is being written; reads see
 * active, then flushing, then the engine. One flush at a time per group; a failed flush is
 * sticky (every later apply, flush or checkpoint rejects with it: the host stops the replica).
 */
import type {
  ApplyOptions,
  ApplyResult,
  AppliedPosition,
  Engine,
  EngineEntry,
  EngineKind,
  EngineRecord,
  EngineWrite,
  InstallOptions,
  KeyspaceId,
  MetaRecord,
  MetaWrite,
  ScanOptions,
  SnapshotInfo,
  SnapshotOptions,
} from '../engine/types.js';
import { PackedWrites } from '../engine/packed.js';
import { assert } from '../lib/assert.js';
import { compareBytes } from '../lib/bytes.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';

/** First size of a generation's packed batch (it doubles as needed). */
const packedBytesHint = 256 * 1024;
const packedWritesHint = 2048;

/** Per-record bookkeeping charged on top of key and value bytes. */
const recordOverhead = 96;

const idOf = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');

function maxSeq(a: Seq, b: Seq): Seq {
  return compareBytes(a, b) >= 0 ? a : b;
}

/**
 * The bytes as an array of their own: a decoded command's key and value are views into the
 * entry's buffer (a log chunk, a network frame), which a held record must not keep alive.
 */
const own = (b: Uint8Array): Uint8Array => (b.byteLength === b.buffer.byteLength ? b : b.slice());

function owned(w: EngineWrite): EngineWrite {
  return w.type === 'put' ? { ...w, key: own(w.key), value: own(w.value) } : { ...w, key: own(w.key) };
}

const toRecord = (w: EngineWrite): EngineRecord => ({
  value: w.type === 'put' ? w.value : new Uint8Array(0),
  seq: w.seq,
  tombstone: w.type === 'delete',
});

/** One generation of one instance: what a single engine batch will carry. */
class Generation {
  readonly writes = new Map<KeyspaceId, Map<string, EngineWrite>>();
  readonly meta = new Map<string, MetaWrite>();
  index: LogIndex | undefined;
  seq: Seq | undefined;
  bytes = 0;
  records = 0;
  /**
   * Every write added, in order, packed as it arrives (superseded ones included: in a trusted-order
   * batch the later write of a key wins), so a flush only hands the buffer to the engine: the
   * packing cost is spread over the applies instead of stalling the JS thread at flush time.
   * Made at the first write (an idle group holds none); dropped by dropKeyspace, after which
   * the flush packs the maps instead.
   */
  packed: PackedWrites | undefined;
  private packedDropped = false;
  /** Writes added (records counts distinct keys). */
  writeCount = 0;

  get(keyspace: KeyspaceId, id: string): EngineWrite | undefined {
    return this.writes.get(keyspace)?.get(id);
  }

  add(writes: readonly EngineWrite[], index: LogIndex, seq: Seq, meta: readonly MetaWrite[]): void {
    assert(this.index === undefined || index >= this.index, 'memtable applied index went back');
    for (const given of writes) {
      const w = owned(given);
      let ks = this.writes.get(w.keyspace);
      if (ks === undefined) {
        ks = new Map();
        this.writes.set(w.keyspace, ks);
      }
      const id = idOf(w.key);
      const old = ks.get(id);
      if (old !== undefined) this.bytes -= size(old);
      else this.records++;
      ks.set(id, w);
      this.bytes += size(w);
      this.writeCount++;
      if (!this.packedDropped) this.packed ??= new PackedWrites(packedBytesHint, packedWritesHint);
      if (w.type === 'put')
        this.packed?.put(w.keyspace, w.key, 0, w.key.length, w.seq, 0, w.value, 0, w.value.length);
      else this.packed?.delete(w.keyspace, w.key, 0, w.key.length, w.seq, 0);
    }
    for (const given of meta) {
      const m = { key: own(given.key), value: given.value === undefined ? undefined : own(given.value) };
      const id = idOf(m.key);
      const old = this.meta.get(id);
      if (old !== undefined) this.bytes -= old.key.length + (old.value?.length ?? 0) + recordOverhead;
      else this.records++;
      this.meta.set(id, m);
      this.bytes += m.key.length + (m.value?.length ?? 0) + recordOverhead;
    }
    this.index = index;
    this.seq = this.seq === undefined ? seq : maxSeq(this.seq, seq);
  }

  dropKeyspace(keyspace: KeyspaceId): void {
    const ks = this.writes.get(keyspace);
    if (ks === undefined) return;
    this.packed = undefined;
    this.packedDropped = true;
    for (const w of ks.values()) {
      this.bytes -= size(w);
      this.records--;
    }
    this.writes.delete(keyspace);
  }
}

function size(w: EngineWrite): number {
  return w.key.length + (w.type === 'put' ? w.value.length : 0) + recordOverhead;
}

/** The buffered state of one engine instance for the group. */
class Instance {
  active = new Generation();
  flushing: Generation | undefined;

  constructor(readonly engine: Engine) {}

  lookup(keyspace: KeyspaceId, key: Uint8Array): EngineWrite | undefined {
    const id = idOf(key);
    return this.active.get(keyspace, id) ?? this.flushing?.get(keyspace, id);
  }
}

export class KvMemtable {
  /** The views the state machine applies through and reads from (one per instance). */
  readonly engines: ReadonlyMap<EngineKind, Engine>;
  private readonly instances = new Map<EngineKind, Instance>();
  private job: Promise<void> | null = null;
  private failure: unknown;
  private failed = false;

  /** This generation's flush point, as a fraction of the thresholds (see maybeFlush). */
  private flushFactor: number;

  constructor(
    readonly group: GroupId,
    base: ReadonlyMap<EngineKind, Engine>,
    private readonly random: () => number = Math.random,
  ) {
    this.flushFactor = 0.75 + 0.25 * random();
    const views = new Map<EngineKind, Engine>();
    for (const [kind, engine] of base) {
      const inst = new Instance(engine);
      this.instances.set(kind, inst);
      views.set(kind, new MemtableView(this, inst));
    }
    this.engines = views;
  }

  /** Bytes held (both generations of every instance). */
  get bytes(): number {
    let n = 0;
    for (const i of this.instances.values()) n += i.active.bytes + (i.flushing?.bytes ?? 0);
    return n;
  }

  /** Records held (both generations of every instance). */
  get records(): number {
    let n = 0;
    for (const i of this.instances.values()) n += i.active.records + (i.flushing?.records ?? 0);
    return n;
  }

  /** Rejects with a failed flush's error. */
  check(): void {
    if (this.failed) throw this.failure;
  }

  /** Bytes of the packed batches held (every write, overwritten ones included). */
  private get packedBytes(): number {
    let n = 0;
    for (const i of this.instances.values())
      n += (i.active.packed?.bytes ?? 0) + (i.flushing?.packed?.bytes ?? 0);
    return n;
  }

  /** Back-pressure before an apply: above the bound, waits for the flush of what is held. */
  async admit(): Promise<void> {
    this.check();
    const max = limits.kvMemtableBytesMax;
    if (this.bytes >= max || this.packedBytes >= max) await this.flush();
  }

  /** Called after each buffered batch: starts a background flush past the thresholds. */
  maybeFlush(): void {
    if (this.job !== null || this.failed) return;
    let bytes = 0;
    let records = 0;
    for (const i of this.instances.values()) {
      // Writes, not keys: the packed batch holds every write (overwritten ones too).
      bytes += Math.max(i.active.bytes, i.active.packed?.bytes ?? 0);
      records += i.active.writeCount;
    }
    const f = this.flushFactor;
    if (bytes < f * limits.kvMemtableFlushBytes && records < f * limits.kvMemtableFlushRecords) return;
    // Each generation flushes at its own point in [3/4, 1] of the thresholds: the replicas of a
    // group apply the same entries, and flushing all at once would hand LMDB's write threads
    // the same burst of work on every replica together (on shared cores, a stall for all).
    this.flushFactor = 0.75 + 0.25 * this.random();
    void this.start().catch(() => undefined); // the failure is sticky: the next apply sees it
  }

  /** Writes everything applied so far to the engines (waits for a flush already running first). */
  async flush(): Promise<void> {
    while (this.job !== null) await this.job.catch(() => undefined);
    this.check();
    if ([...this.instances.values()].some((i) => i.active.index !== undefined)) await this.start();
    this.check();
  }

  /** Waits for a running flush, whatever its outcome (before the engines are wiped or closed). */
  async settle(): Promise<void> {
    while (this.job !== null) await this.job.catch(() => undefined);
  }

  /** Forgets everything held (after a flush: install, destroy). */
  clear(): void {
    assert(this.job === null, 'memtable cleared during a flush');
    for (const i of this.instances.values()) {
      i.active = new Generation();
      i.flushing = undefined;
    }
    this.failed = false;
    this.failure = undefined;
  }

  /** Freezes every instance's active generation and writes them, one batch per instance. */
  private start(): Promise<void> {
    assert(this.job === null, 'one memtable flush at a time');
    const gens: [Instance, Generation][] = [];
    for (const inst of this.instances.values()) {
      if (inst.active.index === undefined) continue;
      assert(inst.flushing === undefined, 'flushing generation left behind');
      inst.flushing = inst.active;
      inst.active = new Generation();
      gens.push([inst, inst.flushing]);
    }
    const job = (async () => {
      const settled = await Promise.allSettled(gens.map(([inst, gen]) => write(this.group, inst, gen)));
      settled.forEach((r, n) => {
        const inst = (gens[n] as [Instance, Generation])[0];
        if (r.status === 'fulfilled') inst.flushing = undefined;
        else if (!this.failed) {
          this.failed = true;
          this.failure = r.reason;
        }
      });
    })().finally(() => {
      this.job = null;
    });
    this.job = job;
    return job;
  }
}

async function write(group: GroupId, inst: Instance, gen: Generation): Promise<void> {
  const meta = [...gen.meta.values()];
  if (gen.packed !== undefined) {
    // Log-order writes past the instance's applied index: trusted order (the last of a key wins).
    await inst.engine.applyPacked(group, gen.packed, gen.index as LogIndex, gen.seq as Seq, meta);
    return;
  }
  const writes: EngineWrite[] = [];
  for (const ks of gen.writes.values()) for (const w of ks.values()) writes.push(w);
  // The newest per key (a keyspace was dropped from this generation).
  await inst.engine.applyBatch(group, writes, gen.index as LogIndex, gen.seq as Seq, meta, {
    ordered: true,
  });
}

/** Merges the held records of a keyspace over an engine scan. */
function held(inst: Instance, keyspace: KeyspaceId, o: ScanOptions): EngineEntry[] {
  const byId = new Map<string, EngineWrite>();
  for (const gen of [inst.flushing, inst.active]) {
    const ks = gen?.writes.get(keyspace);
    if (ks === undefined) continue;
    for (const [id, w] of ks) {
      if (o.start !== undefined && compareBytes(w.key, o.start) < 0) continue;
      if (o.end !== undefined && compareBytes(w.key, o.end) >= 0) continue;
      if (o.prefix !== undefined && !startsWith(w.key, o.prefix)) continue;
      byId.set(id, w);
    }
  }
  return [...byId.values()].map((w) => ({ key: w.key, ...toRecord(w) }));
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** One instance as the state machine sees it: the memtable over the engine. */
class MemtableView implements Engine {
  readonly kind: EngineKind;
  readonly dir: string;
  readonly supports: Engine['supports'];
  private readonly base: Engine;

  constructor(
    private readonly mem: KvMemtable,
    private readonly inst: Instance,
  ) {
    this.base = inst.engine;
    this.kind = this.base.kind;
    this.dir = this.base.dir;
    this.supports = this.base.supports;
  }

  get(keyspace: KeyspaceId, key: Uint8Array): Promise<EngineRecord | undefined> {
    const w = this.inst.lookup(keyspace, key);
    return w !== undefined ? Promise.resolve(toRecord(w)) : this.base.get(keyspace, key);
  }

  getSync(keyspace: KeyspaceId, key: Uint8Array): EngineRecord | undefined | null {
    const w = this.inst.lookup(keyspace, key);
    return w !== undefined ? toRecord(w) : this.base.getSync(keyspace, key);
  }

  async getMany(
    reads: readonly { readonly keyspace: KeyspaceId; readonly key: Uint8Array }[],
  ): Promise<(EngineRecord | undefined)[]> {
    const out: (EngineRecord | undefined)[] = new Array(reads.length);
    const missing: number[] = [];
    reads.forEach((r, i) => {
      const w = this.inst.lookup(r.keyspace, r.key);
      if (w !== undefined) out[i] = toRecord(w);
      else missing.push(i);
    });
    if (missing.length > 0) {
      const got = await this.base.getMany(missing.map((i) => reads[i] as (typeof reads)[number]));
      missing.forEach((i, n) => {
        out[i] = got[n];
      });
    }
    return out;
  }

  applyBatch(
    group: GroupId,
    writes: readonly EngineWrite[],
    appliedIndex: LogIndex,
    highestSeq: Seq,
    meta: readonly MetaWrite[] = [],
    _options?: ApplyOptions,
  ): Promise<ApplyResult> {
    assert(group === this.mem.group, 'a memtable view takes its own group only');
    this.mem.check();
    this.inst.active.add(writes, appliedIndex, highestSeq, meta);
    this.mem.maybeFlush();
    return Promise.resolve({ stored: writes.length, ignored: 0 });
  }

  /** The ENGINE's position: durable once checkpointed; the memtable's part is still in the log. */
  getApplied(group: GroupId): Promise<AppliedPosition> {
    return this.base.getApplied(group);
  }

  /** The engine's meta records (flush first to include the held ones). */
  readMeta(group: GroupId, prefix?: Uint8Array): Promise<MetaRecord[]> {
    return this.base.readMeta(group, prefix);
  }

  /**
   * The held records over the engine's, in key order. Each held key hides at most one engine row,
   * so the engine is asked for `limit + held` rows: its first `limit` survivors are then complete.
   */
  async scan(keyspace: KeyspaceId, options: ScanOptions = {}): Promise<EngineEntry[]> {
    const mine = held(this.inst, keyspace, options);
    if (mine.length === 0) return this.base.scan(keyspace, options);
    const limit = options.limit;
    const rows = await this.base.scan(keyspace, {
      ...options,
      ...(limit === undefined ? {} : { limit: limit + mine.length }),
    });
    const byId = new Map<string, EngineEntry>();
    for (const r of rows) byId.set(idOf(r.key), r);
    for (const r of mine) byId.set(idOf(r.key), r);
    const merged = [...byId.values()]
      .filter((r) => options.includeTombstones === true || !r.tombstone)
      .sort((a, b) => compareBytes(a.key, b.key));
    return limit === undefined ? merged : merged.slice(0, limit);
  }

  /** Straight to the engine, after everything held (the engine never runs ahead of the memtable). */
  async applyPacked(
    group: GroupId,
    packed: PackedWrites,
    appliedIndex: LogIndex,
    highestSeq: Seq,
    meta?: readonly MetaWrite[],
  ): Promise<ApplyResult> {
    await this.mem.flush();
    return this.base.applyPacked(group, packed, appliedIndex, highestSeq, meta);
  }

  async dropKeyspace(keyspace: KeyspaceId): Promise<void> {
    await this.mem.flush();
    this.inst.active.dropKeyspace(keyspace);
    await this.base.dropKeyspace(keyspace);
  }

  purgeTombstones(keyspace: KeyspaceId, belowSeq: Seq): Promise<number> {
    return this.base.purgeTombstones(keyspace, belowSeq);
  }

  async dropGroup(group: GroupId): Promise<void> {
    await this.mem.settle();
    return this.base.dropGroup(group);
  }

  checkpoint(): Promise<void> {
    return this.base.checkpoint();
  }

  failure(): unknown {
    return this.base.failure();
  }

  compact(): Promise<void> {
    return this.base.compact();
  }

  snapshot(
    group: GroupId,
    keyspaces: readonly KeyspaceId[],
    options?: SnapshotOptions,
  ): AsyncIterable<Uint8Array> {
    return this.base.snapshot(group, keyspaces, options);
  }

  installSnapshot(
    group: GroupId,
    chunks: AsyncIterable<Uint8Array>,
    options?: InstallOptions,
  ): Promise<SnapshotInfo> {
    return this.base.installSnapshot(group, chunks, options);
  }

  close(): Promise<void> {
    return this.base.close();
  }

  destroy(): Promise<void> {
    return this.base.destroy();
  }
}
