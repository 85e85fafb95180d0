/**
 * The sequential specification of one key: a register holding a value and the seq of the write
 * that produced it, or nothing. The state is the index of the write that produced the current value
 * (-1 = absent), so it is a small integer the search can memoize on.
 */
import type { OpRecord } from './history.js';

export const absent = -1;

/** Facts about one key's writes, computed once before the search. */
export interface KeyFacts {
  readonly ops: readonly OpRecord[];
  /** The seq of each put's value when known (from its own answer or from a read of it). */
  readonly seqOfOp: readonly (string | undefined)[];
}

function writtenValue(r: OpRecord): string | undefined {
  return r.op.kind === 'put' || r.op.kind === 'putIf' ? r.op.value : undefined;
}

/**
 * Learns the seq of every write and checks that one value is always seen with one seq.
 * Returns an explanation string for a violation found already here.
 */
export function keyFacts(ops: readonly OpRecord[]): KeyFacts | string {
  const seqOfValue = new Map<string, string>();
  const writer = new Map<string, number>();
  const note = (value: string, seq: string | undefined, where: OpRecord): string | undefined => {
    if (seq === undefined) return undefined;
    const had = seqOfValue.get(value);
    if (had !== undefined && had !== seq) {
      return `value ${value} seen with two seqs ${had} and ${seq} (at op #${where.id})`;
    }
    seqOfValue.set(value, seq);
    return undefined;
  };
  for (const [i, r] of ops.entries()) {
    const v = writtenValue(r);
    if (v !== undefined) {
      if (writer.has(v))
        throw new Error(`history writes value ${v} twice to key ${r.op.key}; values must be unique`);
      writer.set(v, i);
      const bad = r.result.type === 'ok' ? note(v, r.result.seq, r) : undefined;
      if (bad) return bad;
    }
  }
  for (const r of ops) {
    if (r.op.kind !== 'get' || r.result.type !== 'value') continue;
    if (!writer.has(r.result.value))
      return `op #${r.id} read value ${r.result.value}, which was never written`;
    const bad = note(r.result.value, r.result.seq, r);
    if (bad) return bad;
  }
  const seqOfOp = ops.map((r) => {
    const v = writtenValue(r);
    return v === undefined ? undefined : seqOfValue.get(v);
  });
  return { ops, seqOfOp };
}

/**
 * Applies op `i` to `state`. Returns the new state, or null when the op cannot take effect here
 * with the answer it gave. A pending op that would change nothing also returns null (leaving it
 * out of the linearization is the same).
 */
export function step(facts: KeyFacts, state: number, i: number): number | null {
  const r = facts.ops[i]!;
  const op = r.op;
  const res = r.result;
  const pending = res.type === 'unknown';
  const curSeq = state === absent ? undefined : facts.seqOfOp[state];
  const seqAdvances = (): boolean => {
    const mine = facts.seqOfOp[i];
    return curSeq === undefined || mine === undefined || mine > curSeq;
  };
  switch (op.kind) {
    case 'get':
      if (res.type === 'absent') return state === absent ? state : null;
      if (res.type === 'value')
        return state !== absent && writtenValue(facts.ops[state]!) === res.value ? state : null;
      return null;
    case 'put':
      return seqAdvances() ? i : null;
    case 'putIf': {
      const cond = op.ifNoneMatch ? state === absent : curSeq !== undefined && curSeq === op.ifMatch;
      if (res.type === 'failed') return cond ? null : state;
      if (!cond) return null;
      return pending || res.type === 'ok' ? (seqAdvances() ? i : null) : null;
    }
    case 'delete':
      if (res.type === 'absent') return state === absent ? state : null;
      return state === absent ? null : absent;
    case 'deleteIf': {
      const cond = curSeq !== undefined && curSeq === op.ifMatch;
      if (res.type === 'failed' || res.type === 'absent') return cond ? null : state;
      return cond ? absent : null;
    }
  }
}

export function describeState(facts: KeyFacts, state: number): string {
  if (state === absent) return 'absent';
  const r = facts.ops[state]!;
  const seq = facts.seqOfOp[state];
  return `${writtenValue(r)}${seq ? ` @${seq}` : ''} (from op #${r.id})`;
}
