/**
 * The applied writes not yet in an engine: the newest record per key, in two generations (the one
 * taking writes and the one being flushed). Lookups see `active`, then `flushing`, then the engine.
 */
import type { EngineKind, KeyspaceId } from '../engine/types.js';
import type { Seq } from '../lib/ids.js';

/** Also the EngineWrite handed to the engine at flush (`type`), so a flush allocates nothing per record. */
export interface MemRecord {
  readonly type: 'put' | 'delete';
  readonly engine: EngineKind;
  readonly keyspace: KeyspaceId;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly seq: Seq;
  readonly tombstone: boolean;
}

/** A string naming (keyspace, key), for maps outside the memtable (a batch's deletes). */
export function memId(keyspace: number, key: Uint8Array): string {
  return `${keyspace}:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
}

/** A 32-bit FNV-1a hash of (keyspace, key). */
export function memHash(keyspace: number, key: Uint8Array): number {
  let h = Math.imul(0x811c9dc5 ^ keyspace, 0x01000193);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (key[i] as number), 0x01000193);
  return h >>> 0;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const initialSlots = 1024;

/**
 * One generation: records by (keyspace, key bytes) in an open-addressing table (linear probing,
 * at most half full) over an array of the records in first-set order. No string or other object
 * per key: a Map keyed by a latin1 string of the key cost a string, its hash and a Set entry per
 * write, the largest item of the write path's profile.
 */
export class RecordTable {
  /** Record number + 1 per slot; 0 = empty. */
  private slots = new Int32Array(initialSlots);
  private hashes = new Uint32Array(initialSlots >> 1);
  private readonly records: MemRecord[] = [];

  get size(): number {
    return this.records.length;
  }

  get(keyspace: number, key: Uint8Array): MemRecord | undefined {
    if (this.records.length === 0) return undefined;
    const h = memHash(keyspace, key);
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const n = this.slots[s] as number;
      if (n === 0) return undefined;
      const r = this.records[n - 1] as MemRecord;
      if (this.hashes[n - 1] === h && r.keyspace === keyspace && sameKey(r.key, key)) return r;
    }
  }

  /** Sets the record of its (keyspace, key), replacing an earlier one in place. */
  set(r: MemRecord): void {
    const h = memHash(r.keyspace, r.key);
    const mask = this.slots.length - 1;
    let s = h & mask;
    for (; ; s = (s + 1) & mask) {
      const n = this.slots[s] as number;
      if (n === 0) break;
      const old = this.records[n - 1] as MemRecord;
      if (this.hashes[n - 1] === h && old.keyspace === r.keyspace && sameKey(old.key, r.key)) {
        this.records[n - 1] = r;
        return;
      }
    }
    const n = this.records.length;
    if (n === this.hashes.length) {
      const grown = new Uint32Array(2 * n);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[n] = h;
    this.records.push(r);
    this.slots[s] = n + 1;
    if (2 * (n + 1) > this.slots.length) this.rehash(2 * this.slots.length);
  }

  /** The records, in the order their keys were first set (do not modify). */
  values(): readonly MemRecord[] {
    return this.records;
  }

  /** A table without the records of `keyspace`. */
  without(keyspace: number): RecordTable {
    const t = new RecordTable();
    for (const r of this.records) if (r.keyspace !== keyspace) t.set(r);
    return t;
  }

  private rehash(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let n = 0; n < this.records.length; n++) {
      let s = (this.hashes[n] as number) & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = n + 1;
    }
    this.slots = slots;
  }
}

export class Memtable {
  active = new RecordTable();
  flushing: RecordTable | undefined;
  /** Highest log index whose writes are in `active` (or flushed). */
  activeLast = 0;
  /** Highest log index whose writes are in `flushing`. */
  flushingLast = 0;

  /** The record of a key: the active generation's, else the flushing one's. */
  lookup(keyspace: number, key: Uint8Array): MemRecord | undefined {
    return this.active.get(keyspace, key) ?? this.flushing?.get(keyspace, key);
  }

  set(r: MemRecord, index: number): void {
    this.active.set(r);
    this.activeLast = index;
  }

  /** Freezes `active` into `flushing` (which must be empty) and returns its records. */
  freeze(): readonly MemRecord[] {
    const gen = this.active;
    this.flushing = gen;
    this.flushingLast = this.activeLast;
    this.active = new RecordTable();
    return gen.values();
  }

  flushed(): void {
    this.flushing = undefined;
  }

  /** Forgets every record of a keyspace (its table was dropped). */
  dropKeyspace(keyspace: number): void {
    this.active = this.active.without(keyspace);
    this.flushing = this.flushing?.without(keyspace);
  }

  get size(): number {
    return this.active.size + (this.flushing?.size ?? 0);
  }
}
