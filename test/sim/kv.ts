/**
 * The simulator's key-value state machine: the reconciler (highest seq wins, tombstones), conditions
 * decided at apply time in log order, and a de-duplication table of request ids per client that
 * answers a retry with its first outcome. Planted bug 'retry-without-dedup' skips the table.
 *
 * Kept behind this small interface so src/statemachine can replace it when it lands.
 */
import type { Entry } from '../../src/consensus/types.js';
import { assert } from '../../src/lib/assert.js';
import type { LogIndex, Seq } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { seqToHex, ZERO_SEQ } from '../../src/sequencer/index.js';

/** A client write as it travels in a log entry (JSON in the simulator; version 1). */
export interface KvCommand {
  readonly v: 1;
  readonly client: number;
  readonly req: number;
  readonly op: 'put' | 'delete';
  readonly key: string;
  readonly value?: string;
  readonly ifMatch?: string;
  readonly ifNoneMatch?: boolean;
}

/** ok (with the write's seq), condition failed, or delete of an absent key. */
export type KvOutcome = { type: 'ok'; seq: string } | { type: 'failed' } | { type: 'absent' };

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
  readonly dedup: readonly (readonly [number, readonly (readonly [number, KvOutcome])[]])[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const c = JSON.parse(decoder.decode(data)) as KvCommand;
  assert(c.v === 1, `unknown command version ${String(c.v)}`);
  return c;
}

export class KvStateMachine {
  private cells = new Map<string, Cell>();
  private dedup = new Map<number, Map<number, KvOutcome>>();
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
    if (seqToHex(entry.seq) > seqToHex(this.highestSeq)) this.highestSeq = entry.seq;
    if (entry.kind !== 'command') return { command: null, outcome: null, wrote: false, duplicate: false };
    const cmd = decodeCommand(entry.data);
    const seen = this.dedupDisabled ? undefined : this.dedup.get(cmd.client)?.get(cmd.req);
    if (seen !== undefined) return { command: cmd, outcome: seen, wrote: false, duplicate: true };
    const outcome = this.decide(cmd, seqToHex(entry.seq));
    this.remember(cmd, outcome);
    return { command: cmd, outcome, wrote: outcome.type === 'ok', duplicate: false };
  }

  private decide(cmd: KvCommand, seq: string): KvOutcome {
    const cur = this.cells.get(cmd.key);
    const present = cur !== undefined && cur.value !== null;
    if (cmd.ifNoneMatch && present) return { type: 'failed' };
    if (cmd.ifMatch !== undefined && (!present || cur.seq !== cmd.ifMatch)) return { type: 'failed' };
    if (cmd.op === 'delete' && !present) return { type: 'absent' };
    // Highest seq wins: a write below the stored seq changes nothing (never happens with sane seqs).
    if (cur === undefined || seq > cur.seq) {
      this.cells.set(cmd.key, { value: cmd.op === 'put' ? (cmd.value ?? '') : null, seq });
    }
    return { type: 'ok', seq };
  }

  private remember(cmd: KvCommand, outcome: KvOutcome): void {
    let m = this.dedup.get(cmd.client);
    if (m === undefined) {
      m = new Map();
      this.dedup.set(cmd.client, m);
    }
    m.set(cmd.req, outcome);
    if (m.size > limits.requestIdsPerClientMax) {
      const oldest = Math.min(...m.keys());
      m.delete(oldest);
    }
  }

  snapshot(): KvSnapshot {
    return {
      index: this.appliedIndex,
      highestSeq: this.highestSeq,
      cells: [...this.cells].map(([k, c]) => [k, { ...c }] as const),
      dedup: [...this.dedup].map(([c, m]) => [c, [...m]] as const),
    };
  }

  restore(s: KvSnapshot): void {
    this.appliedIndex = s.index;
    this.highestSeq = s.highestSeq;
    this.cells = new Map(s.cells.map(([k, c]) => [k, { ...c }]));
    this.dedup = new Map(s.dedup.map(([c, m]) => [c, new Map(m)]));
  }

  /** A canonical text of the whole state (cells with tombstones, dedup table) for equality checks. */
  digest(): string {
    const cells = [...this.cells].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const dedup = [...this.dedup]
      .sort((a, b) => a[0] - b[0])
      .map(([c, m]) => [c, [...m].sort((a, b) => a[0] - b[0])] as const);
    return JSON.stringify([cells, dedup]);
  }

  static indexOf(s: KvSnapshot): LogIndex {
    return s.index as LogIndex;
  }
}
