/**
 * The rules of the key-value state machine, evaluated at apply time in log order. Pure.
 * - put: If-None-Match fails if the key is present; If-Match(seq) fails unless the key is present
 *   with exactly that seq. Otherwise the put is written with the entry's seq.
 * - delete: conditions as for put; then a delete of an absent key (never written, or a tombstone)
 *   answers KEY_NOT_FOUND and writes nothing. Otherwise a tombstone is written with the entry's seq.
 * - noop, dropTable: ok (dropTable's effects are applied by applyCommitted).
 */
import type { EngineRecord, EngineWrite } from '../engine/types.js';
import type { Seq } from '../lib/ids.js';
import type { Command } from './command.js';

export type FailureCode = 'CONDITION_FAILED' | 'KEY_NOT_FOUND' | 'TABLE_NOT_FOUND' | 'OUTCOME_UNKNOWN';

/**
 * What the client is answered. `currentSeq` is the key's seq when a condition failed on a present
 * key. OUTCOME_UNKNOWN: a retry whose first outcome was forgotten (dedup table bound); never re-run.
 */
export type Outcome =
  | { readonly ok: true; readonly seq: Seq }
  | { readonly ok: false; readonly error: FailureCode; readonly currentSeq?: Seq };

export interface Decision {
  readonly write?: EngineWrite;
  readonly outcome: Outcome;
}

function seqEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decides one command against the key's current record (undefined: never written), at `seq`. */
export function decide(command: Command, current: EngineRecord | undefined, seq: Seq): Decision {
  if (command.type === 'noop' || command.type === 'dropTable') return { outcome: { ok: true, seq } };
  const present = current !== undefined && !current.tombstone;
  const failed = (): Decision => ({
    outcome: present
      ? { ok: false, error: 'CONDITION_FAILED', currentSeq: current.seq }
      : { ok: false, error: 'CONDITION_FAILED' },
  });
  const cond = command.condition;
  if (cond.type === 'ifNoneMatch' && present) return failed();
  if (cond.type === 'ifMatch' && (!present || !seqEqual(current.seq, cond.seq))) return failed();
  const { keyspace, key } = command;
  if (command.type === 'delete') {
    if (!present) return { outcome: { ok: false, error: 'KEY_NOT_FOUND' } };
    return { write: { type: 'delete', keyspace, key, seq }, outcome: { ok: true, seq } };
  }
  return { write: { type: 'put', keyspace, key, value: command.value, seq }, outcome: { ok: true, seq } };
}
