/**
 * `btree`: the index engine on LMDB (lmdb-js). One environment per node, one database, keyspaces as
 * varint key prefixes (see keys.ts). Batches resolve once committed and visible, and are flushed in
 * the background (lmdb-js overlappingSync, which keeps LMDB consistent on a machine crash); the log
 * is the source of truth, and checkpoint() waits for the flush and calls mdb_env_sync. With
 * { syncEachBatch: true } each batch resolves only once flushed.
 */
import { rename, rm } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { open, type RootDatabase, type Transaction } from 'lmdb';
import { assert } from '../lib/assert.js';
import { freeBytes } from '../lib/disk.js';
import { limits } from '../lib/limits.js';
import { AbstractEngine, type RawEntry, type RawOp, type ReadView } from './abstract.js';
import { claimDir } from './checks.js';
import { chainKey, check, checkRoot, decodeChain, encodeChain, encodeRoot, rootKey } from './keys.js';
import type { PackedWrites } from './packed.js';
import type { EngineOptions, EngineSupports } from './types.js';

// The commit chain's condition reads a float64 in the host's byte order (keys.ts encodes LE).
assert(endianness() === 'LE', 'the btree engine needs a little-endian host');

interface LmdbView extends ReadView {
  readonly txn: Transaction;
}

/**
 * A key as a range of a larger array, which lmdb-js's put copies at once: PackedWrites hands its
 * keys over this way, without a view per key.
 */
interface KeyRange {
  bytes: Uint8Array;
  start: number;
  end: number;
}

/**
 * lmdb-js's key encoder (raw bytes, as keyEncoding 'binary'), taking a Uint8Array or a KeyRange and
 * copying short keys byte by byte (TypedArray.set's fixed cost was most of a 20-byte key's copy).
 */
const keyEncoder = {
  writeKey(key: Uint8Array | KeyRange, target: Uint8Array, at: number): number {
    const whole = key instanceof Uint8Array;
    const src = whole ? key : key.bytes;
    const s = whole ? 0 : key.start;
    const e = whole ? key.length : key.end;
    if (e - s > 32) {
      target.set(src.subarray(s, e), at);
      return at + e - s;
    }
    for (let i = s; i < e; i++) target[at++] = src[i] as number;
    return at;
  },
  readKey(source: Uint8Array, start: number, end: number): Uint8Array {
    return Uint8Array.prototype.slice.call(source, start, end);
  },
};

/**
 * A record as a range of the packed slab: lmdb-js takes a value's bytes from `start` to `end` of a
 * buffer that has them (the form its own encoders return), so no view per record either. The
 * write thread reads them at commit; the slab lives until then (the batch is awaited).
 */
type RangedSlab = Uint8Array & { start: number; end: number };

type Db = RootDatabase<Buffer, Buffer> & {
  sync(cb: (err?: Error) => void): void;
  getBinary(key: Buffer, options?: { transaction: Transaction }): Buffer | undefined;
  getBinaryFast(key: Buffer): Buffer | undefined;
};

export class LmdbEngine extends AbstractEngine {
  readonly kind = 'btree' as const;
  readonly supports: EngineSupports = {
    kind: 'btree',
    keyspacesAsPrefixes: true,
    deferredSync: true,
    snapshots: true,
    rangeScans: true,
    tombstones: true,
  };
  private db: Db;
  private readonly options: EngineOptions;
  /** Set while compact() swaps the file: reads wait for it. */
  private swapping: Promise<void> | undefined;
  private views = 0;
  /**
   * The commit chain's value once every batch queued ahead has committed (undefined: read it). It
   * only grows, failed batches or not: a batch queued after a failed one must not commit.
   */
  private chainNext: number | undefined;
  /** Set once a commit has failed (see _sync). */
  private commitFailed = false;

  private constructor(dir: string, options: EngineOptions, db: Db) {
    super(dir, options);
    this.db = db;
    this.options = options;
  }

  private static openDb(dir: string, options: EngineOptions): Db {
    const sync = options.syncEachBatch ?? false;
    return open<Buffer, Buffer>({
      path: join(dir, 'index.mdb'),
      keyEncoder,
      encoding: 'binary',
      noSync: !sync && options.lmdbMode === 'noSync',
      overlappingSync: !sync && options.lmdbMode !== 'noSync',
      compression: false,
      cache: false,
      // Transactions only as the engine makes them (a block per batch, see _write and _writeAhead):
      // lmdb-js's event-turn batch would add a commit promise of its own, nobody's, which rejects
      // unhandled when that transaction's commit fails.
      eventTurnBatching: false,
    }) as Db;
  }

  static async open(dir: string, options: EngineOptions = {}): Promise<LmdbEngine> {
    await claimDir(dir, 'btree');
    const db = LmdbEngine.openDb(dir, options);
    const engine = new LmdbEngine(dir, options, db);
    const root = db.getBinary(Buffer.from(rootKey));
    const first: RawOp[] = [];
    if (root === undefined) first.push({ key: rootKey, value: encodeRoot('btree') });
    else checkRoot(root, 'btree');
    // Stores written before the commit chain get one at 0.
    if (db.getBinary(Buffer.from(chainKey)) === undefined)
      first.push({ key: chainKey, value: encodeChain(0) });
    if (first.length > 0) await engine._write(first, true);
    return engine;
  }

  override async _ready(): Promise<void> {
    while (this.swapping !== undefined) await this.swapping;
  }

  _openView(): LmdbView {
    assert(this.swapping === undefined, 'read view opened during compaction');
    const txn = this.db.useReadTransaction();
    this.views++;
    return {
      txn,
      release: () => {
        txn.done();
        this.views--;
      },
    };
  }

  async _getRaw(keys: readonly Uint8Array[], view?: ReadView): Promise<(Uint8Array | undefined)[]> {
    if (this.swapping !== undefined) await this.swapping;
    const options = view === undefined ? undefined : { transaction: (view as LmdbView).txn };
    return keys.map((k) => {
      const v = this.db.getBinary(asBuffer(k), options);
      return v === undefined ? undefined : new Uint8Array(v);
    });
  }

  _getRawSync(key: Uint8Array): Uint8Array | undefined | null {
    if (this.swapping !== undefined) return null;
    return this.db.getBinaryFast(asBuffer(key));
  }

  async _range(
    gte: Uint8Array,
    lt: Uint8Array | undefined,
    limit: number,
    view?: ReadView,
  ): Promise<RawEntry[]> {
    const out: RawEntry[] = [];
    if (limit === 0) return out;
    const range = this.db.getRange({
      start: asBuffer(gte),
      ...(lt === undefined ? {} : { end: asBuffer(lt) }),
      limit,
      ...(view === undefined ? {} : { transaction: (view as LmdbView).txn }),
    });
    for (const { key, value } of range) {
      out.push({ key: new Uint8Array(key), value: new Uint8Array(value) });
    }
    return out;
  }

  /** Batches written by the write thread (below) are queued at once and committed in order. */
  override _queuesInOrder(operations: number): boolean {
    return operations >= limits.lmdbOffThreadWritesMin;
  }

  /**
   * Commits only if every batch queued ahead before it did: the batch is one lmdb-js conditional
   * block on the commit chain (see keys.ts), which it advances. lmdb-js settles each transaction on
   * its own: without the chain, a batch queued behind one whose commit failed (EIO, ENOSPC) would
   * commit, and its applied position would cover the failed batch's entries. With it, the later
   * batch's condition fails on the write thread, so the store holds a prefix of the batches.
   */
  override async _writeAhead(ops: readonly RawOp[], packed: PackedWrites): Promise<void> {
    const after = this.chainNext ?? this.storedChain();
    // Advanced before the block is queued: if queueing throws half-way, lmdb-js still commits what
    // the block holds (without the chain's put), and no batch after it may commit then.
    this.chainNext = after + 1;
    const next = encodeChain(after + 1);
    const block = this.db.ifVersion(chainKey as Buffer, after, () => {
      this.queueWrites(ops, packed);
      this.db.put(chainKey as Buffer, next as Buffer);
    });
    const committed = await this.commit(block);
    // chainNext stays: every batch queued after this one expects a value it never got.
    if (!committed) {
      throw new Error('index engine: batch not written: a batch queued before it was not committed');
    }
  }

  async _write(ops: readonly RawOp[], sync: boolean, packed?: PackedWrites): Promise<void> {
    if (ops.length + (packed?.count ?? 0) >= limits.lmdbOffThreadWritesMin) {
      // One lmdb-js block: committed in one transaction, so data and applied position stay atomic.
      await this.commit(this.db.batch(() => this.queueWrites(ops, packed)));
    } else {
      await this.commit(
        this.db.transaction(() => {
          packed?.forEach((key, record) => {
            this.db.putSync(key as Buffer, record as Buffer);
          });
          for (const op of ops) {
            if (op.value === undefined) this.db.removeSync(op.key as Buffer);
            else this.db.putSync(op.key as Buffer, op.value as Buffer);
          }
        }),
      );
    }
    if (sync && !this.syncEachBatch) await this._sync();
  }

  /**
   * Queues `packed`, then `ops`, as lmdb-js asynchronous writes: this loop only queues them (~0.5 us
   * each); its write thread does the B+ tree work (~4-16 us each) off the JS thread, and the
   * caller's block settles them all. lmdb-js copies binary keys and values with Uint8Array.set: plain
   * Uint8Arrays need no Buffer, and the packed views may die at once. Packed writes go in about key
   * order: the write thread's inserts then hit the same pages.
   */
  private queueWrites(ops: readonly RawOp[], packed: PackedWrites | undefined): void {
    const key: KeyRange = { bytes: new Uint8Array(0), start: 0, end: 0 };
    packed?.forEachRange((slab, k0, v0, end) => {
      assert(slab.byteOffset === 0, 'packed slab is a view');
      const value = slab as RangedSlab;
      key.bytes = slab;
      key.start = k0;
      key.end = v0;
      value.start = v0;
      value.end = end;
      void this.db.put(key as unknown as Buffer, value as unknown as Buffer);
    }, true);
    for (const op of ops) {
      if (op.value === undefined) void this.db.remove(op.key as Buffer);
      else void this.db.put(op.key as Buffer, op.value as Buffer);
    }
  }

  /**
   * Awaits an lmdb-js transaction; a failed commit throws its cause (see commitCause), whose
   * promise is then handled too: unhandled, it would stop the process.
   */
  private async commit<T>(transaction: Promise<T>): Promise<T> {
    try {
      return await transaction;
    } catch (e) {
      this.commitFailed = true;
      throw await commitCause(e, this.dir);
    }
  }

  /** The commit chain's stored value (open() writes one). */
  private storedChain(): number {
    const raw = this.db.getBinary(Buffer.from(chainKey));
    check(raw !== undefined, 'the commit chain record is missing');
    return decodeChain(raw);
  }

  async _clearRange(gte: Uint8Array, lt: Uint8Array | undefined): Promise<void> {
    for (;;) {
      const keys = [
        ...this.db.getKeys({
          start: asBuffer(gte),
          ...(lt === undefined ? {} : { end: asBuffer(lt) }),
          limit: limits.engineClearBatchKeysMax,
        }),
      ];
      if (keys.length === 0) return;
      await this.commit(
        this.db.transaction(() => {
          for (const k of keys) this.db.removeSync(k);
        }),
      );
    }
  }

  async _sync(): Promise<void> {
    // A failed commit's flush promise never settles: after one, the environment sync alone.
    if (!this.commitFailed) await this.db.flushed;
    await syncDb(this.db);
  }

  /**
   * A range: nothing to do (LMDB reuses freed pages). The whole instance: copies every record, in
   * key order, into a fresh file and swaps it in, skipped while a snapshot view is open. Not
   * mdb_env_copy's compacting mode: a file it wrote crashed LMDB (`key.mv_size > 0` assertion in
   * mdb_page_alloc) once a dropped keyspace's pages were reused (test/engine/keys.test.ts).
   */
  async _compact(gte?: Uint8Array): Promise<void> {
    if (gte !== undefined || this.views > 0) return;
    const path = join(this.dir, 'index.mdb');
    const tmp = `${path}.compact`;
    await rm(tmp, { force: true });
    await rm(`${tmp}-lock`, { force: true });
    await this._sync();
    const copy = open<Buffer, Buffer>({
      path: tmp,
      keyEncoding: 'binary',
      encoding: 'binary',
      noSync: true,
      compression: false,
      cache: false,
    }) as Db;
    try {
      let batch: { key: Buffer; value: Buffer }[] = [];
      const write = (): void => {
        const rows = batch;
        batch = [];
        copy.transactionSync(() => {
          for (const r of rows) copy.putSync(r.key, r.value, { append: true }); // key order: full pages
        });
      };
      // An explicit start: with a key encoder lmdb-js's default start is [5], past keys below it.
      for (const { key, value } of this.db.getRange({ start: Buffer.of(0) })) {
        batch.push({ key: Buffer.from(key), value: Buffer.from(value) });
        if (batch.length >= limits.engineClearBatchKeysMax) write();
      }
      if (batch.length > 0) write();
      await syncDb(copy);
    } finally {
      await copy.close();
      await rm(`${tmp}-lock`, { force: true });
    }
    let done = (): void => undefined;
    this.swapping = new Promise((resolve) => {
      done = resolve;
    });
    try {
      await this.db.close();
      await rename(tmp, path);
      this.db = LmdbEngine.openDb(this.dir, this.options);
    } finally {
      this.swapping = undefined;
      done();
    }
  }

  async _close(): Promise<void> {
    try {
      await this._sync();
    } finally {
      if (this.commitFailed) {
        // lmdb-js's close() waits for the last transaction's flush, which a failed commit never
        // reports; the write thread is done with it (the commit's promise has settled).
        (this.db as unknown as { _endWrites: () => undefined })._endWrites = () => undefined;
      }
      await this.db.close();
    }
  }
}

/** Flushes the environment's data file (fsync). */
function syncDb(db: Db): Promise<void> {
  return new Promise((resolve, reject) => db.sync((err) => (err ? reject(err) : resolve())));
}

/**
 * The error behind lmdb-js's "Commit failed (see commitError for details)": its commitError promise
 * rejects with the LMDB or system error (EIO, ENOSPC) once the write thread reports it. Handled
 * here, it is not an unhandled rejection either.
 */
async function commitCause(e: unknown, dir: string): Promise<unknown> {
  const pending = (e as { commitError?: Promise<unknown> } | undefined)?.commitError;
  if (!(pending instanceof Promise)) return e;
  let timer: NodeJS.Timeout | undefined;
  const cause = await Promise.race([
    pending.then(
      () => e,
      (c: unknown) => c,
    ),
    new Promise<unknown>((resolve) => {
      timer = setTimeout(() => resolve(e), limits.lmdbCommitErrorWaitMs).unref();
    }),
  ]);
  clearTimeout(timer);
  if (cause === e) return e;
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | undefined)?.code;
  // LMDB reports a short page write as EIO: on a full disk that is what it says (seen on a full
  // tmpfs). With (almost) no space left, it is said as a full disk.
  const full = code === EIO && (await freeBytes(dir)) < limits.diskFullFreeBytesMax;
  return new Error(
    `index engine: commit failed: ${message}${code === undefined ? '' : ` (${String(code)})`}${full ? '; no space left on the device' : ''}`,
  );
}

const EIO = 5;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
