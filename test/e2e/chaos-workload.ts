/**
 * A concurrent client workload for chaos tests: several TesseraClients doing put / get / delete /
 * conditional put on a few hot keys, recording every invoke and completion (performance.now()) in
 * a HistoryRecorder for the linearizability checker (test/sim/checker). Write errors other than a
 * definite refusal (CONDITION_FAILED, KEY_NOT_FOUND) are indeterminate; failed reads are dropped.
 */
import { performance } from 'node:perf_hooks';
import { TesseraClient } from '../../src/client/client.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { Prng } from '../../src/lib/prng.js';
import {
  checkHistory,
  formatReport,
  HistoryRecorder,
  type OpRecord,
  type Operation,
  type Result,
  toRecords,
} from '../sim/checker/index.js';

export interface WorkloadOptions {
  url: string;
  token: string;
  tables: string[];
  keysPerTable: number;
  clients: number;
  /** Pause between two operations of one client (ms, uniform in [0, thinkMsMax]). */
  thinkMsMax: number;
  /** Per-operation deadline of the client (retries included). */
  deadlineMs: number;
  seed: number;
}

export interface WorkloadCounts {
  ok: number;
  failed: number;
  unknown: number;
  readFailures: number;
  codes: Record<string, number>;
  /** The first few errors other than CONDITION_FAILED / KEY_NOT_FOUND: `op: CODE: message`. */
  samples: string[];
}

const text = (b: Uint8Array): string => Buffer.from(b).toString();

export class Workload {
  readonly history = new HistoryRecorder();
  readonly counts: WorkloadCounts = { ok: 0, failed: 0, unknown: 0, readFailures: 0, codes: {}, samples: [] };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly clients: TesseraClient[] = [];
  /** Last seq each client saw per history key (for If-Match). */
  private readonly seen: Map<string, string>[] = [];

  constructor(readonly o: WorkloadOptions) {
    for (let i = 0; i < o.clients; i++) {
      this.clients.push(
        new TesseraClient({ url: o.url, token: o.token, deadlineMs: o.deadlineMs, socketsMax: 4 }),
      );
      this.seen.push(new Map());
    }
  }

  keys(): { table: string; key: string; hk: string }[] {
    const out: { table: string; key: string; hk: string }[] = [];
    for (const table of this.o.tables)
      for (let k = 0; k < this.o.keysPerTable; k++) out.push({ table, key: `k${k}`, hk: `${table}/k${k}` });
    return out;
  }

  start(): void {
    this.running = true;
    this.loops = this.clients.map((_, i) => this.loop(i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  private async loop(i: number): Promise<void> {
    const rng = new Prng(this.o.seed * 1000 + i);
    const keys = this.keys();
    let n = 0;
    while (this.running) {
      const k = keys[rng.int(0, keys.length - 1)];
      if (k === undefined) break;
      await this.one(i, k.table, k.key, k.hk, rng.int(0, 99), `c${i}-${++n}`);
      await new Promise((r) => setTimeout(r, rng.int(0, this.o.thinkMsMax)));
    }
  }

  private op(i: number, hk: string, dice: number, value: string): Operation {
    const seq = this.seen[i]?.get(hk);
    if (dice < 30) return { kind: 'put', key: hk, value };
    if (dice < 65) return { kind: 'get', key: hk };
    if (dice < 75) return { kind: 'delete', key: hk };
    if (dice < 92 && seq !== undefined) return { kind: 'putIf', key: hk, value, ifMatch: seq };
    return { kind: 'putIf', key: hk, value, ifNoneMatch: true };
  }

  /** Runs one operation through client i and records it (also used for the final reads). */
  async one(i: number, table: string, key: string, hk: string, dice: number, value: string): Promise<Result> {
    const c = this.clients[i];
    if (c === undefined) throw new Error(`no client ${i}`);
    const op = this.op(i, hk, dice, value);
    const id = this.history.invoke(op, performance.now(), i);
    const r = await this.run(c, table, key, op);
    this.history.complete(id, r, performance.now());
    if ((r.type === 'ok' || r.type === 'value') && r.seq !== undefined) this.seen[i]?.set(hk, r.seq);
    if (r.type === 'absent') this.seen[i]?.delete(hk);
    return r;
  }

  private async run(c: TesseraClient, table: string, key: string, op: Operation): Promise<Result> {
    try {
      switch (op.kind) {
        case 'get': {
          const it = await c.get(table, key);
          return it === null ? { type: 'absent' } : { type: 'value', value: text(it.value), seq: it.seq };
        }
        case 'put':
          return this.ok((await c.put(table, key, op.value)).seq);
        case 'putIf': {
          const opts = op.ifMatch !== undefined ? { ifMatch: op.ifMatch } : { ifNoneMatch: true };
          return this.ok((await c.put(table, key, op.value, opts)).seq);
        }
        case 'delete':
          await c.delete(table, key);
          return this.ok(undefined);
        case 'deleteIf':
          await c.delete(table, key, { ifMatch: op.ifMatch });
          return this.ok(undefined);
      }
    } catch (e) {
      return this.failure(op, e);
    }
  }

  private ok(seq: string | undefined): Result {
    this.counts.ok++;
    return seq === undefined ? { type: 'ok' } : { type: 'ok', seq };
  }

  private failure(op: Operation, e: unknown): Result {
    if (!isTesseraError(e)) throw e;
    this.counts.codes[e.code] = (this.counts.codes[e.code] ?? 0) + 1;
    const expected = e.code === 'CONDITION_FAILED' || e.code === 'KEY_NOT_FOUND';
    if (!expected && this.counts.samples.length < 8)
      this.counts.samples.push(`${op.kind}: ${e.code}: ${e.message}`);
    if (op.kind === 'get') {
      this.counts.readFailures++;
      return { type: 'fail' };
    }
    if (e.code === 'CONDITION_FAILED') {
      this.counts.failed++;
      return { type: 'failed' };
    }
    if (e.code === 'KEY_NOT_FOUND' && op.kind === 'delete') {
      this.counts.failed++;
      return { type: 'absent' };
    }
    this.counts.unknown++;
    return { type: 'unknown' };
  }

  /** One final get per key (after heal), recorded in the history; retried until it answers. */
  async finalReads(timeoutMs: number): Promise<Map<string, Result>> {
    const out = new Map<string, Result>();
    for (const k of this.keys()) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const r = await this.one(0, k.table, k.key, k.hk, 50, 'final');
        if (r.type !== 'fail') {
          out.set(k.hk, r);
          break;
        }
        if (Date.now() > end) throw new Error(`final read of ${k.hk} kept failing`);
      }
    }
    return out;
  }
}

const isWrite = (op: Operation): boolean => op.kind !== 'get';

/**
 * Acknowledged writes that the final state does not account for: for each key, the final state
 * was produced by some write W (a put of that value, or a delete when absent) that may have taken
 * effect (ok or unknown); an acked write A is lost when every such W finished before A started.
 */
export function lostAckedWrites(records: readonly OpRecord[], finals: Map<string, Result>): string[] {
  const lost: string[] = [];
  for (const [hk, fin] of finals) {
    const ops = records.filter((r) => r.op.key === hk && isWrite(r.op));
    const effective = (r: OpRecord): boolean => r.result.type === 'ok' || r.result.type === 'unknown';
    const writers = ops.filter((r) => {
      if (!effective(r)) return false;
      if (fin.type === 'absent') return r.op.kind === 'delete' || r.op.kind === 'deleteIf';
      return fin.type === 'value' && 'value' in r.op && r.op.value === fin.value;
    });
    if (fin.type === 'value' && writers.length === 0)
      lost.push(`${hk}: final value ${fin.value} written by no one`);
    for (const a of ops.filter((r) => r.result.type === 'ok')) {
      if (writers.includes(a)) continue;
      if (fin.type === 'absent' && writers.length === 0)
        lost.push(`${hk}: acked ${a.op.kind} ${String(a.id)} lost (absent)`);
      else if (writers.length > 0 && writers.every((w) => w.end < a.start))
        lost.push(`${hk}: acked ${a.op.kind} #${String(a.id)} superseded by an older write`);
    }
  }
  return lost;
}

export interface HistoryVerdict {
  verdict: string;
  report: string;
  lost: string[];
  ops: number;
}

export function judge(w: Workload, finals: Map<string, Result>): HistoryVerdict {
  const report = checkHistory(w.history.events, { stepsPerKeyMax: 3_000_000 });
  const lost = lostAckedWrites(toRecords(w.history.events), finals);
  return { verdict: report.verdict, report: formatReport(report), lost, ops: report.ops };
}
