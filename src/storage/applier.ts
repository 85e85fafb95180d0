/**
 * Applies a group's committed log entries (commands) through the reconciler, and recovers by
 * replaying the log from the engines' applied position. Used by the single-node store; the same
 * "apply committed entries + replay from the applied position" serves a replica fed by Raft.
 *
 * - Applying an entry puts its write into the memtable (newest record per key, in memory): that is
 *   "applied" (reads see it), so a write is acknowledged after its fsync and this cheap step. A
 *   background flush moves the memtable into the engines in large batches (one engine transaction
 *   per instance per flush), writing each instance's applied index with the data, atomically.
 * - The log is the source of truth: it is released only up to what both engines hold durably
 *   (checkpoint), and recovery replays from the lowest applied index of the two instances; an entry
 *   is applied to an instance only if its index is above that instance's applied index.
 * - The group's table catalog (name -> keyspace, engine) lives in the btree instance's meta records.
 */
import { assert } from '../lib/assert.js';
import { type ErrorCode, TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { compareSeq, seqMax, ZERO_SEQ } from '../sequencer/seq.js';
import type {
  Engine,
  EngineKind,
  EngineRecord,
  EngineWrite,
  KeyspaceId,
  MetaWrite,
} from '../engine/types.js';
import type { Log } from '../log/log.js';
import type { PayloadRun } from '../log/types.js';
import { PackedWrites } from '../engine/packed.js';
import { type Command, decodeCommand, isPutAt, keyspaceAt, packPutAt, seqOffset } from './command.js';
import { type MemRecord, Memtable, memId } from './memtable.js';

export interface TableInfo {
  readonly name: string;
  readonly keyspace: KeyspaceId;
  readonly engine: EngineKind;
}

export type ApplyOutcome = { ok: true; seq: Seq; table?: TableInfo } | { ok: false; code: ErrorCode };

export interface CommittedEntry {
  readonly index: number;
  readonly payload: Buffer;
}

const kinds = ['btree', 'lsm'] as const;
const ordered = { ordered: true } as const;
const tablePrefix = Buffer.from('t/');
const nextKeyspaceKey = Buffer.from('n');

function tableMetaKey(name: string): Buffer {
  return Buffer.concat([tablePrefix, Buffer.from(name, 'utf8')]);
}

function tableMetaValue(t: TableInfo): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(t.keyspace, 0);
  b[4] = t.engine === 'btree' ? 1 : 2;
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

export class GroupApplier {
  readonly group: GroupId;
  private readonly engines: Record<EngineKind, Engine>;
  private readonly byName = new Map<string, TableInfo>();
  private readonly byKeyspace = new Map<number, TableInfo>();
  private nextKeyspace = 1;
  /** Per instance: every write of an entry <= this index is in the instance. */
  private readonly engineApplied: Record<EngineKind, number>;
  private readonly mem = new Memtable();
  private flushRunning: Promise<void> | undefined;
  private flushError: unknown;
  /** Every write of an entry <= flushedLast is in its engine. */
  private flushedLast: number;
  /** Someone waits for everything applied to reach the engines. */
  private forced = false;
  /** The next flush also moves an idle instance's applied index (for a checkpoint). */
  private bumpIdle = false;
  private readonly memRecordsMax: number;
  /** Every entry <= appliedIndex is applied (memtable or engines). */
  appliedIndex: number;
  /** Highest seq applied (or recorded by an engine): a sequencer must observe it. */
  highSeq: Seq;

  private constructor(
    group: GroupId,
    engines: Record<EngineKind, Engine>,
    applied: Record<EngineKind, number>,
  ) {
    this.group = group;
    this.engines = engines;
    this.engineApplied = applied;
    this.appliedIndex = Math.min(applied.btree, applied.lsm);
    this.mem.activeLast = this.appliedIndex;
    this.flushedLast = this.appliedIndex;
    this.highSeq = ZERO_SEQ;
    this.memRecordsMax = limits.storeMemtableRecordsMax;
    assert(this.memRecordsMax <= limits.engineBatchWritesMax, 'memtable larger than an engine batch');
  }

  static async open(group: GroupId, engines: Record<EngineKind, Engine>): Promise<GroupApplier> {
    const b = await engines.btree.getApplied(group);
    const l = await engines.lsm.getApplied(group);
    if (b.installing || l.installing) {
      throw new TesseraError('CORRUPTION', `group ${group}: a snapshot install was cut; catch up again`);
    }
    const a = new GroupApplier(group, engines, { btree: b.index, lsm: l.index });
    a.highSeq = seqMax(b.seq, l.seq);
    for (const m of await engines.btree.readMeta(group)) {
      const key = Buffer.from(m.key);
      const val = Buffer.from(m.value);
      if (key.equals(nextKeyspaceKey)) a.nextKeyspace = val.readUInt32BE(0);
      else if (key.subarray(0, 2).equals(tablePrefix)) {
        const engine = val[4] === 1 ? 'btree' : 'lsm';
        const t: TableInfo = {
          name: key.toString('utf8', 2),
          keyspace: val.readUInt32BE(0) as KeyspaceId,
          engine,
        };
        a.byName.set(t.name, t);
        a.byKeyspace.set(t.keyspace, t);
      }
    }
    return a;
  }

  table(name: string): TableInfo | undefined {
    return this.byName.get(name);
  }

  tables(): TableInfo[] {
    return [...this.byName.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  /** Index up to which the engines hold every write (durable after their next checkpoint). */
  get flushedIndex(): number {
    return this.flushedLast;
  }

  // ---- reads ----

  /** The record applied for a key (memtable first, then the engine), tombstones included. */
  async get(t: TableInfo, key: Uint8Array): Promise<EngineRecord | undefined> {
    const m = this.mem.lookup(t.keyspace, key);
    if (m) return m;
    return this.engines[t.engine].get(t.keyspace, key);
  }

  /** The same on the calling thread; null when the engine cannot answer synchronously now. */
  getSync(t: TableInfo, key: Uint8Array): EngineRecord | undefined | null {
    const m = this.mem.lookup(t.keyspace, key);
    if (m) return m;
    return this.engines[t.engine].getSync(t.keyspace, key);
  }

  /** Point reads in one engine call per instance. */
  async getMany(reads: readonly { t: TableInfo; key: Uint8Array }[]): Promise<(EngineRecord | undefined)[]> {
    const out: (EngineRecord | undefined)[] = new Array(reads.length);
    for (const kind of kinds) {
      const slots: number[] = [];
      const q: { keyspace: KeyspaceId; key: Uint8Array }[] = [];
      reads.forEach((r, i) => {
        if (r.t.engine !== kind) return;
        const m = this.mem.lookup(r.t.keyspace, r.key);
        if (m) out[i] = m;
        else {
          slots.push(i);
          q.push({ keyspace: r.t.keyspace, key: r.key });
        }
      });
      if (q.length === 0) continue;
      const got = await this.engines[kind].getMany(q);
      slots.forEach((slot, k) => {
        out[slot] = got[k];
      });
    }
    return out;
  }

  /** Resolves once every write applied so far is in the engines (for scans). */
  async flushedUpTo(): Promise<void> {
    const target = this.appliedIndex;
    while (this.flushedLast < target) {
      this.forced = true;
      this.startFlush();
      await this.flushRunning;
      if (this.flushError) throw this.flushError;
    }
  }

  // ---- apply ----

  /** Replays the log from the lowest applied index of the engines. Returns the entries replayed. */
  async recover(log: Log): Promise<number> {
    const st = log.groupState(this.group);
    const last = st?.lastIndex ?? 0;
    const maxApplied = Math.max(this.engineApplied.btree, this.engineApplied.lsm);
    if (maxApplied > last) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${this.group}: engines applied ${maxApplied} > log end ${last}`,
      );
    }
    if (this.appliedIndex >= last) return 0;
    if (st!.firstIndex > this.appliedIndex + 1) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${this.group}: log starts at ${st!.firstIndex}, need ${this.appliedIndex + 1}`,
      );
    }
    const start = this.appliedIndex + 1;
    // Chunks grow from storeReplayChunkEntriesFirst to the most: the engines start writing after a
    // short read, and write most entries in the larger transactions that LMDB inserts faster.
    let chunk = Math.min(limits.storeReplayChunkEntriesFirst, limits.storeReplayChunkEntriesMax);
    const read = (i: number): Promise<PayloadRun[]> => {
      const hi = Math.min(last, i + chunk - 1);
      chunk = Math.min(limits.storeReplayChunkEntriesMax, chunk * 2);
      return log.readPayloads(this.group, i as LogIndex, hi as LogIndex, limits.storeReplayChunkBytesMax);
    };
    // Three stages overlap: the next chunk is read (thread pool) and packed here while this one is
    // written to the engines (lmdb-js's write thread, LevelDB's). At most two engine writes wait.
    let next: Promise<PayloadRun[]> | undefined = read(start);
    let writing: Promise<void> = Promise.resolve();
    while (next) {
      const runs: PayloadRun[] = await next;
      let count = 0;
      for (const r of runs) count += r.starts.length;
      const after: number = this.appliedIndex + count + 1;
      next = after <= last ? read(after) : undefined;
      const direct = this.replayDirect(runs);
      if (direct === undefined) {
        await writing;
        await this.apply(entriesOf(runs));
        await this.drain(); // the next direct chunk writes past the memtable: keep the log order
        continue;
      }
      direct.catch(() => undefined); // awaited below, once the next chunk is packed
      await writing;
      writing = direct;
    }
    await writing;
    await this.flushedUpTo();
    return last - start + 1;
  }

  /**
   * Replays a chunk of put entries straight into the engines, one trusted-order batch per instance
   * carrying its applied index (atomic with the data), without the memtable. The batches are packed
   * from the log's buffers before this returns (no object per entry); the promise settles once
   * they are written. Undefined (nothing done) when the chunk holds another command (deletes
   * decide KEY_NOT_FOUND from the stored state, catalog changes): the caller applies it the
   * ordinary way. The memtable must be empty (the caller drains after such a chunk).
   */
  private replayDirect(runs: readonly PayloadRun[]): Promise<void> | undefined {
    for (const r of runs) {
      for (let k = 0; k < r.starts.length; k++) {
        if (!isPutAt(r.buf, r.starts[k]!, r.ends[k]!)) return undefined;
      }
    }
    if (runs.length === 0) return undefined;
    assert(this.mem.size === 0 && this.flushRunning === undefined, 'replay past a held memtable');
    if (this.flushError) throw this.flushError;
    // Pass 1: which instance each entry goes to (`to`, by entry; none: skipped) and how many bytes
    // each will pack; pass 2 packs (a payload's bytes are more than its packed write's).
    const bytes = { btree: 0, lsm: 0 };
    const counts = { btree: 0, lsm: 0 };
    const to: (EngineKind | undefined)[] = [];
    let seq = this.highSeq;
    let index = this.appliedIndex;
    for (const r of runs) {
      assert(r.first === index + 1, `replay: entry ${r.first} out of order`);
      for (let k = 0; k < r.starts.length; k++) {
        index++;
        const t = this.byKeyspace.get(keyspaceAt(r.buf, r.starts[k]!));
        // Unknown table: refused when it was applied (TABLE_NOT_FOUND); already in the engine: skip.
        if (t === undefined || index <= this.engineApplied[t.engine]) {
          const at = seqOffset(r.starts[k]!);
          const s = r.buf.subarray(at, at + 16) as Uint8Array as Seq;
          if (compareSeq(s, seq) > 0) seq = s.slice() as Seq;
          to.push(undefined);
          continue;
        }
        bytes[t.engine] += r.ends[k]! - r.starts[k]!;
        counts[t.engine]++;
        to.push(t.engine);
      }
    }
    const packed = {
      btree: new PackedWrites(bytes.btree, counts.btree),
      lsm: new PackedWrites(bytes.lsm, counts.lsm),
    };
    let n = 0;
    for (const r of runs) {
      for (let k = 0; k < r.starts.length; k++) {
        const kind = to[n++];
        if (kind !== undefined) packPutAt(r.buf, r.starts[k]!, r.ends[k]!, packed[kind]);
      }
    }
    for (const k of kinds) if (compareSeq(packed[k].highSeq as Seq, seq) > 0) seq = packed[k].maxSeq();
    this.highSeq = seq;
    const last = index;
    // Sequenced now (the next chunk's checks follow on), in the engines when the promise settles.
    this.appliedIndex = last;
    this.mem.activeLast = last;
    const done = Promise.all(
      kinds.map(async (k) => {
        if (packed[k].count === 0) return;
        assert(packed[k].count <= limits.engineBatchWritesMax, 'replay chunk larger than an engine batch');
        await this.engines[k].applyPacked(this.group, packed[k], last as LogIndex, seq);
        this.engineApplied[k] = last;
      }),
    );
    return done.then(() => {
      this.flushedLast = Math.max(this.flushedLast, last);
    });
  }

  /** Applies committed entries appliedIndex+1.. in order; one outcome per entry. */
  async apply(entries: readonly CommittedEntry[]): Promise<ApplyOutcome[]> {
    if (this.flushError) throw this.flushError;
    const cmds = entries.map((e, k) => {
      assert(e.index === this.appliedIndex + 1 + k, `apply: entry ${e.index} out of order`);
      return decodeCommand(e.payload);
    });
    const outcomes: ApplyOutcome[] = [];
    const stored = await this.readDeleted(entries, cmds);
    for (let k = 0; k < entries.length; k++) {
      const index = entries[k]!.index;
      const c = cmds[k]!;
      if (compareSeq(c.seq, this.highSeq) > 0) this.highSeq = c.seq;
      if (c.op === 'put' || c.op === 'delete') {
        outcomes.push(this.applyData(index, c, stored));
        this.appliedIndex = index;
        this.mem.activeLast = index; // also for entries skipped (replay) or refused
        continue;
      }
      await this.drain();
      outcomes.push(
        c.op === 'createTable' ? await this.applyCreate(index, c) : await this.applyDrop(index, c),
      );
      this.appliedIndex = index;
      this.mem.activeLast = index;
    }
    this.mem.activeLast = this.appliedIndex; // skipped (replayed) entries count as applied too
    // Lazy: the engines get large batches; reads see the memtable meanwhile.
    if (this.mem.active.size >= limits.storeFlushRecordsMin) this.startFlush();
    if (this.mem.size >= this.memRecordsMax) await this.flushedUpTo(); // back-pressure
    return outcomes;
  }

  /**
   * Makes what the engines hold durable and lets the log drop it. Safe to run while applying:
   * only the flushed prefix is released.
   */
  async checkpoint(log: Log): Promise<void> {
    // Both instances must reach the flushed index (an idle one with an empty batch): replay
    // starts after the lower of the two.
    this.bumpIdle = true;
    this.startFlush();
    await this.flushRunning;
    if (this.flushError) throw this.flushError;
    const upTo = Math.min(this.engineApplied.btree, this.engineApplied.lsm);
    await Promise.all(kinds.map((k) => this.engines[k].checkpoint()));
    if (upTo > 0) await log.releaseUpTo(this.group, upTo as LogIndex);
  }

  /** Flushes everything and waits for it (before a catalog change, and on close). */
  async drain(): Promise<void> {
    await this.flushedUpTo();
    await this.flushRunning;
  }

  /** Whether each key deleted in this batch exists before it, for keys not in the memtable. */
  private async readDeleted(
    entries: readonly CommittedEntry[],
    cmds: Command[],
  ): Promise<Map<string, boolean>> {
    const exists = new Map<string, boolean>();
    for (const kind of kinds) {
      const reads: { keyspace: KeyspaceId; key: Uint8Array }[] = [];
      cmds.forEach((c, k) => {
        if (c.op !== 'delete' || entries[k]!.index <= this.engineApplied[kind]) return;
        if (this.byKeyspace.get(c.keyspace)?.engine !== kind) return;
        const m = this.mem.lookup(c.keyspace, c.key);
        // Snapshot the memtable's answer too: a flush may move the key into the engine meanwhile.
        if (m) exists.set(memId(c.keyspace, c.key), !m.tombstone);
        else reads.push({ keyspace: c.keyspace, key: c.key });
      });
      if (reads.length === 0) continue;
      const got = await this.engines[kind].getMany(reads);
      reads.forEach((r, k) => {
        const rec = got[k];
        exists.set(memId(r.keyspace, r.key), rec !== undefined && !rec.tombstone);
      });
    }
    return exists;
  }

  private applyData(
    index: number,
    c: Extract<Command, { op: 'put' | 'delete' }>,
    stored: Map<string, boolean>,
  ): ApplyOutcome {
    const t = this.byKeyspace.get(c.keyspace);
    if (!t) return { ok: false, code: 'TABLE_NOT_FOUND' };
    if (index <= this.engineApplied[t.engine]) return { ok: true, seq: c.seq }; // already in the engine (replay)
    if (c.op === 'delete') {
      const m = this.mem.lookup(c.keyspace, c.key);
      const exists = m ? !m.tombstone : stored.get(memId(c.keyspace, c.key)) === true;
      if (!exists) return { ok: false, code: 'KEY_NOT_FOUND' };
    }
    const rec: MemRecord = {
      type: c.op,
      engine: t.engine,
      keyspace: c.keyspace,
      // Views into the entry's payload (each live entry has its own buffer; a replay chunk's buffer
      // is held until its records are flushed, bounded by the memtable limit).
      key: c.key,
      value: c.op === 'put' ? c.value : new Uint8Array(0),
      seq: c.seq,
      tombstone: c.op === 'delete',
    };
    this.mem.set(rec, index);
    return { ok: true, seq: rec.seq };
  }

  // ---- flush: memtable -> engines ----

  private startFlush(): void {
    if (this.flushRunning || this.flushError) return;
    this.flushRunning = this.flushLoop().finally(() => {
      this.flushRunning = undefined;
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.needFlush()) {
      const bump = this.bumpIdle;
      this.bumpIdle = false;
      const gen = this.mem.freeze();
      const last = this.mem.flushingLast;
      const writes: Record<EngineKind, EngineWrite[]> = { btree: [], lsm: [] };
      for (const r of gen) writes[r.engine].push(r as EngineWrite);
      try {
        // Both instances move to `last` (an idle one with an empty batch) so the log can be released.
        await Promise.all(
          kinds.map(async (k) => {
            if (this.engineApplied[k] >= last || (writes[k].length === 0 && !bump)) return;
            // Transactions of bounded size. The first chunks keep the old applied index: a crash
            // between them replays those entries again, in log order, which rewrites them.
            // Trusted order: every memtable record comes from an entry past the instance's applied
            // index, so it is newer than what the engine holds for its key (no reconciler read).
            const w = writes[k];
            const step =
              k === 'btree' ? limits.storeFlushBatchWritesBtreeMax : limits.storeFlushBatchWritesMax;
            for (let at = 0; at + step < w.length; at += step) {
              const part = w.slice(at, at + step);
              await this.engines[k].applyBatch(
                this.group,
                part,
                this.engineApplied[k] as LogIndex,
                this.highSeq,
                [],
                ordered,
              );
            }
            const tail = w.length > step ? w.slice(Math.floor((w.length - 1) / step) * step) : w;
            await this.engines[k].applyBatch(this.group, tail, last as LogIndex, this.highSeq, [], ordered);
            this.engineApplied[k] = last;
          }),
        );
      } catch (e) {
        this.flushError =
          e instanceof TesseraError ? e : new TesseraError('INTERNAL', `engine flush failed: ${String(e)}`);
        return;
      }
      this.mem.flushed();
      this.flushedLast = last;
    }
    this.forced = false;
  }

  private needFlush(): boolean {
    if (this.bumpIdle || this.mem.active.size >= limits.storeFlushRecordsMin) return true;
    return this.forced && (this.mem.active.size > 0 || this.mem.activeLast > this.flushedLast);
  }

  // ---- catalog ----

  private async applyCreate(
    index: number,
    c: Extract<Command, { op: 'createTable' }>,
  ): Promise<ApplyOutcome> {
    if (index <= this.engineApplied.btree) {
      const t = this.byName.get(c.name);
      return t ? { ok: true, seq: c.seq, table: t } : { ok: false, code: 'TABLE_NOT_FOUND' };
    }
    if (this.byName.has(c.name)) return { ok: false, code: 'TABLE_EXISTS' };
    const t: TableInfo = { name: c.name, keyspace: this.nextKeyspace as KeyspaceId, engine: c.engine };
    this.nextKeyspace += 1;
    const meta: MetaWrite[] = [
      { key: tableMetaKey(t.name), value: tableMetaValue(t) },
      { key: nextKeyspaceKey, value: u32(this.nextKeyspace) },
    ];
    await this.engines.btree.applyBatch(this.group, [], index as LogIndex, this.highSeq, meta);
    this.engineApplied.btree = index;
    this.byName.set(t.name, t);
    this.byKeyspace.set(t.keyspace, t);
    return { ok: true, seq: c.seq, table: t };
  }

  private async applyDrop(index: number, c: Extract<Command, { op: 'dropTable' }>): Promise<ApplyOutcome> {
    let outcome: ApplyOutcome = { ok: true, seq: c.seq };
    if (index > this.engineApplied.btree) {
      const t = this.byName.get(c.name);
      if (t?.keyspace === c.keyspace) {
        this.byName.delete(t.name);
        this.byKeyspace.delete(t.keyspace);
        const meta: MetaWrite[] = [{ key: tableMetaKey(t.name), value: undefined }];
        await this.engines.btree.applyBatch(this.group, [], index as LogIndex, this.highSeq, meta);
        this.engineApplied.btree = index;
      } else {
        outcome = { ok: false, code: 'TABLE_NOT_FOUND' };
      }
    }
    this.mem.dropKeyspace(c.keyspace);
    // Keyspace ids are never reused, so dropping the command's keyspace is always safe (and idempotent).
    if (index > this.engineApplied[c.engine]) {
      await this.engines[c.engine].dropKeyspace(c.keyspace);
      await this.engines[c.engine].applyBatch(this.group, [], index as LogIndex, this.highSeq);
      this.engineApplied[c.engine] = index;
    }
    return outcome;
  }
}

/** The entries of a log read as LogEntry objects (views into its buffers). */
function entriesOf(runs: readonly PayloadRun[]): CommittedEntry[] {
  const out: CommittedEntry[] = [];
  for (const r of runs) {
    for (let k = 0; k < r.starts.length; k++) {
      out.push({ index: r.first + k, payload: r.buf.subarray(r.starts[k], r.ends[k]) });
    }
  }
  return out;
}
