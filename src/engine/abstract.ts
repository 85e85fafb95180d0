/**
 * The engine base class: public methods validate and normalize, then call the implementation's
 * primitives (_getRaw, _range, _write, _clearRange, ...). Everything that mutates goes through one
 * queue per instance, so the reconciler's read-then-write is atomic without locks in the engines.
 */
import { rm } from 'node:fs/promises';
import { assert } from '../lib/assert.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { logIndex } from '../lib/ids.js';
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { compareSeq, seqMax } from '../sequencer/seq.js';
import {
  appliedKey,
  compareRecordSeq,
  copyRange,
  dataKey,
  decodeApplied,
  decodeRecord,
  encodeApplied,
  encodeRecord,
  keyspacePrefix,
  metaKey,
  metaPrefixLength,
  nextKey,
  scanBounds,
  successor,
  tombstoneBit,
  writeVarint,
  zeroSeq,
} from './keys.js';
import type {
  AppliedPosition,
  ApplyOptions,
  ApplyResult,
  Engine,
  EngineEntry,
  EngineKind,
  EngineOptions,
  EngineRecord,
  EngineSupports,
  EngineWrite,
  InstallOptions,
  KeyspaceId,
  MetaRecord,
  MetaWrite,
  ScanOptions,
  SnapshotInfo,
  SnapshotOptions,
} from './types.js';
import { PackedWrites } from './packed.js';
import { installSnapshot, streamSnapshot } from './snapshot-io.js';
import {
  checkGroup,
  checkKey,
  checkKeyspace,
  checkMeta,
  checkSeq,
  checkWrite,
  mapIoError,
} from './checks.js';

export interface RawEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** One mutation of the underlying store; `value: undefined` removes the key. */
export interface RawOp {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

/** A consistent read view (LMDB read transaction, LevelDB snapshot). */
export interface ReadView {
  release(): void;
}

const latin1 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** An engine's work on a packed batch done ahead of its turn (see _prepare); freed by discard(). */
export interface PreparedWrites {
  discard(): void;
}

export abstract class AbstractEngine implements Engine {
  abstract readonly kind: EngineKind;
  abstract readonly supports: EngineSupports;
  readonly dir: string;
  protected readonly syncEachBatch: boolean;
  private queue: Promise<unknown> = Promise.resolve();
  /** Commits of batches queued ahead (see _queuesInOrder); settles once all of them have. */
  private commitsAhead: Promise<unknown> = Promise.resolve();
  /** Per group, the position of the last batch queued ahead: what the store holds once it commits. */
  private readonly positionsAhead = new Map<GroupId, { index: LogIndex; seq: Seq }>();
  /**
   * Why a data batch's write failed (applyBatch, applyPacked). The caller may have issued the
   * group's next batches already (a replay keeps several in flight) and may issue more before it
   * sees the failure; committed, they would carry an applied position past the failed batch's
   * entries. So this instance writes nothing more (reads go on); a reopen replays from the stored
   * position.
   */
  private writeFailure: unknown;
  private readonly scratchKey = Buffer.allocUnsafeSlow(6 + limits.keyBytesMax);
  private state: 'open' | 'closing' | 'closed' = 'open';

  protected constructor(dir: string, options: EngineOptions) {
    this.dir = dir;
    this.syncEachBatch = options.syncEachBatch ?? false;
  }

  // --- primitives the engines implement -----------------------------------------------------------
  /** Resolves when views can be opened (an engine may be swapping files in compact()). */
  _ready(): Promise<void> {
    return Promise.resolve();
  }
  abstract _openView(): ReadView;
  /** Point reads; each result is a buffer of the caller's own. */
  abstract _getRaw(keys: readonly Uint8Array[], view?: ReadView): Promise<(Uint8Array | undefined)[]>;
  /**
   * One read on the calling thread; the result may be a reused buffer (decode it at once) unless
   * rawSyncOwned. null: busy.
   */
  abstract _getRawSync(key: Uint8Array): Uint8Array | undefined | null;
  /** Whether _getRawSync's buffers are the caller's own (LevelDB's are fresh; LMDB's are reused). */
  protected readonly rawSyncOwned: boolean = false;
  /** Entries with gte <= key < lt (lt undefined: no bound), ascending, at most `limit`. */
  abstract _range(
    gte: Uint8Array,
    lt: Uint8Array | undefined,
    limit: number,
    view?: ReadView,
  ): Promise<RawEntry[]>;
  /**
   * Writes `packed` (if any), then `ops`, as one atomic batch (in order: a later op on a key wins).
   * `prepared` is what _prepare returned for `packed`, if anything.
   */
  abstract _write(
    ops: readonly RawOp[],
    sync: boolean,
    packed?: PackedWrites,
    prepared?: PreparedWrites,
  ): Promise<void>;
  /**
   * Work on a trusted-order packed batch that needs nothing the store holds, done when the batch
   * arrives rather than in its turn (LevelDB builds its write batch here while the batch before
   * it is written). Handed to _write with the batch; undefined: nothing done ahead.
   */
  _prepare(_packed: PackedWrites): PreparedWrites | undefined {
    return undefined;
  }
  /**
   * Whether a _write of this many operations has queued all of them, in the order of the calls,
   * by the time it returns, and commits them in that order (lmdb-js: one write thread). Such a
   * trusted-order packed batch is queued as soon as the batch before it is queued, not once it
   * has committed: the engine's thread never waits for the JS thread between replay chunks or
   * memtable flushes. Jobs that read (the reconciler, compaction, snapshots) still run only after
   * every queued batch has committed.
   */
  _queuesInOrder(_operations: number): boolean {
    return false;
  }
  /**
   * Writes a trusted-order packed batch (`packed`, then `ops`, atomically) queued behind every
   * batch queued before it (only where _queuesInOrder). It commits only if each of those did: a
   * batch behind a failed one fails too and leaves nothing in the store, so the store always holds
   * a prefix of the queued batches and an applied position never covers entries it lacks.
   */
  _writeAhead(_ops: readonly RawOp[], _packed: PackedWrites): Promise<void> {
    return Promise.reject(new Error(`engine ${this.kind} does not queue batches ahead`));
  }
  abstract _clearRange(gte: Uint8Array, lt: Uint8Array | undefined): Promise<void>;
  abstract _sync(): Promise<void>;
  abstract _compact(gte?: Uint8Array, lt?: Uint8Array): Promise<void>;
  abstract _close(): Promise<void>;

  /** Removes the engine's directory (after _close). */
  async _destroy(): Promise<void> {
    assert(this.dir.length > 1, 'refusing to remove this directory');
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Runs `job` after every mutation queued before it has committed (one writer per instance). */
  _exclusive<T>(job: () => Promise<T>): Promise<T> {
    return this.inTurn(async () => {
      await this.commitsAhead;
      this.positionsAhead.clear(); // the store holds them now
      return job();
    });
  }

  /**
   * Runs `job` once the jobs before it are done (batches queued ahead may still be committing);
   * refused once a data batch's write has failed (see writeFailure).
   */
  private inTurn<T>(job: () => Promise<T>): Promise<T> {
    assert(this.state === 'open', `engine ${this.kind} is ${this.state}`);
    const run = this.queue.then(() => {
      if (this.writeFailure !== undefined) throw this.refusal(this.writeFailure);
      return job();
    });
    this.queue = run.catch(() => undefined);
    return run.catch((e: unknown) => {
      throw mapIoError(e);
    });
  }

  /** The error for a write after a failed commit: the failure's code (DISK_FULL...) if it has one. */
  private refusal(cause: unknown): Error {
    const why = cause instanceof Error ? cause.message : String(cause);
    const message = `index engine ${this.kind}: no writes after a failed commit (${why}); reopen to recover`;
    return cause instanceof TesseraError ? new TesseraError(cause.code, message) : new Error(message);
  }

  failure(): unknown {
    return this.writeFailure;
  }

  protected assertOpen(): void {
    assert(this.state === 'open', `engine ${this.kind} is ${this.state}`);
  }

  // --- reads ----------------------------------------------------------------------------------------
  async get(keyspace: KeyspaceId, key: Uint8Array): Promise<EngineRecord | undefined> {
    const [r] = await this.getMany([{ keyspace, key }]);
    return r;
  }

  getSync(keyspace: KeyspaceId, key: Uint8Array): EngineRecord | undefined | null {
    this.assertOpen();
    checkKeyspace(keyspace);
    checkKey(key);
    // The lookup key is built in a scratch buffer: both libraries copy it during the call.
    const at = writeVarint(this.scratchKey, 0, keyspace + 1);
    this.scratchKey.set(key, at);
    const raw = this._getRawSync(this.scratchKey.subarray(0, at + key.length));
    return raw === undefined || raw === null ? raw : decodeRecord(raw, this.rawSyncOwned);
  }

  async getMany(
    reads: readonly { readonly keyspace: KeyspaceId; readonly key: Uint8Array }[],
  ): Promise<(EngineRecord | undefined)[]> {
    this.assertOpen();
    const keys = reads.map((r) => {
      checkKeyspace(r.keyspace);
      checkKey(r.key);
      return dataKey(keyspacePrefix(r.keyspace), r.key);
    });
    const raws = await this._getRaw(keys);
    return raws.map((raw) => (raw === undefined ? undefined : decodeRecord(raw, true)));
  }

  async getApplied(group: GroupId): Promise<AppliedPosition> {
    this.assertOpen();
    checkGroup(group);
    const [raw] = await this._getRaw([appliedKey(group)]);
    if (raw === undefined) return { index: logIndex(0), seq: zeroSeq, installing: false };
    return decodeApplied(raw);
  }

  async readMeta(group: GroupId, prefix: Uint8Array = new Uint8Array(0)): Promise<MetaRecord[]> {
    this.assertOpen();
    checkGroup(group);
    return this._readMeta(group, prefix);
  }

  async _readMeta(group: GroupId, prefix: Uint8Array, view?: ReadView): Promise<MetaRecord[]> {
    const gte = metaKey(group, prefix);
    const skip = metaPrefixLength(group);
    const end = successor(gte);
    const out: MetaRecord[] = [];
    let from = gte;
    for (;;) {
      const page = await this._range(from, end, limits.engineSnapshotPageRecords, view);
      for (const e of page) out.push({ key: copyRange(e.key, skip), value: copyRange(e.value) });
      if (page.length < limits.engineSnapshotPageRecords) return out;
      from = nextKey((page[page.length - 1] as RawEntry).key);
    }
  }

  async scan(keyspace: KeyspaceId, options: ScanOptions = {}): Promise<EngineEntry[]> {
    this.assertOpen();
    checkKeyspace(keyspace);
    const limit = options.limit ?? limits.scanLimitDefault;
    assert(
      Number.isInteger(limit) && limit >= 0 && limit <= limits.engineScanLimitMax,
      `bad scan limit ${limit}`,
    );
    for (const b of [options.start, options.end, options.prefix]) {
      assert(
        b === undefined || (b instanceof Uint8Array && b.length <= limits.keyBytesMax + 1),
        'bad scan bound',
      );
    }
    const bounds = scanBounds(keyspacePrefix(keyspace), options);
    if (bounds === undefined || limit === 0) return [];
    await this._ready();
    const view = this._openView();
    try {
      return await this._scanRange(
        bounds.gte,
        bounds.lt,
        bounds.skip,
        limit,
        options.includeTombstones ?? false,
        view,
      );
    } finally {
      view.release();
    }
  }

  private async _scanRange(
    gte: Uint8Array,
    lt: Uint8Array | undefined,
    skip: number,
    limit: number,
    includeTombstones: boolean,
    view: ReadView,
  ): Promise<EngineEntry[]> {
    const out: EngineEntry[] = [];
    let from = gte;
    for (;;) {
      const want = limit - out.length;
      const page = await this._range(from, lt, want, view);
      for (const e of page) {
        const rec = decodeRecord(e.value);
        if (rec.tombstone && !includeTombstones) continue;
        out.push({ key: copyRange(e.key, skip), ...rec });
      }
      if (page.length < want || out.length >= limit) return out;
      from = nextKey((page[page.length - 1] as RawEntry).key);
    }
  }

  // --- writes ---------------------------------------------------------------------------------------
  async applyBatch(
    group: GroupId,
    writes: readonly EngineWrite[],
    appliedIndex: LogIndex,
    highestSeq: Seq,
    meta: readonly MetaWrite[] = [],
    options: ApplyOptions = {},
  ): Promise<ApplyResult> {
    this.checkBatch(group, appliedIndex, highestSeq, writes.length, meta);
    for (const w of writes) checkWrite(w);
    if (options.ordered === true) {
      // A trusted-order batch needs no read: it is built now, while an earlier batch may still be
      // writing (replay prepares its next chunk this way), and written in turn.
      return this.applyPacked(group, PackedWrites.of(writes), appliedIndex, highestSeq, meta);
    }
    return this._exclusive(async () => {
      const seq = await this.nextAppliedSeq(group, appliedIndex, highestSeq);
      const { ops, result } = await this._reconcile(writes);
      for (const w of writes) if (compareSeq(w.seq, seq) > 0) seq.set(w.seq);
      await this.writeData(this.withPosition(group, ops, meta, appliedIndex, seq), this.syncEachBatch);
      return result;
    });
  }

  /** _write of a data batch; a failure stops the instance's writes (see writeFailure). */
  private async writeData(
    ops: readonly RawOp[],
    sync: boolean,
    packed?: PackedWrites,
    prepared?: PreparedWrites,
  ): Promise<void> {
    try {
      await this._write(ops, sync, packed, prepared);
    } catch (e) {
      this.writeFailure ??= mapIoError(e);
      throw e;
    }
  }

  /**
   * applyBatch of trusted-order writes already packed (ApplyOptions.ordered: each newer than what
   * the engine holds for its key, later ones in the batch win): stored without a read.
   */
  async applyPacked(
    group: GroupId,
    packed: PackedWrites,
    appliedIndex: LogIndex,
    highestSeq: Seq,
    meta: readonly MetaWrite[] = [],
  ): Promise<ApplyResult> {
    this.checkBatch(group, appliedIndex, highestSeq, packed.count, meta);
    const result = { stored: packed.count, ignored: 0 };
    if (!this.syncEachBatch && this._queuesInOrder(packed.count + meta.length + 1)) {
      const { committed } = await this.inTurn(async () => {
        const { ops, seq } = await this.packedPosition(group, packed, meta, appliedIndex, highestSeq);
        const write = this._writeAhead(ops, packed);
        this.positionsAhead.set(group, { index: appliedIndex, seq });
        const settled = write.catch((e: unknown) => {
          this.positionsAhead.clear();
          this.writeFailure ??= mapIoError(e);
        });
        this.commitsAhead = Promise.all([this.commitsAhead, settled]);
        return { committed: write }; // not awaited here: the next batch may queue behind it now
      });
      await committed.catch((e: unknown) => {
        throw mapIoError(e);
      });
      return result;
    }
    const prepared = this._prepare(packed);
    try {
      return await this._exclusive(async () => {
        const { ops } = await this.packedPosition(group, packed, meta, appliedIndex, highestSeq);
        await this.writeData(ops, this.syncEachBatch, packed, prepared);
        return result;
      });
    } finally {
      prepared?.discard();
    }
  }

  /** What applyBatch and applyPacked check before anything is written. */
  private checkBatch(
    group: GroupId,
    appliedIndex: LogIndex,
    highestSeq: Seq,
    writes: number,
    meta: readonly MetaWrite[],
  ): void {
    this.assertOpen();
    checkGroup(group);
    assert(Number.isSafeInteger(appliedIndex) && appliedIndex >= 0, 'bad applied index');
    checkSeq(highestSeq);
    assert(writes <= limits.engineBatchWritesMax, `batch of ${writes} writes is too large`);
    for (const m of meta) checkMeta(m);
  }

  /** The seq the applied position will carry: the highest of the stored one and `highestSeq` (a copy). */
  private async nextAppliedSeq(group: GroupId, appliedIndex: LogIndex, highestSeq: Seq): Promise<Seq> {
    const [rawApplied] = await this._getRaw([appliedKey(group)]);
    const prev = rawApplied === undefined ? undefined : decodeApplied(rawApplied);
    return this.positionAfter(prev, appliedIndex, highestSeq);
  }

  /**
   * The meta and position records a packed batch ends with, and the seq of that position: after
   * the position queued ahead for the group if there is one, else after the stored one.
   */
  private async packedPosition(
    group: GroupId,
    packed: PackedWrites,
    meta: readonly MetaWrite[],
    appliedIndex: LogIndex,
    highestSeq: Seq,
  ): Promise<{ ops: RawOp[]; seq: Seq }> {
    const ahead = this.positionsAhead.get(group);
    const seq = ahead
      ? this.positionAfter(ahead, appliedIndex, highestSeq)
      : await this.nextAppliedSeq(group, appliedIndex, highestSeq);
    if (compareSeq(packed.highSeq as Seq, seq) > 0) seq.set(packed.highSeq);
    return { ops: this.withPosition(group, [], meta, appliedIndex, seq), seq };
  }

  /** nextAppliedSeq given the position before (stored, or queued ahead). */
  private positionAfter(
    prev: { index: number; seq: Uint8Array } | undefined,
    appliedIndex: LogIndex,
    highestSeq: Seq,
  ): Seq {
    assert(prev === undefined || appliedIndex >= prev.index, `applied index goes back: ${appliedIndex}`);
    return seqMax((prev?.seq ?? zeroSeq) as Seq, highestSeq).slice() as Seq;
  }

  /** `ops` followed by the meta records and the group's applied position (one atomic batch). */
  private withPosition(
    group: GroupId,
    ops: RawOp[],
    meta: readonly MetaWrite[],
    appliedIndex: LogIndex,
    seq: Seq,
  ): RawOp[] {
    for (const m of meta) ops.push({ key: metaKey(group, m.key), value: m.value });
    ops.push({
      key: appliedKey(group),
      value: encodeApplied({ index: appliedIndex, seq, installing: false }),
    });
    return ops;
  }

  /** The reconciler: for each write, store it iff its seq is above the stored (or earlier) one. */
  async _reconcile(writes: readonly EngineWrite[]): Promise<{ ops: RawOp[]; result: ApplyResult }> {
    const keys = writes.map((w) => dataKey(keyspacePrefix(w.keyspace), w.key));
    const current = await this._getRaw(keys);
    const overlay = new Map<string, RawOp>();
    let stored = 0;
    writes.forEach((w, i) => {
      const key = keys[i] as Uint8Array;
      const id = latin1(key);
      const cur = overlay.get(id)?.value ?? current[i];
      if (cur !== undefined && compareRecordSeq(cur, w.seq) >= 0) return;
      overlay.set(id, { key, value: encodeRecord(w.seq, w.type === 'put' ? w.value : undefined) });
      stored++;
    });
    return { ops: [...overlay.values()], result: { stored, ignored: writes.length - stored } };
  }

  async dropKeyspace(keyspace: KeyspaceId): Promise<void> {
    checkKeyspace(keyspace);
    const gte = keyspacePrefix(keyspace);
    return this._exclusive(async () => {
      await this._clearRange(gte, successor(gte));
      await this._compact(gte, successor(gte));
    });
  }

  /**
   * Removes the keyspace's tombstones whose seq is below `belowSeq` (a seq every replica of the group
   * has applied, so no lagging replica or snapshot can bring the key back). Returns how many went.
   */
  async purgeTombstones(keyspace: KeyspaceId, belowSeq: Seq): Promise<number> {
    checkKeyspace(keyspace);
    checkSeq(belowSeq);
    const prefix = keyspacePrefix(keyspace);
    return this._exclusive(async () => {
      let purged = 0;
      let from = prefix;
      for (;;) {
        const page = await this._range(from, successor(prefix), limits.engineClearBatchKeysMax);
        const ops: RawOp[] = [];
        for (const e of page) {
          const dead = ((e.value[0] as number) & tombstoneBit) !== 0;
          if (dead && compareRecordSeq(e.value, belowSeq) < 0) ops.push({ key: e.key, value: undefined });
        }
        if (ops.length > 0) await this._write(ops, false);
        purged += ops.length;
        if (page.length < limits.engineClearBatchKeysMax) return purged;
        from = nextKey((page[page.length - 1] as RawEntry).key);
      }
    });
  }

  async dropGroup(group: GroupId): Promise<void> {
    checkGroup(group);
    const gte = appliedKey(group).subarray(0, metaPrefixLength(group) - 1);
    return this._exclusive(() => this._clearRange(gte, successor(gte)));
  }

  async checkpoint(): Promise<void> {
    return this._exclusive(() => this._sync());
  }

  async compact(): Promise<void> {
    return this._exclusive(() => this._compact());
  }

  // --- snapshots ------------------------------------------------------------------------------------
  snapshot(
    group: GroupId,
    keyspaces: readonly KeyspaceId[],
    options: SnapshotOptions = {},
  ): AsyncIterable<Uint8Array> {
    this.assertOpen();
    checkGroup(group);
    keyspaces.forEach(checkKeyspace);
    return streamSnapshot(this, group, keyspaces, options);
  }

  async installSnapshot(
    group: GroupId,
    chunks: AsyncIterable<Uint8Array>,
    options: InstallOptions = {},
  ): Promise<SnapshotInfo> {
    this.assertOpen();
    checkGroup(group);
    return installSnapshot(this, group, chunks, options);
  }

  // --- lifecycle ------------------------------------------------------------------------------------
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    await this.queue;
    await this.commitsAhead;
    await this._close();
    this.state = 'closed';
  }

  async destroy(): Promise<void> {
    await this.close();
    await this._destroy();
  }
}
