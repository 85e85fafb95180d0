/**
 * Wing & Gong linearizability search with Lowe's / Porcupine's memoization of
 * (set of linearized ops, model state), for the histories of one key.
 *
 * The history becomes a doubly linked list of call and return entries in time order (at equal
 * times calls come first, so touching intervals count as concurrent). The search linearizes a call
 * whose model step agrees with its answer, removes it with its return ("lift"), and starts again
 * from the head; reaching a return means the ops before it could not be ordered, so it backtracks.
 * Pending ops return at +infinity: when the scan reaches one of their returns, every completed op
 * has been linearized and the rest may simply never have taken effect.
 */
import type { OpRecord } from './history.js';
import { absent, describeState, type KeyFacts, keyFacts, step } from './register.js';

export type KeyVerdict =
  | { verdict: 'ok'; steps: number }
  | { verdict: 'violation'; steps: number; explanation: string }
  | { verdict: 'inconclusive'; steps: number; explanation: string };

interface Entries {
  op: Int32Array;
  isCall: Uint8Array;
  pending: Uint8Array;
  match: Int32Array;
  prev: Int32Array;
  next: Int32Array;
}

const headIndex = 0;

/** Builds the entry list; index 0 is a sentinel head. */
function buildEntries(ops: readonly OpRecord[]): Entries {
  const raw: { t: number; call: boolean; op: number }[] = [];
  for (const [i, r] of ops.entries()) {
    raw.push({ t: r.start, call: true, op: i });
    raw.push({ t: r.end, call: false, op: i });
  }
  raw.sort((a, b) => a.t - b.t || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
  const n = raw.length + 1;
  const e: Entries = {
    op: new Int32Array(n).fill(-1),
    isCall: new Uint8Array(n),
    pending: new Uint8Array(n),
    match: new Int32Array(n).fill(-1),
    prev: new Int32Array(n).fill(-1),
    next: new Int32Array(n).fill(-1),
  };
  const callAt = new Int32Array(ops.length);
  for (const [j, x] of raw.entries()) {
    const k = j + 1;
    e.op[k] = x.op;
    e.isCall[k] = x.call ? 1 : 0;
    e.pending[k] = Number.isFinite(ops[x.op]!.end) ? 0 : 1;
    e.prev[k] = k - 1;
    e.next[k - 1] = k;
    if (x.call) callAt[x.op] = k;
    else {
      e.match[k] = callAt[x.op]!;
      e.match[callAt[x.op]!] = k;
    }
  }
  return e;
}

function lift(e: Entries, call: number): void {
  const ret = e.match[call]!;
  e.next[e.prev[call]!] = e.next[call]!;
  if (e.next[call]! >= 0) e.prev[e.next[call]!] = e.prev[call]!;
  e.next[e.prev[ret]!] = e.next[ret]!;
  if (e.next[ret]! >= 0) e.prev[e.next[ret]!] = e.prev[ret]!;
}

function unlift(e: Entries, call: number): void {
  const ret = e.match[call]!;
  if (e.next[ret]! >= 0) e.prev[e.next[ret]!] = ret;
  e.next[e.prev[ret]!] = ret;
  if (e.next[call]! >= 0) e.prev[e.next[call]!] = call;
  e.next[e.prev[call]!] = call;
}

function cacheKey(bits: Uint32Array, state: number): string {
  let s = String(state);
  for (let i = 0; i < bits.length; i++) s += `,${bits[i]!}`;
  return s;
}

/** Checks one key's operations. `stepsMax` bounds the search; past it the answer is inconclusive. */
export function checkKey(allOps: readonly OpRecord[], stepsMax: number): KeyVerdict {
  // A read that never answered, or any op that certainly did nothing, constrains nothing.
  const ops = allOps.filter(
    (r) => r.result.type !== 'fail' && !(r.op.kind === 'get' && r.result.type === 'unknown'),
  );
  const facts = keyFacts(ops);
  if (typeof facts === 'string') return { verdict: 'violation', steps: 0, explanation: facts };
  return search(facts, stepsMax);
}

function search(facts: KeyFacts, stepsMax: number): KeyVerdict {
  const e = buildEntries(facts.ops);
  const bits = new Uint32Array(Math.ceil(facts.ops.length / 32) + 1);
  const cache = new Set<string>();
  const stack: { call: number; state: number }[] = [];
  let state = absent;
  let entry = e.next[headIndex]!;
  let steps = 0;
  let best = { depth: -1, blocked: -1, state: absent };
  while (entry >= 0) {
    if (++steps > stepsMax) {
      return { verdict: 'inconclusive', steps, explanation: `search passed ${stepsMax} steps` };
    }
    const opIdx = e.op[entry]!;
    if (!e.isCall[entry]) {
      if (e.pending[entry]) return { verdict: 'ok', steps };
      if (stack.length > best.depth) best = { depth: stack.length, blocked: opIdx, state };
      const top = stack.pop();
      if (top === undefined) break;
      const o = e.op[top.call]!;
      bits[o >>> 5]! &= ~(1 << (o & 31));
      state = top.state;
      unlift(e, top.call);
      entry = e.next[top.call]!;
      continue;
    }
    const next = step(facts, state, opIdx);
    if (next !== null) {
      bits[opIdx >>> 5]! |= 1 << (opIdx & 31);
      const key = cacheKey(bits, next);
      if (!cache.has(key)) {
        cache.add(key);
        stack.push({ call: entry, state });
        state = next;
        lift(e, entry);
        entry = e.next[headIndex]!;
        continue;
      }
      bits[opIdx >>> 5]! &= ~(1 << (opIdx & 31));
    }
    entry = e.next[entry]!;
  }
  if (entry < 0 && stack.length === facts.ops.length) return { verdict: 'ok', steps };
  if (e.next[headIndex]! < 0) return { verdict: 'ok', steps };
  const blocked = facts.ops[best.blocked];
  const explanation =
    `no linearization: at most ${best.depth} of ${facts.ops.length} ops order; then op #${blocked?.id} ` +
    `must take effect but cannot (register holds ${describeState(facts, best.state)})`;
  return { verdict: 'violation', steps, explanation };
}
