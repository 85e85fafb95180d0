/**
 * A simulated client of one group: one operation at a time on the group's hot keys (put, get,
 * delete, conditional put and delete), each write with a request id (client, number) that every
 * retry reuses. It follows leader hints, retries on errors and timeouts, and gives up at a deadline:
 * a write then ends `unknown` (it may or may not have applied), a read ends without an answer.
 * Every operation goes into the shared history for the linearizability checker.
 */
import type { NodeId } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';
import type { HistoryRecorder, Operation, Result } from './checker/index.js';
import type { ClientReply, ClientRequest } from './host.js';
import type { KvCommand } from './kv.js';

export interface ClientEnv {
  now(): number;
  schedule(delayMs: number, fn: () => void): void;
  send(client: number, node: NodeId, req: ClientRequest, onReply: (r: ClientReply) => void): void;
  trace(text: () => string): void;
  readonly history: HistoryRecorder;
  readonly prng: Prng;
  readonly members: readonly NodeId[];
  readonly keys: readonly string[];
  readonly attemptTimeoutMs: number;
  /** Share of operations followed by a long idle time (a sporadic client keeps stale leader hints). */
  readonly idleRate: number;
  readonly opDeadlineMs: number;
}

interface Current {
  readonly no: number;
  readonly op: Operation;
  readonly cmd: KvCommand | null;
  readonly historyId: number;
  readonly deadline: number;
  attempt: number;
}

export class SimClient {
  private hint: NodeId | 0 = 0;
  private opNo = 0;
  private reqNo = 0;
  private cur: Current | null = null;
  private readonly lastSeq = new Map<string, string>();
  private stopped = false;
  private finalKeys: string[] = [];
  private finalDeadline = 0;
  completed = 0;
  unknown = 0;
  finalReadsOk = 0;
  finalReadsFailed = 0;

  constructor(
    readonly id: number,
    private readonly env: ClientEnv,
  ) {}

  start(): void {
    this.env.schedule(this.env.prng.int(0, 50), () => this.next());
  }

  /** The fault phase is over: finish the current op, then read every key once (must succeed). */
  stopAndVerify(deadline: number): void {
    this.stopped = true;
    this.finalKeys = [...this.env.keys];
    this.finalDeadline = deadline;
    if (this.cur === null) this.next();
  }

  get idle(): boolean {
    return this.cur === null && (!this.stopped || this.finalKeys.length === 0);
  }

  private next(): void {
    if (this.cur !== null) return;
    if (this.stopped) {
      const key = this.finalKeys.shift();
      if (key !== undefined) this.begin({ kind: 'get', key }, this.finalDeadline);
      return;
    }
    this.begin(this.chooseOp(), this.env.now() + this.env.opDeadlineMs);
  }

  private chooseOp(): Operation {
    const p = this.env.prng;
    const key = p.pick(this.env.keys);
    const value = `c${this.id}-${this.opNo + 1}`;
    const x = p.next();
    if (x < 0.3) return { kind: 'put', key, value };
    if (x < 0.6) return { kind: 'get', key };
    if (x < 0.72) return { kind: 'delete', key };
    const seq = this.lastSeq.get(key);
    if (x < 0.82 || seq === undefined) return { kind: 'putIf', key, value, ifNoneMatch: true };
    if (x < 0.93) return { kind: 'putIf', key, value, ifMatch: seq };
    return { kind: 'deleteIf', key, ifMatch: seq };
  }

  private begin(op: Operation, deadline: number): void {
    const no = ++this.opNo;
    let cmd: KvCommand | null = null;
    if (op.kind !== 'get') {
      const req = ++this.reqNo;
      const base = { client: this.id, req, key: op.key };
      if (op.kind === 'put') cmd = { ...base, op: 'put', value: op.value };
      else if (op.kind === 'delete') cmd = { ...base, op: 'delete' };
      else if (op.kind === 'putIf') {
        cmd = op.ifNoneMatch
          ? { ...base, op: 'put', value: op.value, ifNoneMatch: true }
          : { ...base, op: 'put', value: op.value, ifMatch: op.ifMatch ?? '' };
      } else cmd = { ...base, op: 'delete', ifMatch: op.ifMatch };
    }
    const historyId = this.env.history.invoke(op, this.env.now(), this.id);
    this.cur = { no, op, cmd, historyId, deadline, attempt: 0 };
    this.attempt();
  }

  private attempt(): void {
    const c = this.cur;
    if (c === null) return;
    if (this.env.now() >= c.deadline) {
      this.finish({ type: 'unknown' });
      return;
    }
    const attempt = ++c.attempt;
    const target = this.hint !== 0 ? this.hint : this.env.prng.pick(this.env.members);
    const req: ClientRequest = c.cmd ? { kind: 'write', cmd: c.cmd } : { kind: 'read', key: c.op.key };
    this.env.send(this.id, target, req, (r) => this.onReply(c.no, r));
    this.env.schedule(this.env.attemptTimeoutMs, () => {
      if (this.cur?.no !== c.no || c.attempt !== attempt) return;
      this.hint = this.env.prng.pick(this.env.members);
      this.attempt();
    });
  }

  private onReply(no: number, r: ClientReply): void {
    const c = this.cur;
    if (c === null || c.no !== no) return;
    if (r.type === 'error') {
      c.attempt++; // cancels the pending timeout
      this.hint =
        r.leader !== 0 && r.leader !== this.hint
          ? (r.leader as NodeId)
          : this.env.prng.pick(this.env.members);
      this.env.schedule(this.env.prng.int(5, 40), () => {
        if (this.cur === c) this.attempt();
      });
      return;
    }
    this.finish(this.toResult(c.op, r));
  }

  private toResult(op: Operation, r: Exclude<ClientReply, { type: 'error' }>): Result {
    if (r.type === 'value') {
      this.lastSeq.set(op.key, r.seq);
      return { type: 'value', value: r.value, seq: r.seq };
    }
    if (r.type === 'absent') return { type: 'absent' };
    const o = r.outcome;
    if (o.type === 'ok') {
      if (op.kind === 'put' || op.kind === 'putIf') {
        this.lastSeq.set(op.key, o.seq);
        return { type: 'ok', seq: o.seq };
      }
      return { type: 'ok' };
    }
    // A retry whose first outcome the de-dup table forgot: OUTCOME_UNKNOWN.
    if (o.type === 'unknown') return { type: 'unknown' };
    return o.type === 'absent' && op.kind !== 'deleteIf' ? { type: 'absent' } : { type: 'failed' };
  }

  private finish(result: Result): void {
    const c = this.cur;
    if (c === null) return;
    this.cur = null;
    this.env.history.complete(c.historyId, result, this.env.now());
    this.completed++;
    if (result.type === 'unknown') this.unknown++;
    if (this.stopped && c.op.kind === 'get' && this.isFinal(c)) {
      if (result.type === 'unknown') this.finalReadsFailed++;
      else this.finalReadsOk++;
    }
    this.env.trace(() => `c${this.id} ${c.op.kind} ${c.op.key} -> ${result.type}`);
    // Mostly back to back; now and then idle for a while (its leader hint may go stale meanwhile).
    const think = this.env.prng.chance(this.env.idleRate)
      ? this.env.prng.int(100, 1500)
      : this.env.prng.int(0, 20);
    this.env.schedule(think, () => this.next());
  }

  private isFinal(c: Current): boolean {
    return c.deadline === this.finalDeadline;
  }
}
