/**
 * Client histories for the linearizability checker: what a client invoked, when, and what it
 * learned. Shared by the deterministic simulator and the multi-process end-to-end tests.
 *
 * Times are numbers from one monotonic clock (simulated ms, or performance.now() in a test runner
 * that drives every client). An operation that never completes, or completes with `unknown`
 * (timeout, OUTCOME_UNKNOWN, crash of the client), is pending until +infinity: it may or may not
 * have taken effect, at any point after its invocation.
 *
 * Values written to one key must be unique (e.g. `c3-17`): the checker identifies a write by its value.
 */

/** A client operation on one key. `seq` strings are the 32-hex ETags of the API. */
export type Operation =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  | { kind: 'delete'; key: string }
  /** Conditional put: `ifMatch` = the seq that must be current; `ifNoneMatch` = key must be absent. */
  | { kind: 'putIf'; key: string; value: string; ifMatch?: string; ifNoneMatch?: boolean }
  /** Conditional delete: applies only if the current seq is `ifMatch`. */
  | { kind: 'deleteIf'; key: string; ifMatch: string };

/**
 * What the client learned.
 * - `ok`: the write applied (put/putIf: with its seq; delete/deleteIf: the key existed).
 * - `value` / `absent`: a get's answer. `absent` is also a delete's KEY_NOT_FOUND.
 * - `failed`: a condition did not hold (412); nothing was written.
 * - `fail`: the operation certainly had no effect (refused before it was proposed, e.g. NOT_LEADER);
 *   the checker drops it.
 * - `unknown`: it may or may not have taken effect (timeout, OUTCOME_UNKNOWN).
 */
export type Result =
  | { type: 'ok'; seq?: string }
  | { type: 'value'; value: string; seq?: string }
  | { type: 'absent' }
  | { type: 'failed' }
  | { type: 'fail' }
  | { type: 'unknown' };

export type HistoryEvent =
  | { type: 'invoke'; id: number | string; time: number; client?: number | string; op: Operation }
  | { type: 'complete'; id: number | string; time: number; result: Result };

/** One operation with its interval, as the checker sees it. `end` is Infinity when pending. */
export interface OpRecord {
  readonly id: number | string;
  readonly client: number | string | undefined;
  readonly op: Operation;
  readonly start: number;
  readonly end: number;
  readonly result: Result;
}

/** Records a history as clients run. `invoke` returns the id to pass to `complete`. */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];
  private nextId = 0;
  private readonly open = new Set<number>();

  invoke(op: Operation, time: number, client?: number | string): number {
    const id = this.nextId++;
    this.open.add(id);
    this.events.push(
      client === undefined ? { type: 'invoke', id, time, op } : { type: 'invoke', id, time, client, op },
    );
    return id;
  }

  complete(id: number, result: Result, time: number): void {
    if (!this.open.delete(id)) throw new Error(`complete of an unknown or finished operation ${id}`);
    this.events.push({ type: 'complete', id, time, result });
  }

  /** Operations invoked and not completed (they are treated as `unknown`). */
  pendingCount(): number {
    return this.open.size;
  }
}

/** Pairs invokes with completions. Throws on a malformed history (a bug of the recorder). */
export function toRecords(events: readonly HistoryEvent[]): OpRecord[] {
  const open = new Map<
    number | string,
    { time: number; client: number | string | undefined; op: Operation }
  >();
  const out: OpRecord[] = [];
  for (const e of events) {
    if (e.type === 'invoke') {
      if (open.has(e.id)) throw new Error(`operation ${e.id} invoked twice`);
      open.set(e.id, { time: e.time, client: e.client, op: e.op });
      continue;
    }
    const inv = open.get(e.id);
    if (inv === undefined) throw new Error(`operation ${e.id} completed without an invoke`);
    open.delete(e.id);
    if (e.time < inv.time) throw new Error(`operation ${e.id} completes before it starts`);
    const end = e.result.type === 'unknown' ? Number.POSITIVE_INFINITY : e.time;
    out.push({ id: e.id, client: inv.client, op: inv.op, start: inv.time, end, result: e.result });
  }
  for (const [id, inv] of open) {
    out.push({
      id,
      client: inv.client,
      op: inv.op,
      start: inv.time,
      end: Number.POSITIVE_INFINITY,
      result: { type: 'unknown' },
    });
  }
  return out;
}

export function describeOp(r: OpRecord): string {
  const o = r.op;
  const args =
    o.kind === 'put'
      ? `${o.key}=${o.value}`
      : o.kind === 'putIf'
        ? `${o.key}=${o.value} ${o.ifNoneMatch ? 'if-none-match' : `if-match ${o.ifMatch ?? '?'}`}`
        : o.kind === 'deleteIf'
          ? `${o.key} if-match ${o.ifMatch}`
          : o.key;
  const res = r.result;
  const out =
    res.type === 'value'
      ? `value ${res.value}${res.seq ? ` @${res.seq}` : ''}`
      : res.type === 'ok' && res.seq
        ? `ok @${res.seq}`
        : res.type;
  const end = Number.isFinite(r.end) ? String(r.end) : 'inf';
  return `#${r.id}${r.client === undefined ? '' : ` c${r.client}`} [${r.start}, ${end}] ${o.kind}(${args}) -> ${out}`;
}
