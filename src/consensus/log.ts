/**
 * The replica's view of its log: the retained entries after the snapshot point (in memory), which of
 * them are durable, the commit index, and what was handed out to apply. Persistence is the driver's:
 * `takeUnstable()` returns what to write, `markPersisted()` records what the driver made durable.
 */
import { assert } from '../lib/assert.js';
import { type LogIndex, logIndex, type Seq, type Term } from '../lib/ids.js';
import type { DroppedRange, Entry, SnapshotMeta } from './types.js';

/** A Ready's durable point: after it is persisted, everything up to (index, term) is on disk. */
interface PersistMark {
  readonly number: number;
  readonly index: LogIndex;
  readonly term: Term;
}

export class RaftLog {
  /** The snapshot / compaction point: entries <= snap.index are gone from the log. */
  snap: SnapshotMeta;
  private entries: Entry[] = [];
  commit: LogIndex;
  /** Highest index handed out in Ready.committed. */
  handedOut: LogIndex;
  /** Highest index the driver reported applied. */
  applied: LogIndex;
  /** Every entry <= persisted is durable locally. */
  persisted: LogIndex;
  /** The first index not yet returned by takeUnstable(). */
  private unstableFrom: number;
  private marks: PersistMark[] = [];
  /** Ranges truncated since the last takeDropped(). */
  private dropped: DroppedRange[] = [];

  constructor(snap: SnapshotMeta, entries: readonly Entry[], commit: LogIndex, applied: LogIndex) {
    this.snap = snap;
    for (const [i, e] of entries.entries())
      assert(e.index === snap.index + 1 + i, 'restored log not contiguous');
    this.entries = entries.slice();
    this.persisted = this.lastIndex();
    this.unstableFrom = this.lastIndex() + 1;
    assert(applied >= snap.index && applied <= this.lastIndex(), `bad applied index ${applied}`);
    this.applied = applied;
    this.handedOut = applied;
    this.commit = logIndex(Math.min(Math.max(commit, applied), this.lastIndex()));
  }

  firstIndex(): LogIndex {
    return (this.snap.index + 1) as LogIndex;
  }

  lastIndex(): LogIndex {
    return (this.snap.index + this.entries.length) as LogIndex;
  }

  lastTerm(): Term {
    const e = this.entries[this.entries.length - 1];
    return e === undefined ? this.snap.term : e.term;
  }

  /** The term of entry i, or undefined if i is compacted away (< snap.index) or beyond the log. */
  term(i: number): Term | undefined {
    if (i === this.snap.index) return this.snap.term;
    return this.entries[i - this.snap.index - 1]?.term;
  }

  entry(i: number): Entry | undefined {
    return this.entries[i - this.snap.index - 1];
  }

  /** The seq of entry i (or of the snapshot at snap.index). */
  seqAt(i: number): Seq {
    if (i === this.snap.index) return this.snap.highestSeq;
    const e = this.entry(i);
    assert(e !== undefined, `seqAt(${i}) outside the log`);
    return e.seq;
  }

  lastSeq(): Seq {
    return this.seqAt(this.lastIndex());
  }

  /** (term, index) of a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const t = this.lastTerm();
    return lastTerm > t || (lastTerm === t && lastIndex >= this.lastIndex());
  }

  /** Leader append: entries continue the log. */
  append(entries: readonly Entry[]): void {
    for (const e of entries) {
      assert(e.index === this.lastIndex() + 1, 'append: not contiguous');
      this.entries.push(e);
    }
  }

  /**
   * Follower append after prevIndex matched: skip entries we already have, truncate at the first
   * conflict (never at or below commit), append the rest. Returns the last index of the message.
   */
  appendAfter(prevIndex: number, entries: readonly Entry[], force = false): LogIndex {
    let k = 0;
    for (; k < entries.length; k++) {
      const e = entries[k]!;
      assert(e.index === prevIndex + 1 + k, 'append message entries not contiguous');
      const t = this.term(e.index);
      if (t === undefined) break;
      if (t !== e.term) {
        this.truncateFrom(e.index, force);
        break;
      }
    }
    for (; k < entries.length; k++) {
      const e = entries[k]!;
      assert(e.index === this.lastIndex() + 1, 'append: gap');
      this.entries.push(e);
    }
    return (prevIndex + entries.length) as LogIndex;
  }

  /** `force`: only under the planted bug 'accept-stale-term-append' (committed entries may go). */
  private truncateFrom(i: number, force = false): void {
    assert(i > this.snap.index, 'truncating below the snapshot');
    // The state machine keeps what it applied (the checker sees the committed entry change).
    if (force && i <= this.commit) this.commit = (i - 1) as LogIndex;
    assert(i > this.commit, `truncating committed entry ${i} (commit ${this.commit})`);
    const removed = this.entries.splice(i - this.snap.index - 1);
    let start = 0;
    for (let k = 1; k <= removed.length; k++) {
      if (k === removed.length || removed[k]!.term !== removed[start]!.term) {
        const first = removed[start]!;
        this.dropped.push({ first: first.index, last: removed[k - 1]!.index, term: first.term });
        start = k;
      }
    }
    this.unstableFrom = Math.min(this.unstableFrom, i);
    this.persisted = Math.min(this.persisted, i - 1) as LogIndex;
  }

  /** Entries [lo..hi] at most maxBytes of data (always at least one if lo <= hi). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo > this.snap.index, 'slice below the snapshot');
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.entries[i - this.snap.index - 1]!;
      bytes += e.data.length + 48;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** The entries to persist in the Ready numbered `number`; records its durable mark. */
  takeUnstable(number: number): Entry[] {
    const out =
      this.unstableFrom <= this.lastIndex() ? this.slice(this.unstableFrom, this.lastIndex(), Infinity) : [];
    this.unstableFrom = this.lastIndex() + 1;
    if (out.length > 0) this.marks.push({ number, index: this.lastIndex(), term: this.lastTerm() });
    return out;
  }

  /** Readys up to `number` are durable. Returns true if `persisted` advanced. */
  markPersisted(number: number): boolean {
    const before = this.persisted;
    while (this.marks.length > 0 && this.marks[0]!.number <= number) {
      const m = this.marks.shift()!;
      if (m.index > this.persisted && this.term(m.index) === m.term) this.persisted = m.index;
    }
    return this.persisted > before;
  }

  takeDropped(): DroppedRange[] {
    const d = this.dropped;
    this.dropped = [];
    return d;
  }

  hasDropped(): boolean {
    return this.dropped.length > 0;
  }

  /** The highest index that may be handed out to apply: committed and locally durable. */
  applyLimit(): number {
    return Math.min(this.commit, this.persisted);
  }

  hasCommitted(): boolean {
    return this.applyLimit() > this.handedOut;
  }

  takeCommitted(): Entry[] {
    const hi = this.applyLimit();
    if (hi <= this.handedOut) return [];
    const out = this.slice(this.handedOut + 1, hi, Infinity);
    this.handedOut = hi as LogIndex;
    return out;
  }

  /**
   * Replace the whole log with a snapshot (follower install, when the log does not hold entry
   * meta.index with meta.term). The driver discards its log of this group when it installs it.
   */
  restore(meta: SnapshotMeta): void {
    assert(meta.index > this.commit, 'restore of an old snapshot');
    assert(this.term(meta.index) !== meta.term, 'restore: the log already has the snapshot point');
    this.entries = [];
    this.snap = meta;
    this.commit = meta.index;
    this.handedOut = meta.index;
    this.applied = meta.index;
    this.persisted = Math.min(this.persisted, meta.index) as LogIndex;
    this.unstableFrom = meta.index + 1;
  }

  /** Snapshot mark for a Ready that installs a snapshot: durable through meta.index. */
  markSnapshot(number: number, meta: SnapshotMeta): void {
    this.marks.push({ number, index: meta.index, term: meta.term });
  }

  /** Drop entries <= meta.index (durable in the state machine). */
  compact(meta: SnapshotMeta): void {
    assert(meta.index > this.snap.index && meta.index <= this.applied, 'compact out of range');
    assert(this.term(meta.index) === meta.term, 'compact: term mismatch');
    this.entries = this.entries.slice(meta.index - this.snap.index);
    this.snap = meta;
  }
}
