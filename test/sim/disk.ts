/**
 * A node's simulated disk: one ordered stream of writes (like the shared append-only log) with group
 * commit. A write is durable once an fsync that started after it completes. A crash keeps a random
 * prefix of the unsynced writes and may tear the last one (a torn entries write keeps only some of
 * its entries: recovery cuts the log at the first bad record). The disk can stall: fsyncs then
 * complete only when the stall ends.
 */
import type { Entry, HardState, SnapshotMeta } from '../../src/consensus/types.js';
import { assert } from '../../src/lib/assert.js';
import type { GroupId } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';
import type { KvSnapshot } from './kv.js';

export interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: KvSnapshot;
}

/** What survives a crash for one replica. `entries` follow the snapshot, contiguous. */
export interface DurableReplica {
  hardState: HardState | undefined;
  snapshot: StoredSnapshot | undefined;
  entries: Entry[];
}

export type DiskWrite =
  /** A snapshot received from the leader: the log restarts after it. */
  | { readonly kind: 'install'; readonly group: GroupId; readonly snap: StoredSnapshot }
  /** A local checkpoint for compaction: entries after it are kept. */
  | { readonly kind: 'checkpoint'; readonly group: GroupId; readonly snap: StoredSnapshot }
  | { readonly kind: 'entries'; readonly group: GroupId; readonly entries: readonly Entry[] }
  | { readonly kind: 'hardState'; readonly group: GroupId; readonly hardState: HardState };

interface Pending {
  readonly write: DiskWrite | null;
  readonly onDurable: (() => void)[];
}

export interface DiskEnv {
  now(): number;
  /** Schedules `fn` on the owning node (deferred while the node is paused, dropped if it crashed). */
  schedule(delayMs: number, fn: () => void): void;
  readonly prng: Prng;
  readonly fsyncMsMin: number;
  readonly fsyncMsMax: number;
}

export class SimDisk {
  readonly durable = new Map<GroupId, DurableReplica>();
  private pending: Pending[] = [];
  private syncing = 0;
  stallUntilMs = 0;
  fsyncs = 0;

  constructor(private readonly env: DiskEnv) {}

  replica(group: GroupId): DurableReplica {
    let d = this.durable.get(group);
    if (d === undefined) {
      d = { hardState: undefined, snapshot: undefined, entries: [] };
      this.durable.set(group, d);
    }
    return d;
  }

  write(w: DiskWrite): void {
    this.pending.push({ write: w, onDurable: [] });
    if (this.syncing === 0) this.startSync();
  }

  /** Runs `fn` once every write issued so far is durable (at once if none is pending). */
  afterPending(fn: () => void): void {
    const last = this.pending[this.pending.length - 1];
    if (last === undefined) fn();
    else last.onDurable.push(fn);
  }

  /** A replica deleted from this node: its data goes, and its unsynced writes never land. */
  dropGroup(group: GroupId): void {
    this.durable.delete(group);
    this.pending = this.pending.map((p) =>
      p.write?.group === group ? { write: null, onDurable: p.onDurable } : p,
    );
  }

  get unsyncedCount(): number {
    return this.pending.length;
  }

  private startSync(): void {
    const batch = this.pending.length;
    if (batch === 0) return;
    this.syncing = batch;
    let latency = this.env.prng.int(this.env.fsyncMsMin, this.env.fsyncMsMax);
    // A slow fsync now and then (a busy device): unsynced data lingers.
    if (this.env.prng.chance(0.05)) latency += this.env.prng.int(10, 100);
    const done = Math.max(this.env.now() + latency, this.stallUntilMs);
    this.env.schedule(done - this.env.now(), () => this.finishSync());
  }

  private finishSync(): void {
    const n = this.syncing;
    if (n === 0) return;
    this.syncing = 0;
    this.fsyncs++;
    const done = this.pending.splice(0, n);
    for (const p of done) if (p.write) applyWrite(this.replica(p.write.group), p.write);
    for (const p of done) for (const fn of p.onDurable) fn();
    this.startSync();
  }

  /** Power loss: a prefix of the unsynced writes reaches the disk, the next one may be torn. */
  crash(prng: Prng): { kept: number; lost: number; torn: boolean } {
    const keep = prng.int(0, this.pending.length);
    for (const p of this.pending.slice(0, keep))
      if (p.write) applyWrite(this.replica(p.write.group), p.write);
    const next = this.pending[keep]?.write;
    let torn = false;
    if (next && next.kind === 'entries' && next.entries.length > 1 && prng.chance(0.5)) {
      const part = prng.int(1, next.entries.length - 1);
      applyWrite(this.replica(next.group), { ...next, entries: next.entries.slice(0, part) });
      torn = true;
    }
    const lost = this.pending.length - keep;
    this.pending = [];
    this.syncing = 0;
    return { kept: keep, lost, torn };
  }
}

function applyWrite(d: DurableReplica, w: DiskWrite): void {
  switch (w.kind) {
    case 'install':
      d.snapshot = w.snap;
      d.entries = [];
      return;
    case 'checkpoint': {
      if (d.snapshot !== undefined && d.snapshot.meta.index >= w.snap.meta.index) return;
      d.snapshot = w.snap;
      d.entries = d.entries.filter((e) => e.index > w.snap.meta.index);
      return;
    }
    case 'entries': {
      const first = w.entries[0];
      if (first === undefined) return;
      const base = d.snapshot?.meta.index ?? 0;
      // Entries at or below the snapshot point are already covered by it.
      const fresh = w.entries.filter((e) => e.index > base);
      const f = fresh[0];
      if (f === undefined) return;
      const keep = f.index - base - 1;
      assert(
        keep <= d.entries.length,
        `durable log gap: append at ${f.index}, have ${base + d.entries.length}`,
      );
      d.entries.length = keep;
      d.entries.push(...fresh);
      return;
    }
    case 'hardState':
      d.hardState = w.hardState;
      return;
  }
}
