/**
 * What the log has admitted but not yet written: records placed at their file positions, grouped
 * in batches for group commit (see Log.flushLoop). Appends fill slices of about logSliceRecords
 * records (an append is never split), the unit in which a burst can be taken as two batches.
 */
import type { DecodedRecord } from './format.js';

export interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Bytes for one segment file, contiguous from `start` (a new file starts with its header). */
export interface Chunk {
  segment: number;
  isNew: boolean;
  start: number;
  bufs: Buffer[];
}

export interface Batch {
  chunks: Chunk[];
  /** Each admitted record with where it goes, replayed into the group states once durable. */
  placed: { rec: DecodedRecord; segment: number }[];
  waiters: Waiter[];
  bytes: number;
}

const emptyBatch = (): Batch => ({ chunks: [], placed: [], waiters: [], bytes: 0 });

/** Where a chunk's bytes end in its file. */
export const chunkEnd = (c: Chunk): number => c.bufs.reduce((n, b) => n + b.length, c.start);

/** One batch of `slices` (admitted in this order); chunks written contiguously in one file merged. */
function mergeBatches(slices: Batch[]): Batch {
  if (slices.length === 1) return slices[0]!;
  const out = emptyBatch();
  for (const b of slices) {
    for (const c of b.chunks) {
      const last = out.chunks[out.chunks.length - 1];
      if (last && !c.isNew && last.segment === c.segment && chunkEnd(last) === c.start)
        last.bufs.push(...c.bufs);
      else out.chunks.push({ ...c, bufs: [...c.bufs] });
    }
    out.placed.push(...b.placed);
    out.waiters.push(...b.waiters);
    out.bytes += b.bytes;
  }
  return out;
}

export class PendingBatches {
  /** Full slices, oldest first. */
  private slices: Batch[] = [];
  /** The slice filling up. */
  private open: Batch = emptyBatch();

  constructor(private readonly sliceRecords: number) {}

  /** Whether anything (records or a sync waiter) waits to be written. */
  get waiting(): boolean {
    return this.slices.length > 0 || this.open.waiters.length > 0;
  }

  /** Called before an append's records are added: a new slice once the open one is full. */
  beginAppend(): void {
    if (this.open.placed.length >= this.sliceRecords) {
      this.slices.push(this.open);
      this.open = emptyBatch();
    }
  }

  /** A new segment file, starting with its header. */
  addSegment(segment: number, header: Buffer): void {
    this.open.chunks.push({ segment, isNew: true, start: 0, bufs: [header] });
  }

  /** A record's bytes at `offset` of `segment` (right after the bytes added before, or at a new file's start). */
  addRecord(segment: number, offset: number, buf: Buffer, rec: DecodedRecord): void {
    let chunk = this.open.chunks[this.open.chunks.length - 1];
    if (!chunk || chunk.segment !== segment) {
      chunk = { segment, isNew: false, start: offset, bufs: [] };
      this.open.chunks.push(chunk);
    }
    chunk.bufs.push(buf);
    this.open.placed.push({ rec, segment });
  }

  /** The append whose records were just added: resolved when they are durable. */
  endAppend(waiter: Waiter, bytes: number): void {
    this.open.waiters.push(waiter);
    this.open.bytes += bytes;
  }

  /** A waiter with no records (sync): resolved once everything added before it is durable. */
  addWaiter(waiter: Waiter): void {
    this.open.waiters.push(waiter);
  }

  /** What waits, as one batch: all of it, or with `split` the older half of its slices. */
  take(split: boolean): Batch | undefined {
    if (this.open.waiters.length > 0) {
      this.slices.push(this.open);
      this.open = emptyBatch();
    }
    if (this.slices.length === 0) return undefined;
    const n = split && this.slices.length > 1 ? this.slices.length >> 1 : this.slices.length;
    return mergeBatches(this.slices.splice(0, n));
  }

  /** Drops everything waiting (a write failed); returns the waiters to fail. */
  drop(): Waiter[] {
    const waiters = [...this.slices.flatMap((b) => b.waiters), ...this.open.waiters];
    this.slices = [];
    this.open = emptyBatch();
    return waiters;
  }
}
