/**
 * The simulator's key-value state machine, built on the real rules of src/statemachine: the command
 * codec (v1), `decide()` (conditions at apply time, in log order) and the `DedupTable` (a retried
 * request id is answered with its first outcome). The engine is replaced by an in-memory map with
 * the reconciler's rule (a write is stored only if its seq is higher; deletes leave tombstones).
 * Planted bug 'retry-without-dedup' skips the de-dup table.
 */
import type { Entry } from '../../src/consensus/types.js';
import { keyspaceId } from '../../src/engine/types.js';
import { assert } from '../../src/lib/assert.js';
import { toHex } from '../../src/lib/bytes.js';
import { type Seq, tableId } from '../../src/lib/ids.js';
import { seqFromHex, seqToHex, ZERO_SEQ } from '../../src/sequencer/index.js';
import {
  type Command,
  type Condition,
  DedupTable,
  decide,
  decodeCommand as decodeStateCommand,
  encodeCommand as encodeStateCommand,
  type Outcome,
} from '../../src/statemachine/index.js';

/** A client write as the simulator describes it (encoded with the state machine's codec). */
export interface KvCommand {
  readonly client: number;
  readonly req: number;
  readonly op: 'put' | 'delete';
  readonly key: string;
  readonly value?: string;
  readonly ifMatch?: string;
  readonly ifNoneMatch?: boolean;
}

/** ok (with the write's seq), condition failed, delete of an absent key, or a forgotten retry. */
export type KvOutcome =
  | { type: 'ok'; seq: string }
  | { type: 'failed' }
  | { type: 'absent' }
  | { type: 'unknown' };

export interface ApplyResult {
  readonly command: KvCommand | null;
  readonly outcome: KvOutcome | null;
  /** The write changed the state (not a duplicate, not a failed condition). */
  readonly wrote: boolean;
  readonly duplicate: boolean;
}

interface Cell {
  value: string | null;
  seq: string;
}

export interface KvSnapshot {
  readonly index: number;
  readonly highestSeq: Seq;
  readonly cells: readonly (readonly [string, Cell])[];
  readonly dedup: readonly { key: Uint8Array; value: Uint8Array }[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const table = tableId(1);
const keyspace = keyspaceId(1);

export function encodeCommand(c: KvCommand): Uint8Array {
  const condition: Condition = c.ifNoneMatch
    ? { type: 'ifNoneMatch' }
    : c.ifMatch !== undefined
      ? { type: 'ifMatch', seq: seqFromHex(c.ifMatch) }
      : { type: 'none' };
  const base = {
    request: { client: BigInt(c.client), number: c.req },
    table,
    engine: 'btree' as const,
    keyspace,
    key: encoder.encode(c.key),
    condition,
  };
  const cmd: Command =
    c.op === 'put'
      ? { type: 'put', ...base, value: encoder.encode(c.value ?? '') }
      : { type: 'delete', ...base };
  return encodeStateCommand(cmd);
}

function describe(cmd: Command): KvCommand | null {
  if (cmd.type !== 'put' && cmd.type !== 'delete') return null;
  const base = { client: Number(cmd.request.client), req: cmd.request.number, key: decoder.decode(cmd.key) };
  return cmd.type === 'put'
    ? { ...base, op: 'put', value: decoder.decode(cmd.value) }
    : { ...base, op: 'delete' };
}

function toKvOutcome(o: Outcome): KvOutcome {
  if (o.ok) return { type: 'ok', seq: seqToHex(o.seq) };
  if (o.error === 'CONDITION_FAILED') return { type: 'failed' };
  if (o.error === 'KEY_NOT_FOUND') return { type: 'absent' };
  return { type: 'unknown' };
}

export class KvStateMachine {
  private cells = new Map<string, Cell>();
  private dedup = new DedupTable();
  appliedIndex = 0;
  highestSeq: Seq = ZERO_SEQ;

  constructor(private readonly dedupDisabled: boolean) {}

  get(key: string): { value: string; seq: string } | undefined {
    const c = this.cells.get(key);
    return c && c.value !== null ? { value: c.value, seq: c.seq } : undefined;
  }

  /** The raw cell (tombstones included), for invariant checks. */
  cell(key: string): { value: string | null; seq: string } | undefined {
    return this.cells.get(key);
  }

  apply(entry: Entry): ApplyResult {
    assert(
      entry.index === this.appliedIndex + 1,
      `apply out of order: ${entry.index} after ${this.appliedIndex}`,
    );
    this.appliedIndex = entry.index;
    const seq = seqToHex(entry.seq);
    if (seq > seqToHex(this.highestSeq)) this.highestSeq = entry.seq;
    if (entry.kind !== 'command') return { command: null, outcome: null, wrote: false, duplicate: false };
    const cmd = decodeStateCommand(entry.data);
    const described = describe(cmd);
    const seen = this.dedupDisabled ? undefined : this.dedup.lookup(cmd.request);
    if (seen !== undefined) {
      return { command: described, outcome: toKvOutcome(seen), wrote: false, duplicate: true };
    }
    const key = described?.key ?? '';
    const cur = this.cells.get(key);
    const record = cur && {
      value: encoder.encode(cur.value ?? ''),
      seq: seqFromHex(cur.seq),
      tombstone: cur.value === null,
    };
    const d = decide(cmd, record, entry.seq);
    const w = d.write;
    // The reconciler: a write is stored only above the stored seq (never otherwise with sane seqs).
    if (w !== undefined && (cur === undefined || seq > cur.seq)) {
      this.cells.set(key, { value: w.type === 'put' ? decoder.decode(w.value) : null, seq });
    }
    if (!this.dedup.lookup(cmd.request)) this.dedup.record(cmd.request, d.outcome, entry.index, 'btree');
    return { command: described, outcome: toKvOutcome(d.outcome), wrote: w !== undefined, duplicate: false };
  }

  snapshot(): KvSnapshot {
    return {
      index: this.appliedIndex,
      highestSeq: this.highestSeq,
      cells: [...this.cells].map(([k, c]) => [k, { ...c }] as const),
      dedup: this.dedup.toRecords(),
    };
  }

  restore(s: KvSnapshot): void {
    this.appliedIndex = s.index;
    this.highestSeq = s.highestSeq;
    this.cells = new Map(s.cells.map(([k, c]) => [k, { ...c }]));
    this.dedup = new DedupTable();
    this.dedup.load('btree', s.dedup);
  }

  /** A canonical text of the whole state (cells with tombstones, de-dup records) for equality checks. */
  digest(): string {
    const cells = [...this.cells].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const dedup = this.dedup
      .toRecords()
      .map((r) => `${toHex(r.key)}=${toHex(r.value)}`)
      .sort();
    return JSON.stringify([cells, dedup]);
  }
}
