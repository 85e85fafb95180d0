/** Helpers for state machine tests: entries, commands, a sequential reference model. */
import type { Entry } from '../../src/consensus/types.js';
import type { EngineKind, EngineRecord, KeyspaceId, MetaRecord } from '../../src/engine/types.js';
import type { LogIndex, Seq, TableId } from '../../src/lib/ids.js';
import { logIndex, term } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import { type Command, encodeCommand, type RequestId } from '../../src/statemachine/command.js';
import { decide, type Outcome } from '../../src/statemachine/decide.js';
import { DedupTable, type MetaEdit } from '../../src/statemachine/dedup.js';
import { DroppedTables } from '../../src/statemachine/tables.js';

export const seqAt = (index: number): Seq => makeSeq(BigInt(1_000 + index), 0, 1);

export function entry(index: number, command: Command | 'noop'): Entry {
  return command === 'noop'
    ? { index: logIndex(index), term: term(1), kind: 'noop', seq: seqAt(index), data: new Uint8Array(0) }
    : {
        index: logIndex(index),
        term: term(1),
        kind: 'command',
        seq: seqAt(index),
        data: encodeCommand(command),
      };
}

export interface TableRef {
  readonly table: TableId;
  readonly engine: EngineKind;
  readonly keyspace: KeyspaceId;
}

export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Records a request's outcome and returns the edits that persist it (a batch of one entry). */
export function recordEdits(
  t: DedupTable,
  req: RequestId,
  outcome: Outcome,
  index: LogIndex,
  home: EngineKind,
): MetaEdit[] {
  t.record(req, outcome, index, home);
  return t.takeEdits();
}

/** Applies dedup meta edits to per-home maps (key in hex), as the engines would. */
export function persist(store: Map<string, Map<string, MetaRecord>>, edits: readonly MetaEdit[]): void {
  for (const e of edits) {
    const m = store.get(e.home) ?? new Map<string, MetaRecord>();
    store.set(e.home, m);
    if (e.write.value === undefined) m.delete(hex(e.write.key));
    else m.set(hex(e.write.key), { key: e.write.key, value: e.write.value });
  }
}

/** The rules applied one entry at a time over a Map: the reference for applyCommitted. */
export class Model {
  readonly cells = new Map<string, EngineRecord & { keyspace: number; key: Uint8Array }>();
  readonly dedup = new DedupTable();
  readonly dropped = new DroppedTables();

  apply(e: Entry, command: Command | undefined): { outcome?: Outcome; duplicate: boolean } {
    if (command === undefined) return { duplicate: false };
    const first = this.dedup.lookup(command.request);
    if (first !== undefined) return { outcome: first, duplicate: true };
    let outcome: Outcome;
    if (command.type === 'put' || command.type === 'delete') {
      if (this.dropped.isDropped(command.table, e.index)) outcome = { ok: false, error: 'TABLE_NOT_FOUND' };
      else {
        const id = `${command.keyspace}:${hex(command.key)}`;
        const d = decide(command, this.cells.get(id), e.seq);
        outcome = d.outcome;
        if (d.write) {
          const w = d.write;
          this.cells.set(id, {
            keyspace: w.keyspace,
            key: w.key,
            seq: w.seq,
            tombstone: w.type === 'delete',
            value: w.type === 'put' ? w.value : new Uint8Array(0),
          });
        }
      }
    } else {
      outcome = { ok: true, seq: e.seq };
      if (command.type === 'dropTable') {
        this.dropped.record(command.table, e.index as LogIndex);
        for (const [id, c] of this.cells)
          if (command.shards.some((s) => s.keyspace === c.keyspace)) this.cells.delete(id);
      }
    }
    this.dedup.record(command.request, outcome, e.index, 'btree');
    return { outcome, duplicate: false };
  }

  /** Cells of a keyspace in key order, tombstones included, as comparable rows. */
  rows(keyspace: number): string[] {
    return [...this.cells.values()]
      .filter((c) => c.keyspace === keyspace)
      .sort((a, b) => Buffer.compare(a.key, b.key))
      .map((c) => `${hex(c.key)} ${c.tombstone ? 'X' : hex(c.value)} ${hex(c.seq)}`);
  }
}
