/**
 * Applies a group's committed log entries (commands) to the index engines through the reconciler,
 * and recovers by replaying the log from the engines' applied position. Shared by the single-node
 * store and (later) the cluster's storage node, which feeds it Raft-committed entries.
 *
 * - One applier per group. The group's table catalog (name -> keyspace, engine) lives in the btree
 *   instance's meta records, written in the same batch as that instance's applied position.
 * - Each engine instance has its own applied index; an entry is applied to an instance only if its
 *   index is above that instance's applied index, so a replay from the lowest one is idempotent.
 * - Batches: one engine transaction per instance per run of data commands.
 */
import { assert } from '../lib/assert.js';
import { type ErrorCode, TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, Seq } from '../lib/ids.js';
import { compareSeq, seqMax, ZERO_SEQ } from '../sequencer/seq.js';
import type { Engine, EngineKind, EngineWrite, KeyspaceId, MetaWrite } from '../engine/types.js';
import type { Log } from '../log/log.js';
import { type Command, decodeCommand } from './command.js';

export interface TableInfo {
  readonly name: string;
  readonly keyspace: KeyspaceId;
  readonly engine: EngineKind;
}

export type ApplyOutcome = { ok: true; seq: Seq; table?: TableInfo } | { ok: false; code: ErrorCode };

export interface CommittedEntry {
  readonly index: number;
  readonly payload: Buffer;
}

const tablePrefix = Buffer.from('t/');
const nextKeyspaceKey = Buffer.from('n');
const replayChunkEntries = 8192;

function tableMetaKey(name: string): Buffer {
  return Buffer.concat([tablePrefix, Buffer.from(name, 'utf8')]);
}

function tableMetaValue(t: TableInfo): Buffer {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(t.keyspace, 0);
  b[4] = t.engine === 'btree' ? 1 : 2;
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** Pending data writes of one run, per engine, with the outcome slot they answer. */
interface Run {
  writes: Record<EngineKind, EngineWrite[]>;
  lastIndex: number;
  highSeq: Seq;
}

export class GroupApplier {
  readonly group: GroupId;
  private readonly engines: Record<EngineKind, Engine>;
  private readonly byName = new Map<string, TableInfo>();
  private readonly byKeyspace = new Map<number, TableInfo>();
  private nextKeyspace = 1;
  private readonly engineApplied: Record<EngineKind, number>;
  /** Every entry <= appliedIndex has been handed to the engines. */
  appliedIndex: number;
  /** Highest seq applied (or recorded by an engine): a sequencer must observe it. */
  highSeq: Seq;

  private constructor(
    group: GroupId,
    engines: Record<EngineKind, Engine>,
    applied: Record<EngineKind, number>,
  ) {
    this.group = group;
    this.engines = engines;
    this.engineApplied = applied;
    this.appliedIndex = Math.min(applied.btree, applied.lsm);
    this.highSeq = ZERO_SEQ;
  }

  static async open(group: GroupId, engines: Record<EngineKind, Engine>): Promise<GroupApplier> {
    const b = await engines.btree.getApplied(group);
    const l = await engines.lsm.getApplied(group);
    if (b.installing || l.installing) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${group}: a snapshot install was cut; the replica must catch up again`,
      );
    }
    const a = new GroupApplier(group, engines, { btree: b.index, lsm: l.index });
    a.highSeq = seqMax(b.seq, l.seq);
    for (const m of await engines.btree.readMeta(group)) {
      const key = Buffer.from(m.key);
      const val = Buffer.from(m.value);
      if (key.equals(nextKeyspaceKey)) a.nextKeyspace = val.readUInt32BE(0);
      else if (key.subarray(0, 2).equals(tablePrefix)) {
        const t: TableInfo = {
          name: key.toString('utf8', 2),
          keyspace: val.readUInt32BE(0) as KeyspaceId,
          engine: val[4] === 1 ? 'btree' : 'lsm',
        };
        a.byName.set(t.name, t);
        a.byKeyspace.set(t.keyspace, t);
      }
    }
    return a;
  }

  table(name: string): TableInfo | undefined {
    return this.byName.get(name);
  }

  tables(): TableInfo[] {
    return [...this.byName.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  engine(kind: EngineKind): Engine {
    return this.engines[kind];
  }

  /** Replays the log from the lowest applied index of the engines. Returns the entries replayed. */
  async recover(log: Log): Promise<number> {
    const st = log.groupState(this.group);
    const last = st?.lastIndex ?? 0;
    const maxApplied = Math.max(this.engineApplied.btree, this.engineApplied.lsm);
    if (maxApplied > last) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${this.group}: engines applied ${maxApplied} > log end ${last}`,
      );
    }
    if (this.appliedIndex >= last) return 0;
    if (st!.firstIndex > this.appliedIndex + 1) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${this.group}: log starts at ${st!.firstIndex}, engines need ${this.appliedIndex + 1}`,
      );
    }
    let replayed = 0;
    for (let i = this.appliedIndex + 1; i <= last; ) {
      const hi = Math.min(last, i + replayChunkEntries - 1);
      const entries = await log.readEntries(this.group, i as LogIndex, hi as LogIndex);
      await this.apply(entries);
      i += entries.length;
      replayed += entries.length;
    }
    return replayed;
  }

  /** Applies committed entries appliedIndex+1.. in order; one outcome per entry. */
  async apply(entries: readonly CommittedEntry[]): Promise<ApplyOutcome[]> {
    const outcomes: ApplyOutcome[] = [];
    const cmds = entries.map((e, k) => {
      assert(e.index === this.appliedIndex + 1 + k, `apply: entry ${e.index} out of order`);
      return decodeCommand(e.payload);
    });
    const exists = await this.readDeleted(entries, cmds);
    let run = this.newRun();
    for (let k = 0; k < entries.length; k++) {
      const index = entries[k]!.index;
      const c = cmds[k]!;
      if (c.op === 'put' || c.op === 'delete') {
        outcomes.push(this.applyData(run, index, c, exists));
        continue;
      }
      await this.flush(run);
      run = this.newRun();
      outcomes.push(
        c.op === 'createTable' ? await this.applyCreate(index, c) : await this.applyDrop(index, c),
      );
    }
    await this.flush(run);
    this.appliedIndex += entries.length;
    return outcomes;
  }

  /**
   * Makes the applied state durable in every engine and lets the log drop what they hold. Must not
   * run concurrently with apply().
   */
  async checkpoint(log: Log): Promise<void> {
    const upTo = this.appliedIndex;
    for (const kind of ['btree', 'lsm'] as const) {
      if (this.engineApplied[kind] < upTo) {
        await this.engines[kind].applyBatch(this.group, [], upTo as LogIndex, this.highSeq);
        this.engineApplied[kind] = upTo;
      }
    }
    await Promise.all([this.engines.btree.checkpoint(), this.engines.lsm.checkpoint()]);
    if (upTo > 0) await log.releaseUpTo(this.group, upTo as LogIndex);
  }

  private newRun(): Run {
    return { writes: { btree: [], lsm: [] }, lastIndex: 0, highSeq: ZERO_SEQ };
  }

  /** Whether each key deleted in this batch exists before it (a delete of an absent key is refused). */
  private async readDeleted(
    entries: readonly CommittedEntry[],
    cmds: Command[],
  ): Promise<Map<string, boolean>> {
    const exists = new Map<string, boolean>();
    for (const kind of ['btree', 'lsm'] as const) {
      const reads: { keyspace: KeyspaceId; key: Uint8Array }[] = [];
      cmds.forEach((c, k) => {
        if (c.op !== 'delete' || entries[k]!.index <= this.engineApplied[kind]) return;
        if (this.byKeyspace.get(c.keyspace)?.engine === kind)
          reads.push({ keyspace: c.keyspace, key: c.key });
      });
      if (reads.length === 0) continue;
      const got = await this.engines[kind].getMany(reads);
      reads.forEach((r, k) => {
        const rec = got[k];
        exists.set(keyId(r.keyspace, r.key), rec !== undefined && !rec.tombstone);
      });
    }
    return exists;
  }

  private applyData(
    run: Run,
    index: number,
    c: Extract<Command, { op: 'put' | 'delete' }>,
    exists: Map<string, boolean>,
  ): ApplyOutcome {
    if (compareSeq(c.seq, this.highSeq) > 0) this.highSeq = c.seq;
    const t = this.byKeyspace.get(c.keyspace);
    if (!t) return { ok: false, code: 'TABLE_NOT_FOUND' };
    if (index <= this.engineApplied[t.engine]) return { ok: true, seq: c.seq }; // already in the engine
    const id = keyId(c.keyspace, c.key);
    if (c.op === 'delete') {
      if (exists.get(id) !== true) return { ok: false, code: 'KEY_NOT_FOUND' };
      run.writes[t.engine].push({ type: 'delete', keyspace: c.keyspace, key: c.key, seq: c.seq });
    } else {
      run.writes[t.engine].push({
        type: 'put',
        keyspace: c.keyspace,
        key: c.key,
        value: c.value,
        seq: c.seq,
      });
    }
    if (exists.has(id)) exists.set(id, c.op === 'put');
    run.lastIndex = index;
    if (compareSeq(c.seq, run.highSeq) > 0) run.highSeq = c.seq;
    return { ok: true, seq: c.seq };
  }

  private async flush(run: Run): Promise<void> {
    if (run.lastIndex === 0) return;
    await Promise.all(
      (['btree', 'lsm'] as const).map(async (kind) => {
        const writes = run.writes[kind];
        if (writes.length === 0) return;
        await this.engines[kind].applyBatch(this.group, writes, run.lastIndex as LogIndex, run.highSeq);
        this.engineApplied[kind] = run.lastIndex;
      }),
    );
  }

  private async applyCreate(
    index: number,
    c: Extract<Command, { op: 'createTable' }>,
  ): Promise<ApplyOutcome> {
    if (compareSeq(c.seq, this.highSeq) > 0) this.highSeq = c.seq;
    if (index <= this.engineApplied.btree) {
      const t = this.byName.get(c.name);
      return t ? { ok: true, seq: c.seq, table: t } : { ok: false, code: 'TABLE_NOT_FOUND' };
    }
    if (this.byName.has(c.name)) return { ok: false, code: 'TABLE_EXISTS' };
    const t: TableInfo = { name: c.name, keyspace: this.nextKeyspace as KeyspaceId, engine: c.engine };
    this.nextKeyspace += 1;
    const meta: MetaWrite[] = [
      { key: tableMetaKey(t.name), value: tableMetaValue(t) },
      { key: nextKeyspaceKey, value: u32(this.nextKeyspace) },
    ];
    await this.engines.btree.applyBatch(this.group, [], index as LogIndex, c.seq, meta);
    this.engineApplied.btree = index;
    this.byName.set(t.name, t);
    this.byKeyspace.set(t.keyspace, t);
    return { ok: true, seq: c.seq, table: t };
  }

  private async applyDrop(index: number, c: Extract<Command, { op: 'dropTable' }>): Promise<ApplyOutcome> {
    if (compareSeq(c.seq, this.highSeq) > 0) this.highSeq = c.seq;
    let outcome: ApplyOutcome = { ok: true, seq: c.seq };
    if (index > this.engineApplied.btree) {
      const t = this.byName.get(c.name);
      if (t?.keyspace === c.keyspace) {
        this.byName.delete(t.name);
        this.byKeyspace.delete(t.keyspace);
        const meta: MetaWrite[] = [{ key: tableMetaKey(t.name), value: undefined }];
        await this.engines.btree.applyBatch(this.group, [], index as LogIndex, c.seq, meta);
        this.engineApplied.btree = index;
      } else {
        outcome = { ok: false, code: 'TABLE_NOT_FOUND' };
      }
    }
    // Keyspace ids are never reused, so dropping the command's keyspace is always safe (and idempotent).
    if (index > this.engineApplied[c.engine]) {
      await this.engines[c.engine].dropKeyspace(c.keyspace);
      await this.engines[c.engine].applyBatch(this.group, [], index as LogIndex, c.seq);
      this.engineApplied[c.engine] = index;
    }
    return outcome;
  }
}

function keyId(keyspace: number, key: Uint8Array): string {
  return `${keyspace}:${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
}
