/**
 * The append-only log of a storage node, shared by all its replicas (see docs/log.md).
 *
 * Group commit: `append()` encodes and places records at once (admission), a single flush loop
 * writes everything admitted so far and fdatasyncs it, and every append in that flush resolves
 * together. Appends that arrive during a flush form the next one; there are no timers. The
 * in-memory group states are updated only once a flush is durable, by the same code as recovery.
 */
import path from 'node:path';
import { AssertionError, assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import {
  type DecodedRecord,
  encodeGroupState,
  encodeRecord,
  encodeSegmentHeader,
  type HardState,
  RECORD_HEADER_BYTES,
  type RecordHeader,
  RecordType,
  SEGMENT_HEADER_BYTES,
  type SnapshotMark,
  segmentFileName,
} from './format.js';
import type { GroupLog } from './group.js';
import { type Batch, chunkEnd, PendingBatches, type Waiter } from './batch.js';
import { type LogIo, nodeIo } from './io.js';
import { readEntryRange, readPayloadRuns, type SegmentReader } from './read.js';
import { applyRecord, recoverLog, scanWindowBytes } from './recovery.js';
import { type KeepOptions, KeptEntries } from './retain.js';
import {
  type GroupState,
  header,
  type LogEntry,
  type LogRecord,
  type PayloadRun,
  payloadOf,
} from './types.js';

export type { GroupState, LogEntry, LogRecord } from './types.js';

export interface LogOptions {
  segmentBytesMax?: number;
  recordBytesMax?: number;
  pendingBytesMax?: number;
  /** Bytes recovery reads of a segment at a time (default 4 MiB; tests use tiny windows). */
  scanWindowBytes?: number;
  io?: LogIo;
  /**
   * Entries to keep in memory from recovery's scan for the reads right after the open (a replay):
   * readPayloads serves them without reading and checking them again. See retain.ts.
   */
  keep?: KeepOptions;
}

/** What admission knows of a group: enough to check and place records before they are durable. */
interface Admitted {
  first: number;
  last: number;
  lastTerm: number;
  hard: HardState | undefined;
  snap: SnapshotMark | undefined;
}

interface Queued {
  records: LogRecord[];
  bytes: number;
  waiter: Waiter;
}

const emptyPayload = Buffer.alloc(0);

export class Log {
  readonly dir: string;
  private readonly io: LogIo;
  private readonly segmentBytesMax: number;
  private readonly recordBytesMax: number;
  private readonly pendingBytesMax: number;
  private readonly groups: Map<number, GroupLog>;
  private readonly admitted = new Map<number, Admitted>();
  private readonly segments: number[];
  private readonly fds = new Map<number, number>();
  /** What the read path (read.ts) needs of this log. */
  private readonly reader: SegmentReader;
  // Durable tail (what is fsynced) and planned tail (where the next admitted record goes).
  private durableSegment: number;
  private durableBytes: number;
  private planSegment: number;
  private planBytes: number;
  /** Admitted, not yet taken for writing. */
  private readonly pending = new PendingBatches(limits.logSliceRecords);
  private pendingBytes = 0;
  private readonly queue: Queued[] = [];
  private flushing = false;
  private flushScheduled = false;
  private failure: Error | undefined;
  private closed = false;
  private readsInFlight = 0;
  private deleting = false;
  /** Entries kept from recovery's scan for the first reads (LogOptions.keep). */
  private kept: KeptEntries | undefined;

  private constructor(
    dir: string,
    opts: Required<Omit<LogOptions, 'keep'>>,
    groups: Map<number, GroupLog>,
    segments: number[],
  ) {
    this.dir = dir;
    this.io = opts.io;
    this.segmentBytesMax = opts.segmentBytesMax;
    this.recordBytesMax = opts.recordBytesMax;
    this.pendingBytesMax = opts.pendingBytesMax;
    this.reader = { io: opts.io, fds: this.fds, recordBytesMax: opts.recordBytesMax };
    this.groups = groups;
    this.segments = segments;
    this.durableSegment = this.planSegment = segments[segments.length - 1]!;
    this.durableBytes = this.planBytes = 0;
    this.resetAdmitted();
  }

  /** Opens (recovering) the log in `dir`, creating it if needed. */
  static async open(dir: string, options: LogOptions = {}): Promise<Log> {
    const opts: Required<Omit<LogOptions, 'keep'>> = {
      segmentBytesMax: options.segmentBytesMax ?? limits.logSegmentBytesMax,
      recordBytesMax: options.recordBytesMax ?? limits.logRecordBytesMax,
      pendingBytesMax: options.pendingBytesMax ?? limits.logPendingBytesMax,
      scanWindowBytes: options.scanWindowBytes ?? scanWindowBytes,
      io: options.io ?? nodeIo,
    };
    assert(
      opts.segmentBytesMax >= SEGMENT_HEADER_BYTES + opts.recordBytesMax,
      'segment smaller than a record',
    );
    assert(opts.scanWindowBytes >= SEGMENT_HEADER_BYTES, 'scan window smaller than a segment header');
    const kept = options.keep === undefined ? undefined : new KeptEntries(options.keep);
    const rec = await recoverLog(opts.io, dir, opts.recordBytesMax, opts.scanWindowBytes, kept);
    let tail = rec.tailBytes;
    if (rec.segments.length === 0) {
      const first = (rec.cut?.segment ?? 0) + 1;
      const fd = await opts.io.openForAppend(path.join(dir, segmentFileName(first)), true);
      await opts.io.write(fd, encodeSegmentHeader(first), 0);
      await opts.io.fdatasync(fd);
      await opts.io.fsyncDir(dir);
      rec.segments.push(first);
      tail = SEGMENT_HEADER_BYTES;
      await opts.io.close(fd);
    }
    const log = new Log(dir, opts, rec.groups, rec.segments);
    log.durableBytes = log.planBytes = tail;
    for (const s of rec.segments) log.fds.set(s, await opts.io.openForAppend(log.file(s), false));
    log.recovery = { records: rec.records, cut: rec.cut };
    log.kept = kept;
    return log;
  }

  /** What the last open found and cut, for logs and tests. */
  recovery: { records: number; cut: { segment: number; offset: number; reason: string } | undefined } = {
    records: 0,
    cut: undefined,
  };

  /**
   * Appends records in order; resolves once they are durable (fdatasync). Rejects with
   * RECORD_TOO_LARGE (nothing written) or DISK_FULL (nothing of this append is kept). Waits while
   * more than the pending-bytes limit is waiting for fsync (back-pressure).
   */
  append(records: LogRecord[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    assert(!this.closed, 'log is closed');
    assert(records.length > 0 && records.length <= limits.logBatchRecordsMax, 'append: bad record count');
    let bytes = 0;
    for (const r of records) {
      const size = RECORD_HEADER_BYTES + payloadOf(r).length;
      if (size > this.recordBytesMax) {
        return Promise.reject(
          new TesseraError('RECORD_TOO_LARGE', `log record of ${size} bytes exceeds ${this.recordBytesMax}`),
        );
      }
      bytes += size;
    }
    return new Promise<void>((resolve, reject) => {
      const q: Queued = { records, bytes, waiter: { resolve, reject } };
      if (this.queue.length > 0 || !this.hasRoom(bytes)) this.queue.push(q);
      else this.admit(q);
    });
  }

  /** Resolves once everything appended so far is durable (or failed). */
  async sync(): Promise<void> {
    if (!this.pending.waiting && this.queue.length === 0 && !this.flushing) return;
    await new Promise<void>((resolve) => {
      const w: Waiter = { resolve, reject: () => resolve() };
      if (this.queue.length > 0) this.queue.push({ records: [], bytes: 0, waiter: w });
      else this.pending.addWaiter(w);
      this.scheduleFlush();
    });
  }

  groupIds(): GroupId[] {
    return [...this.groups.keys()] as GroupId[];
  }

  /** Durable state of a group (recovered on open, updated after each fsync). */
  groupState(group: GroupId): GroupState | undefined {
    const g = this.groups.get(group);
    if (!g) return undefined;
    return {
      group,
      firstIndex: g.first as LogIndex,
      lastIndex: g.last as LogIndex,
      lastTerm: g.lastTerm as Term,
      hardState: g.hard,
      snapshot: g.snapshot,
    };
  }

  /** Term of a durable entry, or of the entry just before the first live one. */
  term(group: GroupId, index: LogIndex): Term | undefined {
    return this.groups.get(group)?.term(index) as Term | undefined;
  }

  /**
   * Durable entries lo..hi (inclusive) of a group, read from disk and checked again. Stops early
   * after `bytesMax` (at least one entry is returned). Asserts lo..hi is within the live range.
   */
  async readEntries(
    group: GroupId,
    lo: LogIndex,
    hi: LogIndex,
    bytesMax = 8 * 1024 * 1024,
  ): Promise<LogEntry[]> {
    const g = this.groups.get(group);
    assert(g !== undefined, `readEntries: unknown group ${group}`);
    assert(
      lo >= g.first && hi <= g.last && lo <= hi + 1,
      `readEntries: ${lo}..${hi} outside ${g.first}..${g.last}`,
    );
    return this.reading(() => readEntryRange(this.reader, g, lo, hi, bytesMax));
  }

  /**
   * The payloads of entries lo..hi (at most bytesMax bytes, at least one entry) as byte ranges of
   * the buffers read, each entry checked like readEntries does, but with no object per entry:
   * replay's bulk path (an object per entry that lives until its chunk is applied is what the
   * garbage collector pays for).
   */
  async readPayloads(group: GroupId, lo: LogIndex, hi: LogIndex, bytesMax: number): Promise<PayloadRun[]> {
    const g = this.groups.get(group);
    assert(g !== undefined, `readPayloads: unknown group ${group}`);
    assert(
      lo >= g.first && hi <= g.last && lo <= hi,
      `readPayloads: ${lo}..${hi} outside ${g.first}..${g.last}`,
    );
    const kept = this.kept?.take(g, lo, hi, bytesMax);
    if (kept !== undefined && kept.length > 0) return kept;
    return this.reading(() => readPayloadRuns(this.reader, g, lo, hi, bytesMax));
  }

  /** Drops the entries kept from recovery's scan (LogOptions.keep) that were not read. */
  releaseKept(): void {
    this.kept = undefined;
  }

  /** Runs a read; released segments are deleted once no read is in flight. */
  private async reading<T>(read: () => Promise<T>): Promise<T> {
    this.readsInFlight++;
    try {
      return await read();
    } finally {
      this.readsInFlight--;
      if (this.readsInFlight === 0) void this.deleteReleasedSegments();
    }
  }

  /**
   * Entries <= index of this group are no longer needed (the engine holds them durably). Deletes
   * the oldest segments once no group has a live entry in them.
   */
  async releaseUpTo(group: GroupId, index: LogIndex): Promise<void> {
    const g = this.groups.get(group);
    if (!g) return;
    g.release(index);
    const a = this.admitted.get(group);
    if (a) a.first = Math.max(a.first, Math.min(index, g.last) + 1);
    await this.deleteReleasedSegments();
  }

  /** Number of segment files and their total size, for monitoring and tests. */
  segmentList(): number[] {
    return [...this.segments];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync();
    this.closed = true;
    this.kept = undefined;
    for (const fd of this.fds.values()) await this.io.close(fd);
    this.fds.clear();
  }

  // ---- admission and group commit ----

  private hasRoom(bytes: number): boolean {
    return this.pendingBytes === 0 || this.pendingBytes + bytes <= this.pendingBytesMax;
  }

  private admit(q: Queued): void {
    const bad = this.invalidEntry(q.records);
    if (bad !== undefined) {
      // A programmer error in the caller: reject this append whole, nothing of it placed.
      q.waiter.reject(new AssertionError(bad));
      return;
    }
    this.pending.beginAppend();
    for (const r of q.records) this.place(r);
    this.pending.endAppend(q.waiter, q.bytes);
    this.pendingBytes += q.bytes;
    this.scheduleFlush();
  }

  private place(r: LogRecord): void {
    const h = header(r);
    const buf = encodeRecord(h, payloadOf(r));
    if (this.planBytes + buf.length > this.segmentBytesMax) this.roll();
    this.placeBuffer(buf, h);
    this.admitState(r);
  }

  private placeBuffer(buf: Buffer, h: RecordHeader): void {
    // The payload is only read back for the small record types (hard state, group state).
    const payload = h.type === RecordType.Entry ? emptyPayload : buf.subarray(RECORD_HEADER_BYTES);
    const rec: DecodedRecord = {
      type: h.type,
      group: h.group,
      term: h.term,
      index: h.index,
      offset: this.planBytes,
      length: buf.length,
      payload,
    };
    this.pending.addRecord(this.planSegment, this.planBytes, buf, rec);
    this.planBytes += buf.length;
  }

  /** Starts a new segment whose first records carry every group's state (so old segments can go). */
  private roll(): void {
    this.planSegment += 1;
    this.pending.addSegment(this.planSegment, encodeSegmentHeader(this.planSegment));
    this.planBytes = SEGMENT_HEADER_BYTES;
    for (const [group, a] of this.admitted) {
      const h: RecordHeader = { type: RecordType.GroupState, group, term: a.lastTerm, index: a.last };
      const buf = encodeRecord(h, encodeGroupState(a.hard, a.snap));
      assert(this.planBytes + buf.length <= this.segmentBytesMax, 'segment too small for the group states');
      this.placeBuffer(buf, h);
    }
  }

  /** Checks the entries of one append keep each group's log contiguous (dry run, nothing changed). */
  private invalidEntry(records: LogRecord[]): string | undefined {
    const r0 = records[0]!;
    if (records.length === 1 && r0.kind === 'entry') {
      // The common case, without the overlay.
      const a = this.admitted.get(r0.group);
      const first = a?.first ?? 1;
      const last = a?.last ?? 0;
      if (r0.index >= first && r0.index <= last + 1 && r0.index >= 1) return undefined;
    }
    const overlay = new Map<number, { first: number; last: number }>();
    for (const r of records) {
      if (r.kind === 'hardState') continue;
      const a = overlay.get(r.group) ?? this.admitted.get(r.group) ?? { first: 1, last: 0 };
      if (r.kind === 'dropGroup') overlay.set(r.group, { first: 1, last: 0 });
      else if (r.kind === 'snapshot') overlay.set(r.group, { first: r.index + 1, last: r.index });
      else if (r.index < a.first || r.index > a.last + 1 || r.index < 1) {
        return `append: entry ${r.group}/${r.index} outside ${a.first}..${a.last + 1}`;
      } else overlay.set(r.group, { first: a.first, last: r.index });
    }
    return undefined;
  }

  private admitState(r: LogRecord): void {
    if (r.kind === 'dropGroup') {
      this.admitted.delete(r.group);
      return;
    }
    let a = this.admitted.get(r.group);
    if (!a) {
      a = { first: 1, last: 0, lastTerm: 0, hard: undefined, snap: undefined };
      this.admitted.set(r.group, a);
    }
    if (r.kind === 'entry') {
      a.last = r.index;
      a.lastTerm = r.term;
    } else if (r.kind === 'hardState') {
      a.hard = { term: r.term, vote: r.vote, commit: r.commit };
    } else {
      a.snap = { index: r.index, term: r.term };
      a.first = r.index + 1;
      a.last = r.index;
      a.lastTerm = r.term;
    }
  }

  private resetAdmitted(): void {
    this.admitted.clear();
    for (const [id, g] of this.groups) {
      this.admitted.set(id, {
        first: g.first,
        last: g.last,
        lastTerm: g.lastTerm,
        hard: g.hard,
        snap: g.snapshot,
      });
    }
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate, not a timer: appends issued in this turn of the event loop join the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flushLoop();
    });
  }

  /**
   * Group commit, pipelined: one fdatasync at a time, but a batch found durable is committed (its
   * appends resolved) only after the next batch has been written and its fdatasync started, so the
   * work the resolved appends trigger (applying, acknowledging, the clients' next writes) runs while
   * the disk syncs the next batch instead of after it. Under a steady load the writers then fall
   * into two cohorts that take turns: one being synced while the other's results are processed.
   * When nothing is in flight and more than one slice waits, only the older half is taken, which
   * forms the two cohorts from one burst. The order of commits is the order of appends, and a
   * failed batch is handled after the one before it committed, exactly as without the pipeline.
   */
  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    let durable: Batch | undefined; // synced, commit after the next batch is on its way
    for (;;) {
      const next = this.failure ? undefined : this.pending.take(durable === undefined);
      let synced: Promise<void> | undefined;
      if (next) {
        synced = this.writeBatch(next);
        synced.catch(() => undefined); // awaited below
      }
      if (durable) {
        this.commitBatch(durable);
        for (const w of durable.waiters) w.resolve();
        durable = undefined;
        this.admitQueued();
      }
      if (!next) break;
      try {
        await synced;
        durable = next;
      } catch (e) {
        await this.failBatch(next, e);
        this.admitQueued();
      }
    }
    this.flushing = false;
    // Appends admitted by the last commit's waiters (or queued ones) start the next round.
    if (this.pending.waiting) this.scheduleFlush();
  }

  private async writeBatch(batch: Batch): Promise<void> {
    const touched: number[] = [];
    let created = false;
    for (const c of batch.chunks) {
      if (c.isNew) {
        const fd = await this.io.openForAppend(this.file(c.segment), true);
        this.fds.set(c.segment, fd);
        this.segments.push(c.segment);
        created = true;
      }
      if (c.bufs.length > 0) await this.io.write(this.fds.get(c.segment)!, Buffer.concat(c.bufs), c.start);
      touched.push(c.segment);
    }
    for (const s of touched) await this.io.fdatasync(this.fds.get(s)!);
    if (created) await this.io.fsyncDir(this.dir);
  }

  /** The batch is durable: apply it to the group states exactly as recovery would. */
  private commitBatch(batch: Batch): void {
    for (const { rec, segment } of batch.placed) {
      assert(applyRecord(this.groups, rec, segment), 'durable record rejected by the group state');
    }
    const lastChunk = batch.chunks[batch.chunks.length - 1];
    if (lastChunk) {
      this.durableSegment = lastChunk.segment;
      this.durableBytes = chunkEnd(lastChunk);
    }
    this.pendingBytes -= batch.bytes;
  }

  /**
   * A write or fsync failed. ENOSPC: fail this batch and everything admitted after it with
   * DISK_FULL, cut the files back to the durable tail, and keep going. Anything else: the log is
   * unusable (a failed fsync may have lost pages; see PostgreSQL's fsyncgate).
   */
  private async failBatch(batch: Batch, e: unknown): Promise<void> {
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const err =
      code === 'ENOSPC' || code === 'EDQUOT'
        ? new TesseraError('DISK_FULL', `log write failed: ${code}`)
        : new TesseraError('INTERNAL', `log write failed: ${(e as Error)?.message ?? String(e)}`);
    const failed = [...batch.waiters, ...this.pending.drop()];
    this.pendingBytes = 0;
    try {
      await this.cutToDurable();
    } catch (cutErr) {
      this.failure = new TesseraError('INTERNAL', `log could not cut a failed write: ${String(cutErr)}`);
    }
    if (err.code !== 'DISK_FULL') this.failure = err;
    this.planSegment = this.durableSegment;
    this.planBytes = this.durableBytes;
    this.resetAdmitted();
    for (const w of failed) w.reject(err);
    // Queued appends may build on the failed ones (Raft indices): they fail too.
    for (const q of this.queue.splice(0)) q.waiter.reject(this.failure ?? err);
  }

  private async cutToDurable(): Promise<void> {
    while (this.segments[this.segments.length - 1]! > this.durableSegment) {
      const s = this.segments.pop()!;
      const fd = this.fds.get(s);
      this.fds.delete(s);
      if (fd !== undefined) await this.io.close(fd);
      await this.io.unlink(this.file(s));
    }
    // A segment whose creation failed half-way may exist without being listed.
    for (let s = this.durableSegment + 1; s <= this.planSegment; s++) {
      await this.io.unlink(this.file(s)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
    await this.io.ftruncate(this.fds.get(this.durableSegment)!, this.durableBytes);
  }

  private admitQueued(): void {
    while (this.queue.length > 0 && !this.failure && this.hasRoom(this.queue[0]!.bytes)) {
      const q = this.queue.shift()!;
      try {
        this.admit(q);
      } catch (e) {
        q.waiter.reject(e);
      }
    }
  }

  // ---- segment deletion ----

  private async deleteReleasedSegments(): Promise<void> {
    if (this.deleting || this.readsInFlight > 0 || this.closed) return;
    this.deleting = true;
    try {
      let deleted = false;
      while (
        this.segments.length > 1 &&
        this.segments[0]! < this.durableSegment &&
        !this.pinned(this.segments[0]!)
      ) {
        const s = this.segments.shift()!;
        const fd = this.fds.get(s);
        this.fds.delete(s);
        if (fd !== undefined) await this.io.close(fd);
        await this.io.unlink(this.file(s));
        deleted = true;
      }
      if (deleted) await this.io.fsyncDir(this.dir);
    } finally {
      this.deleting = false;
    }
  }

  private pinned(segment: number): boolean {
    for (const g of this.groups.values()) {
      const s = g.oldestSegment();
      if (s !== undefined && s <= segment) return true;
    }
    return false;
  }

  private file(segment: number): string {
    return path.join(this.dir, segmentFileName(segment));
  }
}

export function openLog(dir: string, options?: LogOptions): Promise<Log> {
  return Log.open(dir, options);
}
