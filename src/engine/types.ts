/**
 * The index engine interface (abstract-level style): a public method validates and normalizes its
 * arguments, then calls the engine's implementation. Two engines implement it: `btree` (LMDB) and
 * `lsm` (LevelDB). One instance per kind per node; every table shard is a keyspace inside it.
 * See docs/engine.md for the on-disk formats and the invariants.
 */
import type { Brand, GroupId, LogIndex, Seq } from '../lib/ids.js';
import { assert } from '../lib/assert.js';
import type { PackedWrites } from './packed.js';

export type EngineKind = 'btree' | 'lsm';
export const engineKinds: readonly EngineKind[] = ['btree', 'lsm'];

/** A keyspace (one per table shard) inside an engine instance. u32; cheap (a varint key prefix). */
export type KeyspaceId = Brand<number, 'KeyspaceId'>;
export const keyspaceIdMax = 0xffff_fffe;
export const keyspaceId = (n: number): KeyspaceId => {
  assert(Number.isInteger(n) && n >= 0 && n <= keyspaceIdMax, `KeyspaceId out of range: ${n}`);
  return n as KeyspaceId;
};

/** What an engine stores per key. A tombstone has an empty value and keeps its seq. */
export interface EngineRecord {
  readonly value: Uint8Array;
  readonly seq: Seq;
  readonly tombstone: boolean;
}

export interface EngineEntry extends EngineRecord {
  readonly key: Uint8Array;
}

/** A write to apply through the reconciler: stored only if `seq` > the stored seq of the key. */
export type EngineWrite =
  | {
      readonly type: 'put';
      readonly keyspace: KeyspaceId;
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly seq: Seq;
    }
  | { readonly type: 'delete'; readonly keyspace: KeyspaceId; readonly key: Uint8Array; readonly seq: Seq };

/**
 * A group metadata record (not reconciled: last write wins), written atomically with the batch.
 * `value: undefined` deletes it. Used by the state machine for the dedup table and dropped tables.
 * Keys are 1..metaKeyBytesMax bytes.
 */
export interface MetaWrite {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

export interface MetaRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/** Per group and per instance: the applied log index and the highest applied seq. */
export interface AppliedPosition {
  /** 0 = nothing applied yet. */
  readonly index: LogIndex;
  /** 16 zero bytes when nothing applied yet. */
  readonly seq: Seq;
  /** True while a snapshot install is in progress (or was cut by a crash): the data is partial. */
  readonly installing: boolean;
}

export interface ScanOptions {
  /** Inclusive lower bound (default: start of the keyspace). */
  readonly start?: Uint8Array;
  /** Exclusive upper bound (default: end of the keyspace). */
  readonly end?: Uint8Array;
  /** Only keys starting with this prefix (combined with start/end). */
  readonly prefix?: Uint8Array;
  /** Default limits.scanLimitDefault, at most limits.engineScanLimitMax. */
  readonly limit?: number;
  /** Include tombstones (default false). */
  readonly includeTombstones?: boolean;
}

export interface ApplyResult {
  /** Writes stored (their seq was higher than the stored one). */
  readonly stored: number;
  /** Writes ignored by the reconciler (stored seq >= write seq). */
  readonly ignored: number;
}

/** Options of `applyBatch`. */
export interface ApplyOptions {
  /**
   * Trusted order (default false). Set it only for writes applied from a group's log past the
   * instance's applied index, in log order: seqs within a shard grow with the log and the applied
   * position is atomic with the data, so each such write is newer than anything stored for its key.
   * The engine then stores every write without reading the stored record first (no reconciler
   * read; a later write of a key in the same batch wins). Snapshot merges, migrations and writes
   * of unknown order must leave it unset (the reconciling path). Conditions (If-Match, a delete of
   * an absent key) are decided by the caller, which still reads the current record for those.
   */
  readonly ordered?: boolean;
}

export interface SnapshotOptions {
  /** Include the group's applied position and meta records (default true). */
  readonly meta?: boolean;
  /** Restrict the data to keys in [start, end) (for a shard split / migration). */
  readonly start?: Uint8Array;
  readonly end?: Uint8Array;
}

export interface InstallOptions {
  /**
   * 'replace' (default, a replica catching up): clears the snapshot's keyspaces and the group's meta,
   * writes the records, then sets the applied position. 'merge' (a migration target): reconciles the
   * records into the keyspaces, leaves the group's meta and applied position alone.
   */
  readonly mode?: 'replace' | 'merge';
  /** Rename keyspaces on the way in (migration to a new shard). */
  readonly keyspaceMap?: ReadonlyMap<KeyspaceId, KeyspaceId>;
}

export interface SnapshotInfo {
  readonly group: GroupId;
  readonly keyspaces: readonly KeyspaceId[];
  /** The source's applied position at the snapshot (index 0 when taken without meta). */
  readonly index: LogIndex;
  /** The source's highest applied seq: the installer must observe() it before issuing seqs. */
  readonly seq: Seq;
  readonly records: number;
}

export interface EngineSupports {
  readonly kind: EngineKind;
  /** Keyspaces are key prefixes (true) or named databases (false). */
  readonly keyspacesAsPrefixes: boolean;
  /** Batches are not fsynced one by one; checkpoint() makes them durable. */
  readonly deferredSync: boolean;
  readonly snapshots: true;
  readonly rangeScans: true;
  readonly tombstones: true;
}

export interface EngineOptions {
  /** fsync every applyBatch (default false: sync at checkpoint(); the log is the source of truth). */
  readonly syncEachBatch?: boolean;
  /**
   * btree only, when not syncing each batch: 'overlappingSync' (default: a commit resolves when
   * visible and is flushed in the background; LMDB keeps its integrity on a machine crash) or
   * 'noSync' (no flush until checkpoint; faster, but a machine crash may corrupt the file).
   */
  readonly lmdbMode?: 'overlappingSync' | 'noSync';
}

export interface Engine {
  readonly kind: EngineKind;
  readonly dir: string;
  readonly supports: EngineSupports;

  get(keyspace: KeyspaceId, key: Uint8Array): Promise<EngineRecord | undefined>;
  /**
   * The same read on the calling thread, without a promise (LMDB: from its memory map; LevelDB:
   * getSync). `null` when it cannot be served synchronously right now (a btree compaction swap):
   * use get().
   */
  getSync(keyspace: KeyspaceId, key: Uint8Array): EngineRecord | undefined | null;
  /** Batched point reads (one snapshot), in the order of `reads`. */
  getMany(
    reads: readonly { readonly keyspace: KeyspaceId; readonly key: Uint8Array }[],
  ): Promise<(EngineRecord | undefined)[]>;
  /**
   * Applies `writes` through the reconciler, the group's meta writes, and sets the group's applied
   * position to (appliedIndex, max(stored seq, highestSeq)), all in one atomic batch. appliedIndex must
   * be >= the stored one. Batches on one instance are serialized in call order. With
   * `{ordered: true}` the writes are stored without the reconciler's read (see ApplyOptions).
   */
  applyBatch(
    group: GroupId,
    writes: readonly EngineWrite[],
    appliedIndex: LogIndex,
    highestSeq: Seq,
    meta?: readonly MetaWrite[],
    options?: ApplyOptions,
  ): Promise<ApplyResult>;
  /**
   * applyBatch of trusted-order writes (ApplyOptions.ordered) already packed into one buffer (no
   * object per write: replay, memtable flushes). The applied position's seq also covers the
   * highest packed seq.
   */
  applyPacked(
    group: GroupId,
    packed: PackedWrites,
    appliedIndex: LogIndex,
    highestSeq: Seq,
    meta?: readonly MetaWrite[],
  ): Promise<ApplyResult>;
  getApplied(group: GroupId): Promise<AppliedPosition>;
  /** The group's meta records whose key starts with `prefix` (all when omitted), in key order. */
  readMeta(group: GroupId, prefix?: Uint8Array): Promise<MetaRecord[]>;
  /** Ordered forward scan of [start, end) and/or a prefix, up to `limit` entries. */
  scan(keyspace: KeyspaceId, options?: ScanOptions): Promise<EngineEntry[]>;
  /** Removes every record of the keyspace and frees the space (LevelDB: compactRange). */
  dropKeyspace(keyspace: KeyspaceId): Promise<void>;
  /** Removes the keyspace's tombstones with seq < belowSeq (applied by every replica); returns the count. */
  purgeTombstones(keyspace: KeyspaceId, belowSeq: Seq): Promise<number>;
  /** Removes the group's applied position and meta records (the replica left the group). */
  dropGroup(group: GroupId): Promise<void>;
  /** Makes everything applied so far durable (fsync). The log may be truncated after it resolves. */
  checkpoint(): Promise<void>;
  /** Full compaction (lsm: compactRange; btree: a key-order copy of the records into a fresh file, swapped in). */
  compact(): Promise<void>;
  /** A consistent snapshot of keyspaces (+ the group's meta), in chunks of ~limits.snapshotChunkBytes. */
  snapshot(
    group: GroupId,
    keyspaces: readonly KeyspaceId[],
    options?: SnapshotOptions,
  ): AsyncIterable<Uint8Array>;
  installSnapshot(
    group: GroupId,
    chunks: AsyncIterable<Uint8Array>,
    options?: InstallOptions,
  ): Promise<SnapshotInfo>;
  /**
   * Why the instance refuses writes: a data batch's write failed (a full disk, EIO), so it takes
   * none until reopened. undefined while it takes them.
   */
  failure(): unknown;
  close(): Promise<void>;
  /** Closes (if open) and deletes the instance's directory. */
  destroy(): Promise<void>;
}
