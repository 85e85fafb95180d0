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

export function memId(keyspace: number, key: Uint8Array): string {
  return `${keyspace}:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
}

/** A 32-bit FNV-1a hash of (keyspace, key): a cheap "certainly not here" filter before memId. */
export function memHash(keyspace: number, key: Uint8Array): number {
  let h = Math.imul(0x811c9dc5 ^ keyspace, 0x01000193);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (key[i] as number), 0x01000193);
  return h >>> 0;
}

export class Memtable {
  active = new Map<string, MemRecord>();
  flushing: Map<string, MemRecord> | undefined;
  /** memHash of every key set in `active` / `flushing` (a superset: drops leave their hashes). */
  private activeHashes = new Set<number>();
  private flushingHashes: Set<number> | undefined;
  /** Highest log index whose writes are in `active` (or flushed). */
  activeLast = 0;
  /** Highest log index whose writes are in `flushing`. */
  flushingLast = 0;

  get(id: string): MemRecord | undefined {
    return this.active.get(id) ?? this.flushing?.get(id);
  }

  /** The record of a key, without building its memId when the hash filter says it is absent. */
  lookup(keyspace: number, key: Uint8Array): MemRecord | undefined {
    if (this.size === 0) return undefined;
    const h = memHash(keyspace, key);
    if (!this.activeHashes.has(h) && this.flushingHashes?.has(h) !== true) return undefined;
    return this.get(memId(keyspace, key));
  }

  set(id: string, r: MemRecord, index: number): void {
    this.active.set(id, r);
    this.activeHashes.add(memHash(r.keyspace, r.key));
    this.activeLast = index;
  }

  /** Freezes `active` into `flushing` (which must be empty) and returns it. */
  freeze(): Map<string, MemRecord> {
    const gen = this.active;
    this.flushing = gen;
    this.flushingHashes = this.activeHashes;
    this.flushingLast = this.activeLast;
    this.active = new Map();
    this.activeHashes = new Set();
    return gen;
  }

  flushed(): void {
    this.flushing = undefined;
    this.flushingHashes = undefined;
  }

  /** Forgets every record of a keyspace (its table was dropped). */
  dropKeyspace(keyspace: number): void {
    const prefix = `${keyspace}:`;
    for (const m of [this.active, this.flushing]) {
      if (!m) continue;
      for (const id of m.keys()) if (id.startsWith(prefix)) m.delete(id);
    }
  }

  get size(): number {
    return this.active.size + (this.flushing?.size ?? 0);
  }
}
