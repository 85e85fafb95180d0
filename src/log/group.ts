/**
 * The in-memory state of one group in the shared log: its hard state, snapshot mark, and where each
 * of its live entries is on disk. The same `apply*` methods run on recovery and after each durable
 * batch, so the live state is always what a recovery would rebuild.
 */
import { assert } from '../lib/assert.js';
import type { HardState, SnapshotMark } from './format.js';

export class GroupLog {
  readonly group: number;
  /** Index of the first live entry; `first === last + 1` when there is none. */
  first = 1;
  last = 0;
  lastTerm = 0;
  /** Term of entry `first - 1` (0 if unknown). */
  prevTerm = 0;
  hard: HardState | undefined;
  snapshot: SnapshotMark | undefined;
  // Parallel arrays of the live entries first..last, starting at `head` (cheap release from the front).
  private head = 0;
  private segs: number[] = [];
  private offs: number[] = [];
  private lens: number[] = [];
  private terms: number[] = [];

  constructor(group: number) {
    this.group = group;
  }

  get count(): number {
    return this.segs.length - this.head;
  }

  /**
   * Appends entry `index` at (segment, offset, length), first discarding every entry >= index (Raft
   * suffix overwrite). Positional, not a location object: recovery calls it once per record.
   */
  applyEntry(index: number, segment: number, offset: number, length: number, term: number): boolean {
    if (index < this.first || index > this.last + 1) return false;
    this.truncateFrom(index);
    this.segs.push(segment);
    this.offs.push(offset);
    this.lens.push(length);
    this.terms.push(term);
    this.last = index;
    this.lastTerm = term;
    this.checkInvariants();
    return true;
  }

  applyHardState(h: HardState): void {
    this.hard = h;
  }

  /** A snapshot installed at (index, term) replaces the whole log. */
  applySnapshot(s: SnapshotMark): void {
    this.resetTo(s.index, s.term);
    this.snapshot = s;
  }

  /** The group's state as of a segment start (a baseline when older segments are gone). */
  applyGroupState(lastIndex: number, lastTerm: number, hard?: HardState, snap?: SnapshotMark): void {
    if (this.term(lastIndex) === lastTerm) {
      if (lastIndex < this.last) this.truncateFrom(lastIndex + 1);
    } else {
      this.resetTo(lastIndex, lastTerm);
    }
    if (hard) this.hard = hard;
    if (snap) this.snapshot = snap;
    this.checkInvariants();
  }

  /** Entries <= index are no longer needed (checkpointed). Returns how many were released. */
  release(index: number): number {
    const upTo = Math.min(index, this.last);
    if (upTo < this.first) return 0;
    const k = upTo - this.first + 1;
    this.prevTerm = this.terms[this.head + k - 1]!;
    this.head += k;
    this.first += k;
    if (this.head > 1024 && this.head * 2 > this.segs.length) this.compactArrays();
    this.checkInvariants();
    return k;
  }

  /** Term of entry `index` if known (live, or the one just before the first live entry). */
  term(index: number): number | undefined {
    if (index === this.first - 1) return this.prevTerm;
    if (index < this.first || index > this.last) return undefined;
    return this.terms[this.head + index - this.first];
  }

  // Fields of live entry `index` (first <= index <= last), without a location object: the read
  // path asks for several per entry.
  segmentOf(index: number): number {
    return this.segs[this.head + index - this.first]!;
  }
  offsetOf(index: number): number {
    return this.offs[this.head + index - this.first]!;
  }
  lengthOf(index: number): number {
    return this.lens[this.head + index - this.first]!;
  }
  termOf(index: number): number {
    return this.terms[this.head + index - this.first]!;
  }

  /** The oldest segment holding a live entry of this group (segments only grow with the index). */
  oldestSegment(): number | undefined {
    return this.count > 0 ? this.segs[this.head] : undefined;
  }

  private truncateFrom(index: number): void {
    if (index > this.last) return;
    this.segs.length =
      this.offs.length =
      this.lens.length =
      this.terms.length =
        this.head + index - this.first;
    this.last = index - 1;
    this.lastTerm = this.term(this.last) ?? 0;
  }

  private resetTo(index: number, term: number): void {
    this.head = 0;
    this.segs = [];
    this.offs = [];
    this.lens = [];
    this.terms = [];
    this.first = index + 1;
    this.last = index;
    this.lastTerm = term;
    this.prevTerm = term;
  }

  private compactArrays(): void {
    this.segs = this.segs.slice(this.head);
    this.offs = this.offs.slice(this.head);
    this.lens = this.lens.slice(this.head);
    this.terms = this.terms.slice(this.head);
    this.head = 0;
  }

  private checkInvariants(): void {
    assert(this.count === this.last - this.first + 1, 'group log: entry count disagrees with first/last');
  }
}
