/**
 * Entries that recovery's scan has just checked, kept in the scan's own buffers so that the replay
 * right after the open reads them from memory, without reading the segments and summing their
 * CRCs a second time (replay's bulk path, Log.readPayloads). Only the entries of the groups and
 * from the indexes the opener names, and only up to a budget of buffer bytes. An entry is served
 * only while the group's index still points at the record it was kept for (same segment and file
 * offset: a later record for its index, a snapshot or a release make it stale), and once served it
 * is dropped; Log.releaseKept drops the rest.
 */
import { RECORD_HEADER_BYTES } from './format.js';
import type { GroupLog } from './group.js';
import type { PayloadRun } from './types.js';
import type { LogIndex } from '../lib/ids.js';

export interface KeepOptions {
  /** The first index of `group` to keep, or undefined to keep none of the group's entries. */
  from(group: number): number | undefined;
  /** Bytes of scan buffers kept at most (a buffer counts whole once an entry in it is kept). */
  bytesMax: number;
}

/** One group's kept entries: entry base+p is the record at[p] of bufs[p] (undefined once served). */
interface Kept {
  base: number;
  bufs: (Buffer | undefined)[];
  at: number[];
  segment: number[];
  offset: number[];
}

export class KeptEntries {
  private readonly groups = new Map<number, Kept>();
  private bytes = 0;
  private lastBuf: Buffer | undefined;
  private full = false;

  constructor(private readonly options: KeepOptions) {}

  /**
   * The scan checked the Entry record at `at` of `buf` (file position segment/offset) and applied
   * it to its group as `index`: a later record for an index kept replaces it and every kept entry
   * after it, as in the group's index.
   */
  entry(group: number, index: number, buf: Buffer, at: number, segment: number, offset: number): void {
    if (this.full) return;
    const from = this.options.from(group);
    if (from === undefined || index < from) return;
    let k = this.groups.get(group);
    if (k === undefined) {
      k = { base: index, bufs: [], at: [], segment: [], offset: [] };
      this.groups.set(group, k);
    }
    const p = index - k.base;
    if (p < 0 || p > k.bufs.length) {
      // Before what is kept, or after a gap: start over from this entry.
      k.base = index;
      truncate(k, 0);
    } else if (p < k.bufs.length) {
      truncate(k, p);
    }
    if (buf !== this.lastBuf) {
      if (this.bytes + buf.length > this.options.bytesMax) {
        this.full = true; // later entries are read from the segments as usual
        return;
      }
      this.bytes += buf.length;
      this.lastBuf = buf;
    }
    k.bufs.push(buf);
    k.at.push(at);
    k.segment.push(segment);
    k.offset.push(offset);
  }

  /**
   * Runs of the kept entries lo.. of `g` (at most up to hi, and past bytesMax only for the first),
   * as long as they are still what g's index points at; empty when lo is not kept. Drops them.
   */
  take(g: GroupLog, lo: number, hi: number, bytesMax: number): PayloadRun[] {
    const runs: PayloadRun[] = [];
    const k = this.groups.get(g.group);
    if (k === undefined) return runs;
    let i = lo;
    let total = 0;
    while (i <= hi && (total < bytesMax || i === lo) && this.current(k, g, i)) {
      const buf = k.bufs[i - k.base]!;
      let j = i;
      total += g.lengthOf(i);
      while (j < hi && total < bytesMax && k.bufs[j + 1 - k.base] === buf && this.current(k, g, j + 1)) {
        j++;
        total += g.lengthOf(j);
      }
      const starts = new Uint32Array(j - i + 1);
      const ends = new Uint32Array(j - i + 1);
      for (let n = i; n <= j; n++) {
        const p = n - k.base;
        starts[n - i] = k.at[p]! + RECORD_HEADER_BYTES;
        ends[n - i] = k.at[p]! + g.lengthOf(n);
        k.bufs[p] = undefined;
      }
      runs.push({ first: i as LogIndex, buf, starts, ends });
      i = j + 1;
    }
    if (i - k.base >= k.bufs.length) this.groups.delete(g.group); // all served
    return runs;
  }

  /** Whether entry i of g is kept and still the record g's index points at. */
  private current(k: Kept, g: GroupLog, i: number): boolean {
    const p = i - k.base;
    return (
      p >= 0 &&
      p < k.bufs.length &&
      k.bufs[p] !== undefined &&
      k.segment[p] === g.segmentOf(i) &&
      k.offset[p] === g.offsetOf(i)
    );
  }
}

function truncate(k: Kept, length: number): void {
  k.bufs.length = length;
  k.at.length = length;
  k.segment.length = length;
  k.offset.length = length;
}
