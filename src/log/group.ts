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
  // Parallel typed arrays of the live entries first..last at [head, end) (cheap release from the
  // front), grown by doubling: recovery appends one entry per record, and a plain array per field
  // cost a boxed push each. Segment numbers and lengths are u32 in the format; offsets and terms
  // are safe integers.
  private head = 0;
  private end = 0;
  private segs = new Uint32Array(16);
  private offs = new Float64Array(16);
  private lens = new Uint32Array(16);
  private terms = new Float64Array(16);

  constructor(group: number) {
    this.group = group;
  }

  get count(): number {
    return this.end - this.head;
  }

  /**
   * Appends entry `index` at (segment, offset, length), first discarding every entry >= index (Raft
   * suffix overwrite). Positional, not a location object: recovery calls it once per record.
   */
  applyEntry(index: number, segment: number, offset: number, length: number, term: number): boolean {
    if (index < this.first || index > this.last + 1) return false;
    this.truncateFrom(index);
    if (this.end === this.segs.length) this.grow();
    const at = this.end++;
    this.segs[at] = segment;
    this.offs[at] = offset;
    this.lens[at] = length;
    this.terms[at] = term;
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
    if (this.head > 1024 && this.head * 2 > this.end) this.compactArrays();
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
    this.end = this.head + index - this.first;
    this.last = index - 1;
    this.lastTerm = this.term(this.last) ?? 0;
  }

  private resetTo(index: number, term: number): void {
    this.head = this.end = 0;
    this.first = index + 1;
    this.last = index;
    this.lastTerm = term;
    this.prevTerm = term;
  }

  /** Moves the live entries to the front, into arrays of room for twice as many. */
  private compactArrays(): void {
    this.resize(Math.max(16, 2 * this.count));
  }

  private grow(): void {
    this.resize(2 * Math.max(16, this.count));
  }

  private resize(room: number): void {
    const { head, end } = this;
    const segs = new Uint32Array(room);
    const offs = new Float64Array(room);
    const lens = new Uint32Array(room);
    const terms = new Float64Array(room);
    segs.set(this.segs.subarray(head, end));
    offs.set(this.offs.subarray(head, end));
    lens.set(this.lens.subarray(head, end));
    terms.set(this.terms.subarray(head, end));
    this.segs = segs;
    this.offs = offs;
    this.lens = lens;
    this.terms = terms;
    this.head = 0;
    this.end = end - head;
  }

  private checkInvariants(): void {
    assert(this.count === this.last - this.first + 1, 'group log: entry count disagrees with first/last');
  }
}
