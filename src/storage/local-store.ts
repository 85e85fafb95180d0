/**
 * A storage node on one machine (no replication): tables as keyspaces in the two engine instances,
 * writes through the sequencer, the append-only log (group commit) and the applier; reads from the
 * engines. See docs/storage.md.
 *
 * Write pipeline (no timers; batches form under load):
 *   put() -> proposal queue -> propose loop: seq + index for every queued write, one log.append
 *   -> apply loop: one engine transaction per instance for everything durable -> acknowledge.
 * While one batch is being fsynced the next one gathers; applying batch k overlaps fsync of k + 1.
 */
import path from 'node:path';
import { checkKey, checkValue } from '../engine/checks.js';
import { openEngine } from '../engine/index.js';
import type { Engine, EngineKind, EngineRecord, KeyspaceId } from '../engine/types.js';
import { runAll } from '../lib/run-all.js';
import { TesseraError } from '../lib/errors.js';
import {
  type GroupId,
  groupId,
  type LogIndex,
  type NodeId,
  nodeId,
  type Seq,
  type Term,
} from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Log, LogOptions, LogRecord } from '../log/log.js';
import { openLog } from '../log/log.js';
import { Sequencer } from '../sequencer/sequencer.js';
import { type ApplyOutcome, GroupApplier, type TableInfo } from './applier.js';
import { type Command, encodeCommand } from './command.js';

export type { TableInfo } from './applier.js';

/** The local store runs one group. */
export const LOCAL_GROUP: GroupId = groupId(1);
const LOCAL_TERM = 1 as Term;

export interface LocalStoreOptions {
  /** Node id in the seqs (default 1). */
  nodeId?: number;
  /** Wall clock in ns since the epoch (default Date.now()). */
  clockNs?: () => bigint;
  log?: LogOptions;
  /** Checkpoint the engines and release the log every this many applied entries. */
  checkpointEntries?: number;
}

export interface Item {
  key: Uint8Array;
  value: Uint8Array;
  seq: Seq;
}

export interface ScanRange {
  start?: Uint8Array;
  end?: Uint8Array;
  prefix?: Uint8Array;
  limit?: number;
}

type Pending = { cmd: Command; resolve: (o: ApplyOutcome) => void; reject: (e: unknown) => void };
/** Writes with consecutive log indexes from `first`. */
type Staged = { first: number; items: Pending[]; payloads: Buffer[] };

const tableNameRe = /^[A-Za-z0-9_.-]{1,64}$/;

function checkTableName(name: string): void {
  if (typeof name !== 'string' || !tableNameRe.test(name)) {
    throw new TesseraError('INVALID_TABLE_NAME', `bad table name ${JSON.stringify(name)}`);
  }
}

function liveItem(r: EngineRecord | undefined): { value: Uint8Array; seq: Seq } | undefined {
  return r === undefined || r.tombstone ? undefined : { value: r.value, seq: r.seq };
}

function outcomeError(o: ApplyOutcome, what: string): TesseraError | undefined {
  return o.ok ? undefined : new TesseraError(o.code, `${what}: ${o.code}`);
}

export class LocalStore {
  readonly dir: string;
  private readonly log: Log;
  private readonly engines: Record<EngineKind, Engine>;
  private readonly applier: GroupApplier;
  private readonly sequencer: Sequencer;
  private readonly clockNs: () => bigint;
  private readonly checkpointEntries: number;
  private nextIndex: number;
  private inflight = 0;
  private appendError: unknown;
  private readonly durable: Staged[] = [];
  /** Writes sequenced in this turn, appended together (appendStaged). */
  private staged: Staged = { first: 0, items: [], payloads: [] };
  private applying = false;
  private sinceCheckpoint = 0;
  private checkpointRunning: Promise<void> | undefined;
  private readonly reads: {
    t: TableInfo;
    key: Uint8Array;
    resolve: (r: EngineRecord | undefined) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private failure: TesseraError | undefined;
  private closed = false;
  /** Entries replayed by the last open (for tests and the benchmark). */
  replayed = 0;

  private constructor(
    dir: string,
    log: Log,
    engines: Record<EngineKind, Engine>,
    applier: GroupApplier,
    opts: LocalStoreOptions,
  ) {
    this.dir = dir;
    this.log = log;
    this.engines = engines;
    this.applier = applier;
    this.clockNs = opts.clockNs ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.sequencer = new Sequencer(nodeId(opts.nodeId ?? 1) as NodeId, applier.highSeq);
    this.checkpointEntries = opts.checkpointEntries ?? 100_000;
    this.nextIndex = (log.groupState(LOCAL_GROUP)?.lastIndex ?? 0) + 1;
  }

  /** Opens (or creates) the store in `dir`: engines, log, then replay from the applied position. */
  static async open(dir: string, opts: LocalStoreOptions = {}): Promise<LocalStore> {
    const engines = {
      btree: await openEngine('btree', path.join(dir, 'btree')),
      lsm: await openEngine('lsm', path.join(dir, 'lsm')),
    };
    const applier = await GroupApplier.open(LOCAL_GROUP, engines);
    // The scan keeps the entries replay reads next in memory (no second read and CRC pass).
    const log = await openLog(path.join(dir, 'log'), {
      keep: {
        from: (group) => (group === LOCAL_GROUP ? applier.appliedIndex + 1 : undefined),
        bytesMax: limits.storeReplayKeptBytesMax,
      },
      ...opts.log,
    });
    let replayed: number;
    try {
      replayed = await applier.recover(log);
    } finally {
      log.releaseKept();
    }
    const store = new LocalStore(dir, log, engines, applier, opts);
    store.replayed = replayed;
    return store;
  }

  // ---- tables ----

  async createTable(name: string, engine: EngineKind = 'btree'): Promise<TableInfo> {
    checkTableName(name);
    if (engine !== 'btree' && engine !== 'lsm')
      throw new TesseraError('INVALID_ENGINE', `bad engine ${engine}`);
    if (this.applier.table(name)) throw new TesseraError('TABLE_EXISTS', `table ${name} exists`);
    const o = await this.propose((seq) => ({ op: 'createTable', seq, engine, name }));
    const err = outcomeError(o, `create table ${name}`);
    if (err) throw err;
    return (o as { table: TableInfo }).table;
  }

  /** Drops the table and all its data (the space is freed). */
  async dropTable(name: string): Promise<void> {
    const t = this.table(name);
    const o = await this.propose((seq) => ({
      op: 'dropTable',
      seq,
      keyspace: t.keyspace,
      engine: t.engine,
      name,
    }));
    const err = outcomeError(o, `drop table ${name}`);
    if (err) throw err;
  }

  listTables(): TableInfo[] {
    return this.applier.tables();
  }

  table(name: string): TableInfo {
    const t = this.applier.table(name);
    if (!t) throw new TesseraError('TABLE_NOT_FOUND', `no table ${name}`);
    return t;
  }

  // ---- data ----

  /** Durable (fsynced) and applied when it resolves; returns the write's seq. */
  async put(table: string, key: Uint8Array, value: Uint8Array): Promise<{ seq: Seq }> {
    checkKey(key);
    checkValue(value);
    const ks = this.table(table).keyspace;
    const o = await this.propose((seq) => ({ op: 'put', keyspace: ks, seq, key, value }));
    const err = outcomeError(o, `put ${table}`);
    if (err) throw err;
    return { seq: (o as { seq: Seq }).seq };
  }

  /** Writes a tombstone; KEY_NOT_FOUND if the key is absent. */
  async delete(table: string, key: Uint8Array): Promise<{ seq: Seq }> {
    checkKey(key);
    const ks = this.table(table).keyspace;
    const o = await this.propose((seq) => ({ op: 'delete', keyspace: ks, seq, key }));
    const err = outcomeError(o, `delete ${table}`);
    if (err) throw err;
    return { seq: (o as { seq: Seq }).seq };
  }

  get(table: string, key: Uint8Array): Promise<{ value: Uint8Array; seq: Seq } | undefined> {
    try {
      checkKey(key);
      const now = this.applier.getSync(this.table(table), key);
      // Served on this thread: one settled promise, no await hop.
      if (now !== null) return Promise.resolve(liveItem(now));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.getRecord(table, key).then(liveItem);
  }

  /**
   * The applied record including a tombstone (its seq), for checks and replica comparison. Served
   * on the calling thread (memtable, then the engine's synchronous read: no thread-pool round
   * trip); while the engine cannot read synchronously, reads issued together are served by one
   * engine call per instance.
   */
  getRecord(table: string, key: Uint8Array): Promise<EngineRecord | undefined> {
    checkKey(key);
    const t = this.table(table);
    const now = this.applier.getSync(t, key);
    if (now !== null) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      this.reads.push({ t, key, resolve, reject });
      if (this.reads.length === 1) setImmediate(() => void this.readBatch());
    });
  }

  private async readBatch(): Promise<void> {
    while (this.reads.length > 0) {
      const batch = this.reads.splice(0, limits.storeGetBatchMax);
      try {
        const got = await this.applier.getMany(batch);
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(got[i]);
      } catch (e) {
        for (const r of batch) r.reject(e);
      }
    }
  }

  /** Ordered scan; sees every write acknowledged before it started. */
  async scan(table: string, range: ScanRange = {}): Promise<Item[]> {
    const t = this.table(table);
    const limit = Math.min(range.limit ?? limits.scanLimitDefault, limits.scanLimitMax);
    await this.applier.flushedUpTo();
    const rows = await this.engines[t.engine].scan(t.keyspace as KeyspaceId, { ...range, limit });
    return rows.map((r) => ({ key: r.key, value: r.value, seq: r.seq }));
  }

  /** Flushes the memtable, makes the engines durable and releases the log up to them. */
  async checkpoint(): Promise<void> {
    await this.checkpointRunning;
    await this.applier.drain();
    await this.applier.checkpoint(this.log);
  }

  /** Checkpoints (engines durable, log released) and closes everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.inflight > 0 || this.applying || this.durable.length > 0) {
      await new Promise((r) => setImmediate(r));
    }
    await this.checkpointRunning;
    // Everything is closed even if the last checkpoint fails (a full disk); its error is thrown then.
    await runAll([
      async () => {
        if (this.failure) return;
        await this.applier.drain();
        await this.applier.checkpoint(this.log);
      },
      () => this.log.close(),
      () => this.engines.btree.close(),
      () => this.engines.lsm.close(),
    ]);
  }

  /** Log and engine figures for tests and the benchmark. */
  stats(): { appliedIndex: number; segments: number } {
    return { appliedIndex: this.applier.appliedIndex, segments: this.log.segmentList().length };
  }

  // ---- the write pipeline ----

  /**
   * Sequences the write (seq + next log index, in call order) and stages it; the writes staged in
   * one turn of the microtask queue go to the log in appends of up to logSliceRecords (one promise
   * and one bookkeeping entry per append, not per write; the log's slice, so a burst can be split
   * into two batches), and the log batches every append that arrives while an fsync runs into
   * the next one.
   */
  private propose(make: (seq: Seq) => Command): Promise<ApplyOutcome> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new TesseraError('UNAVAILABLE', 'the store is closing'));
    if (this.appendError) return Promise.reject(this.appendError); // until in-flight appends settle
    if (this.inflight >= limits.proposalQueueMax) {
      return Promise.reject(new TesseraError('TOO_MANY_REQUESTS', 'too many writes waiting'));
    }
    const cmd = make(this.sequencer.next(this.clockNs()));
    const payload = encodeCommand(cmd);
    const index = this.nextIndex++;
    this.inflight++;
    return new Promise<ApplyOutcome>((resolve, reject) => {
      const s = this.staged;
      if (s.items.length === 0) {
        s.first = index;
        queueMicrotask(this.appendStaged);
      }
      s.items.push({ cmd, resolve, reject });
      s.payloads.push(payload);
      if (s.items.length >= limits.logSliceRecords) this.appendStaged();
    });
  }

  /** Appends the staged writes (consecutive indexes from `first`) as one log append. */
  private readonly appendStaged = (): void => {
    const b = this.staged;
    if (b.items.length === 0) return;
    this.staged = { first: 0, items: [], payloads: [] };
    const records: LogRecord[] = b.payloads.map((payload, k) => ({
      kind: 'entry',
      group: LOCAL_GROUP,
      term: LOCAL_TERM,
      index: (b.first + k) as LogIndex,
      payload,
    }));
    const n = b.items.length;
    this.log.append(records).then(
      () => {
        // Appends resolve in log order, so `durable` stays in index order.
        this.inflight -= n;
        this.durable.push(b);
        if (!this.applying) void this.applyLoop();
      },
      (e: unknown) => {
        // DISK_FULL (or RECORD_TOO_LARGE): nothing of it is in the log, nor of any append after
        // it. New writes are refused until every in-flight append has settled, then the index
        // counter restarts from the log's end.
        this.inflight -= n;
        this.appendError ??= e;
        if (this.inflight === 0) {
          this.nextIndex = (this.log.groupState(LOCAL_GROUP)?.lastIndex ?? 0) + 1;
          this.appendError = undefined;
        }
        for (const it of b.items) it.reject(e);
      },
    );
  };

  private async applyLoop(): Promise<void> {
    this.applying = true;
    while (this.durable.length > 0) {
      const batches = this.durable.splice(0);
      const items = batches.flatMap((b) => b.items);
      const entries = batches.flatMap((b) =>
        b.payloads.map((payload, k) => ({ index: b.first + k, payload })),
      );
      try {
        if (this.failure) throw this.failure;
        const outcomes = await this.applier.apply(entries);
        for (let k = 0; k < items.length; k++) items[k]!.resolve(outcomes[k]!);
        this.sinceCheckpoint += entries.length;
        if (this.sinceCheckpoint >= this.checkpointEntries && !this.checkpointRunning) {
          // In the background: applies go on while the engines sync.
          this.sinceCheckpoint = 0;
          this.checkpointRunning = this.applier
            .checkpoint(this.log)
            .catch(() => {}) // a failed checkpoint only delays log compaction
            .finally(() => {
              this.checkpointRunning = undefined;
            });
        }
      } catch (e) {
        // The entries are durable in the log but not applied: refuse writes from now on with the
        // cause (DISK_FULL for a full disk); reads are still served. These writes are not refused:
        // a reopen replays them, so their outcome is unknown until then.
        this.failure ??=
          e instanceof TesseraError ? e : new TesseraError('INTERNAL', `apply failed: ${String(e)}`);
        const unknown = new TesseraError(
          'OUTCOME_UNKNOWN',
          `logged but not applied (${this.failure.code}: ${this.failure.message}); applied when the store is reopened`,
        );
        for (const it of items) it.reject(unknown);
      }
    }
    this.applying = false;
  }
}
