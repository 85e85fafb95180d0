/**
 * Per-key linearizability checker for Tessera's single-key operations (see docs/simulator.md,
 * "Linearizability checker"). Usage:
 *
 *   const h = new HistoryRecorder();
 *   const id = h.invoke({ kind: 'put', key: 'k', value: 'c1-1' }, now());
 *   h.complete(id, { type: 'ok', seq }, now());
 *   const report = checkHistory(h.events);
 *   if (report.verdict !== 'ok') console.log(formatReport(report));
 */
import { describeOp, type HistoryEvent, type OpRecord, toRecords } from './history.js';
import { checkKey, type KeyVerdict } from './wgl.js';

export * from './history.js';
export type { KeyVerdict } from './wgl.js';

export interface CheckOptions {
  /** Search steps allowed per key before the key is declared inconclusive. */
  stepsPerKeyMax?: number;
}

export interface KeyReport {
  key: string;
  ops: number;
  result: KeyVerdict;
  /** The key's operations in invocation order (only for keys that are not ok). */
  history?: string[];
}

export interface CheckReport {
  /** `violation` if any key is not linearizable; else `inconclusive` if any search hit its bound. */
  verdict: 'ok' | 'violation' | 'inconclusive';
  ops: number;
  keys: KeyReport[];
}

export const stepsPerKeyMaxDefault = 2_000_000;

export function checkHistory(events: readonly HistoryEvent[], options: CheckOptions = {}): CheckReport {
  return checkRecords(toRecords(events), options);
}

export function checkRecords(records: readonly OpRecord[], options: CheckOptions = {}): CheckReport {
  const stepsMax = options.stepsPerKeyMax ?? stepsPerKeyMaxDefault;
  const byKey = new Map<string, OpRecord[]>();
  for (const r of records) {
    const list = byKey.get(r.op.key);
    if (list) list.push(r);
    else byKey.set(r.op.key, [r]);
  }
  const keys: KeyReport[] = [];
  let verdict: CheckReport['verdict'] = 'ok';
  for (const [key, ops] of [...byKey].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const result = checkKey(ops, stepsMax);
    const report: KeyReport = { key, ops: ops.length, result };
    if (result.verdict !== 'ok') {
      report.history = [...ops].sort((a, b) => a.start - b.start).map(describeOp);
      if (result.verdict === 'violation') verdict = 'violation';
      else if (verdict === 'ok') verdict = 'inconclusive';
    }
    keys.push(report);
  }
  return { verdict, ops: records.length, keys };
}

/** A readable report: the verdict, then each bad key with its explanation and its history. */
export function formatReport(report: CheckReport, opsPerKeyMax = 60): string {
  const lines = [`linearizability: ${report.verdict} (${report.ops} ops, ${report.keys.length} keys)`];
  for (const k of report.keys) {
    if (k.result.verdict === 'ok') continue;
    lines.push(`key ${k.key}: ${k.result.verdict}: ${k.result.explanation}`);
    const h = k.history ?? [];
    const shown = h.length > opsPerKeyMax ? h.slice(h.length - opsPerKeyMax) : h;
    if (shown.length < h.length) lines.push(`  ... ${h.length - shown.length} earlier ops`);
    for (const line of shown) lines.push(`  ${line}`);
  }
  return lines.join('\n');
}
