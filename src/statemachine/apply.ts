/**
 * Applying committed log entries to real engines. Per call: one batched read of the current
 * records, decisions in log order (an overlay holds the keys written earlier in the same call), and
 * one applyBatch per engine instance carrying the applied index and the highest seq. A dropTable
 * splits the call: writes before it are flushed, the keyspaces are dropped, then the drop is recorded.
 *
 * Replay: an instance skips the entries at or below its own applied index (their writes and dedup
 * records are already there, atomically); replay starts at `state.replayFrom`.
 * Dedup records live in the instance that applied the command (its table's engine; `metaKind` for
 * noop and dropTable), written with each batch (DedupTable.takeEdits at every flush, atomically
 * with the writes of the same entries); dropped tables live in `metaKind`.
 */
import type { Entry } from '../consensus/types.js';
import type {
  Engine,
  EngineKind,
  EngineRecord,
  EngineWrite,
  KeyspaceId,
  MetaWrite,
} from '../engine/types.js';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { logIndex } from '../lib/ids.js';
import { type Command, decodeCommand } from './command.js';
import { decide, type Outcome } from './decide.js';
import { DedupTable } from './dedup.js';
import { DroppedTables } from './tables.js';

/** The engine instances a group uses on this node. */
export interface GroupEngines {
  readonly group: GroupId;
  readonly engines: ReadonlyMap<EngineKind, Engine>;
  /** Holds dropped tables and the dedup records of noop/dropTable. Must never change for a group. */
  readonly metaKind: EngineKind;
}

export interface EntryResult {
  readonly index: LogIndex;
  /** The decoded command (command entries only). */
  readonly command?: Command;
  /** The answer for the client; undefined for entries already applied before (replay) and non-commands. */
  readonly outcome?: Outcome;
  /** A retried request answered from the dedup table (nothing written). */
  readonly duplicate: boolean;
}

/** The in-memory side of a group's applied state: dedup table, dropped tables, applied positions. */
export class GroupState {
  readonly applied = new Map<EngineKind, LogIndex>();

  constructor(
    readonly dedup: DedupTable = new DedupTable(),
    readonly dropped: DroppedTables = new DroppedTables(),
  ) {}

  static async load(g: GroupEngines, dedup: DedupTable = new DedupTable()): Promise<GroupState> {
    assert(g.engines.has(g.metaKind), 'metaKind must be one of the group engines');
    const state = new GroupState(dedup);
    for (const [kind, engine] of g.engines) {
      const pos = await engine.getApplied(g.group);
      if (pos.installing)
        throw new TesseraError('UNAVAILABLE', `group ${g.group}: ${kind} snapshot install incomplete`);
      state.applied.set(kind, pos.index);
      // One read of the group's meta records: each table takes its own tags and skips the rest.
      const records = await engine.readMeta(g.group);
      state.dedup.load(kind, records);
      state.dropped.load(records);
    }
    return state;
  }

  /** The first log index to replay: one past the lowest applied index among the group's instances. */
  get replayFrom(): LogIndex {
    return logIndex(Math.min(...this.applied.values()) + 1);
  }

  appliedOf(kind: EngineKind): LogIndex {
    return this.applied.get(kind) ?? logIndex(0);
  }
}

interface Pending {
  writes: EngineWrite[];
  meta: MetaWrite[];
}

const keyId = (ks: number, key: Uint8Array): string => `${ks}:${String.fromCharCode(...key)}`;

function maxSeq(a: Seq, b: Seq): Seq {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return (a[i] as number) > (b[i] as number) ? a : b;
  return a;
}

/** One applyCommitted call: pending batches per instance, the read overlay, the results. */
class ApplyRun {
  readonly pending = new Map<EngineKind, Pending>();
  readonly overlay = new Map<string, EngineRecord | undefined>();
  readonly results: EntryResult[] = [];
  highestSeq: Seq;
  lastIndex: LogIndex;

  constructor(
    readonly g: GroupEngines,
    readonly state: GroupState,
    first: Entry,
  ) {
    this.highestSeq = first.seq;
    this.lastIndex = logIndex(first.index - 1);
    for (const kind of g.engines.keys()) this.pending.set(kind, { writes: [], meta: [] });
  }

  live(kind: EngineKind, index: LogIndex): boolean {
    return index > this.state.appliedOf(kind);
  }

  engine(kind: EngineKind): Engine {
    const e = this.g.engines.get(kind);
    assert(e !== undefined, `group ${this.g.group} has no ${kind} engine`);
    return e;
  }

  /**
   * Reads the current records of every key a live conditional put or delete touches (one getMany
   * per instance). An unconditional put is decided without its key's record (`decide` ignores it;
   * the engine's reconciler still keeps the highest seq), so it costs no read here.
   */
  async prefetch(entries: readonly Entry[], commands: readonly (Command | undefined)[]): Promise<void> {
    const reads = new Map<EngineKind, { keyspace: KeyspaceId; key: Uint8Array }[]>();
    commands.forEach((c, i) => {
      if (c === undefined || (c.type !== 'put' && c.type !== 'delete')) return;
      if (c.type === 'put' && c.condition.type === 'none') return;
      if (!this.live(c.engine, (entries[i] as Entry).index)) return;
      const id = keyId(c.keyspace, c.key);
      if (this.overlay.has(id)) return;
      this.overlay.set(id, undefined);
      const list = reads.get(c.engine) ?? [];
      list.push({ keyspace: c.keyspace, key: c.key });
      reads.set(c.engine, list);
    });
    for (const [kind, list] of reads) {
      const records = await this.engine(kind).getMany(list);
      list.forEach((r, i) => {
        this.overlay.set(keyId(r.keyspace, r.key), records[i]);
      });
    }
  }

  /** Sends every instance its batch up to `index` (instances already past it are left alone). */
  async flush(index: LogIndex): Promise<void> {
    // The dedup table's changes so far, written with the writes they came with (an instance
    // already past `index` holds them: its changes stay marked for a later batch).
    for (const edit of this.state.dedup.takeEdits((kind) => this.live(kind, index))) {
      const p = this.pending.get(edit.home);
      assert(p !== undefined, `dedup record in a ${edit.home} instance the group does not use`);
      p.meta.push(edit.write);
    }
    const kinds: EngineKind[] = [];
    const jobs: Promise<unknown>[] = [];
    for (const [kind, p] of this.pending) {
      if (!this.live(kind, index)) {
        assert(p.writes.length === 0 && p.meta.length === 0, 'writes for an instance already past them');
        continue;
      }
      kinds.push(kind);
      jobs.push(this.engine(kind).applyBatch(this.g.group, p.writes, index, this.highestSeq, p.meta));
      this.pending.set(kind, { writes: [], meta: [] });
    }
    const settled = await Promise.allSettled(jobs);
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') this.state.applied.set(kinds[i] as EngineKind, index);
    });
    const failed = settled.find((r) => r.status === 'rejected');
    // The in-memory dedup table is now ahead of the failed instance: reload the GroupState.
    if (failed !== undefined) throw failed.reason;
  }
}

/**
 * Applies committed entries (consecutive, in log order) and returns one result per entry.
 * Entries at or below every instance's applied index are skipped (their result has no outcome).
 * If it rejects (an engine failed), `state` is stale: load it again (GroupState.load) and replay
 * from `state.replayFrom`.
 */
export async function applyCommitted(
  entries: readonly Entry[],
  g: GroupEngines,
  state: GroupState,
): Promise<EntryResult[]> {
  if (entries.length === 0) return [];
  entries.forEach((e, i) => {
    assert(i === 0 || e.index === (entries[i - 1] as Entry).index + 1, 'entries must be consecutive');
  });
  const run = new ApplyRun(g, state, entries[0] as Entry);
  const commands = entries.map((e) => (e.kind === 'command' ? decodeCommand(e.data) : undefined));
  await run.prefetch(entries, commands);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    const command = commands[i];
    run.highestSeq = maxSeq(run.highestSeq, entry.seq);
    if (command?.type === 'dropTable') {
      if (i > 0) await run.flush((entries[i - 1] as Entry).index);
      await applyDrop(run, entry, command);
    } else {
      applyOne(run, entry, command);
    }
    run.lastIndex = entry.index;
  }
  await run.flush(run.lastIndex);
  return run.results;
}

function homeOf(run: ApplyRun, command: Command): EngineKind {
  return command.type === 'put' || command.type === 'delete' ? command.engine : run.g.metaKind;
}

/** Decides one entry (not a dropTable) and queues its writes. */
function applyOne(run: ApplyRun, entry: Entry, command: Command | undefined): void {
  if (command === undefined) {
    run.results.push({ index: entry.index, duplicate: false });
    return;
  }
  const home = homeOf(run, command);
  if (!run.live(home, entry.index)) {
    run.results.push({ index: entry.index, command, duplicate: false });
    return;
  }
  const first = run.state.dedup.lookup(command.request);
  if (first !== undefined) {
    run.results.push({ index: entry.index, command, outcome: first, duplicate: true });
    return;
  }
  const pending = run.pending.get(home) as Pending;
  let outcome: Outcome;
  if (
    (command.type === 'put' || command.type === 'delete') &&
    run.state.dropped.isDropped(command.table, entry.index)
  ) {
    outcome = { ok: false, error: 'TABLE_NOT_FOUND' };
  } else if (command.type === 'put' || command.type === 'delete') {
    const id = keyId(command.keyspace, command.key);
    const decision = decide(command, run.overlay.get(id), entry.seq);
    outcome = decision.outcome;
    if (decision.write !== undefined) {
      pending.writes.push(decision.write);
      const w = decision.write;
      run.overlay.set(id, {
        seq: w.seq,
        tombstone: w.type === 'delete',
        value: w.type === 'put' ? w.value : new Uint8Array(0),
      });
    }
  } else {
    outcome = decide(command, undefined, entry.seq).outcome;
  }
  recordOutcome(run, command, outcome, entry.index, home);
  run.results.push({ index: entry.index, command, outcome, duplicate: false });
}

function recordOutcome(
  run: ApplyRun,
  command: Command,
  outcome: Outcome,
  index: LogIndex,
  home: EngineKind,
): void {
  assert(run.pending.has(home), `dedup record in a ${home} instance the group does not use`);
  run.state.dedup.record(command.request, outcome, index, home);
}

async function applyDrop(
  run: ApplyRun,
  entry: Entry,
  command: Command & { type: 'dropTable' },
): Promise<void> {
  const home = run.g.metaKind;
  for (const shard of command.shards) {
    if (run.live(shard.engine, entry.index)) await run.engine(shard.engine).dropKeyspace(shard.keyspace);
  }
  if (!run.live(home, entry.index)) {
    run.results.push({ index: entry.index, command, duplicate: false });
    await run.flush(entry.index);
    return;
  }
  const first = run.state.dedup.lookup(command.request);
  if (first !== undefined) {
    run.results.push({ index: entry.index, command, outcome: first, duplicate: true });
  } else {
    (run.pending.get(home) as Pending).meta.push(run.state.dropped.record(command.table, entry.index));
    const outcome: Outcome = { ok: true, seq: entry.seq };
    recordOutcome(run, command, outcome, entry.index, home);
    run.results.push({ index: entry.index, command, outcome, duplicate: false });
  }
  // Keys of the dropped keyspaces are gone now.
  for (const [k, v] of run.overlay) {
    if (v !== undefined && command.shards.some((s) => k.startsWith(`${s.keyspace}:`)))
      run.overlay.set(k, undefined);
  }
  await run.flush(entry.index);
}
