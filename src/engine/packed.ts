/**
 * Trusted-order writes packed into one buffer: each write's engine key (keyspace prefix + user key)
 * and record (seq + value, or a tombstone's seq) laid end to end, with offsets in a Uint32Array.
 * No object per write: replay and memtable flushes carry tens of thousands of writes per engine
 * transaction, and an object (or typed-array view) per write that lives until the transaction is
 * built is what the garbage collector pays for. The engines make a view per write only as they
 * hand it to the store, which copies it at once.
 */
import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';
import type { Seq } from '../lib/ids.js';
import { seqBytes, tombstoneBit, writeVarint } from './keys.js';
import type { EngineWrite } from './types.js';
import { keyspaceIdMax } from './types.js';

export class PackedWrites {
  private slab: Uint8Array;
  private at = 0;
  /** Per write: key start, record start (the key's end); the next write's key start ends it. */
  private bounds: Uint32Array;
  count = 0;
  /** The highest seq packed (copied out). */
  readonly highSeq: Uint8Array = new Uint8Array(seqBytes);

  /** Room for `bytes` of keys and records and `writes` writes (both grow when exceeded). */
  constructor(bytes: number, writes: number) {
    this.slab = new Uint8Array(Math.max(bytes, 64));
    this.bounds = new Uint32Array(2 * Math.max(writes, 1) + 1);
  }

  static of(writes: readonly EngineWrite[]): PackedWrites {
    let bytes = 0;
    for (const w of writes) bytes += 5 + w.key.length + seqBytes + (w.type === 'put' ? w.value.length : 0);
    const p = new PackedWrites(bytes, writes.length);
    for (const w of writes) {
      if (w.type === 'put') p.put(w.keyspace, w.key, 0, w.key.length, w.seq, 0, w.value, 0, w.value.length);
      else p.delete(w.keyspace, w.key, 0, w.key.length, w.seq, 0);
    }
    return p;
  }

  /** Packs a put whose key, seq and value are byte ranges of the given arrays (often one payload). */
  put(
    keyspace: number,
    keySrc: Uint8Array,
    keyStart: number,
    keyEnd: number,
    seqSrc: Uint8Array,
    seqStart: number,
    valueSrc: Uint8Array,
    valueStart: number,
    valueEnd: number,
  ): void {
    const v0 = this.begin(keyspace, keySrc, keyStart, keyEnd, valueEnd - valueStart);
    assert(valueEnd - valueStart <= limits.valueBytesMax, 'packed value too large');
    this.seq(seqSrc, seqStart, v0);
    copyBytes(valueSrc, valueStart, valueEnd, this.slab, v0 + seqBytes);
    this.end(v0 + seqBytes + valueEnd - valueStart);
  }

  /** Packs a tombstone. */
  delete(
    keyspace: number,
    keySrc: Uint8Array,
    keyStart: number,
    keyEnd: number,
    seqSrc: Uint8Array,
    seqStart: number,
  ): void {
    const v0 = this.begin(keyspace, keySrc, keyStart, keyEnd, 0);
    this.seq(seqSrc, seqStart, v0);
    this.slab[v0] = (this.slab[v0] as number) | tombstoneBit;
    this.end(v0 + seqBytes);
  }

  /**
   * Calls `fn` with each write's engine key and record (views valid only during the call), in
   * packing order, or with `sorted` in about key order (sortedOrder): writes of the same key keep
   * their packing order either way, so the later one still wins.
   */
  forEach(fn: (key: Uint8Array, record: Uint8Array) => void, sorted = false): void {
    const { slab, bounds } = this;
    const order = sorted && this.count > 1 ? this.sortedOrder() : undefined;
    for (let n = 0; n < this.count; n++) {
      const i = order === undefined ? n : (order[n] as number);
      const k0 = bounds[2 * i] as number;
      const v0 = bounds[2 * i + 1] as number;
      const end = bounds[2 * i + 2] as number;
      fn(slab.subarray(k0, v0), slab.subarray(v0, end));
    }
  }

  /**
   * forEach without a view per write: `fn` gets the slab and the bounds of each write's key
   * [k0, v0) and record [v0, end). The slab is valid until the next packing call.
   */
  forEachRange(fn: (slab: Uint8Array, k0: number, v0: number, end: number) => void, sorted = false): void {
    const { slab, bounds } = this;
    const order = sorted && this.count > 1 ? this.sortedOrder() : undefined;
    for (let n = 0; n < this.count; n++) {
      const i = order === undefined ? n : (order[n] as number);
      fn(slab, bounds[2 * i] as number, bounds[2 * i + 1] as number, bounds[2 * i + 2] as number);
    }
  }

  /**
   * The writes' indexes ordered by the first 36 bits of their keys past the prefix all keys share,
   * then by packing order: key order but for keys equal in those bits (a B+ tree then inserts with
   * locality: LMDB takes 100,000 random keys ~2x faster sorted). Each sort key is one double, 36
   * bits of key over 17 bits of index, so the sort is the typed array's native one.
   */
  sortedOrder(): Uint32Array {
    const n = this.count;
    assert(n <= sortIndexLimit, 'packed batch too large to sort');
    const { slab, bounds } = this;
    const first0 = bounds[0] as number;
    let common = (bounds[1] as number) - first0;
    for (let i = 1; i < n && common > 0; i++) {
      const k0 = bounds[2 * i] as number;
      const len = Math.min(common, (bounds[2 * i + 1] as number) - k0);
      let c = 0;
      while (c < len && slab[k0 + c] === slab[first0 + c]) c++;
      common = c;
    }
    const sortKeys = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const k0 = (bounds[2 * i] as number) + common;
      const k1 = bounds[2 * i + 1] as number;
      let p = 0;
      for (let b = 0; b < 4; b++) p = p * 256 + (k0 + b < k1 ? (slab[k0 + b] as number) : 0);
      p = p * 16 + (k0 + 4 < k1 ? (slab[k0 + 4] as number) >> 4 : 0);
      sortKeys[i] = p * sortIndexLimit + i;
    }
    sortKeys.sort();
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = (sortKeys[i] as number) % sortIndexLimit;
    return order;
  }

  private begin(
    keyspace: number,
    src: Uint8Array,
    keyStart: number,
    keyEnd: number,
    valueBytes: number,
  ): number {
    const keyBytes = keyEnd - keyStart;
    assert(keyBytes >= 1 && keyBytes <= limits.keyBytesMax, 'packed key length');
    assert(Number.isInteger(keyspace) && keyspace >= 0 && keyspace <= keyspaceIdMax, 'packed keyspace');
    this.reserve(5 + keyBytes + seqBytes + valueBytes);
    let at = writeVarint(this.slab, this.at, keyspace + 1);
    copyBytes(src, keyStart, keyEnd, this.slab, at);
    at += keyBytes;
    this.bounds[2 * this.count] = this.at;
    this.bounds[2 * this.count + 1] = at;
    return at;
  }

  private seq(src: Uint8Array, start: number, at: number): void {
    copyBytes(src, start, start + seqBytes, this.slab, at);
    // Highest seq so far: bytewise, big-endian (the seq order).
    const h = this.highSeq;
    for (let i = 0; i < seqBytes; i++) {
      const a = src[start + i] as number;
      const b = h[i] as number;
      if (a === b) continue;
      if (a > b) h.set(src.subarray(start, start + seqBytes));
      return;
    }
  }

  private end(at: number): void {
    this.at = at;
    this.count++;
    this.bounds[2 * this.count] = at;
  }

  private reserve(bytes: number): void {
    if (this.at + bytes > this.slab.length) {
      const grown = new Uint8Array(Math.max(2 * this.slab.length, this.at + bytes));
      grown.set(this.slab.subarray(0, this.at));
      this.slab = grown;
    }
    if (2 * this.count + 3 > this.bounds.length) {
      const grown = new Uint32Array(2 * this.bounds.length + 1);
      grown.set(this.bounds);
      this.bounds = grown;
    }
  }

  /** Bytes packed so far. */
  get bytes(): number {
    return this.at;
  }

  /** The highest packed seq as a Seq (a copy). */
  maxSeq(): Seq {
    return this.highSeq.slice() as Seq;
  }
}

/** 2^17: sortedOrder's index bits (36 bits of key above them stay below 2^53). */
const sortIndexLimit = 131_072;

const bufferCopy = Buffer.prototype.copy;

/**
 * Copies src[start, end) to dst at `at` without allocating a view: short ranges byte by byte,
 * longer ones with Buffer's native copy (which takes any Uint8Array as source and target).
 */
function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  if (end - start > 32) {
    bufferCopy.call(src, dst, at, start, end);
    return;
  }
  for (let i = start; i < end; i++) dst[at++] = src[i] as number;
}
