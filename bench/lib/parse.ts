/**
 * Parsers for the output of the external load generators: the Go etcd loadgen (one JSON line,
 * `"version":1`, plus `progress ...` lines on stderr) and wrk with bench/wrk/*.lua (wrk's own text
 * summary, then one JSON line from the scripts' done() hook, `"tool":"wrk"`, `"version":1`).
 */

/** One measured run, whatever produced it. Latencies in milliseconds. */
export interface Measurement {
  system: 'etcd' | 'tessera';
  /** put, get, load, or a YCSB workload letter. */
  op: string;
  clients: number;
  ops: number;
  errors: number;
  elapsedS: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface Progress {
  elapsedS: number;
  ops: number;
  opsPerSec: number;
}

function num(o: Record<string, unknown>, field: string, where: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`${where}: field ${field} missing or not a number`);
  return v;
}

/** The last line of `text` that parses as a JSON object, or undefined. */
export function lastJsonLine(text: string): Record<string, unknown> | undefined {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    if (!line.startsWith('{')) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
}

const loadgenOutputVersion = 1;

export function parseLoadgenOutput(stdout: string, op: string): Measurement {
  const o = lastJsonLine(stdout);
  if (o === undefined) throw new Error('etcd loadgen: no JSON result line in its output');
  if (o.version !== loadgenOutputVersion)
    throw new Error(`etcd loadgen: unknown output version ${String(o.version)}`);
  const where = 'etcd loadgen';
  return {
    system: 'etcd',
    op,
    clients: num(o, 'clients', where),
    ops: num(o, 'ops', where),
    errors: num(o, 'errors', where),
    elapsedS: num(o, 'elapsed_s', where),
    opsPerSec: num(o, 'ops_per_sec', where),
    p50Ms: num(o, 'p50_ms', where),
    p99Ms: num(o, 'p99_ms', where),
  };
}

const progressRe = /^progress elapsed_s=(\d+(?:\.\d+)?) ops=(\d+) ops_per_sec=(\d+)$/;

/** A loadgen stderr progress line, or undefined for any other line. */
export function parseLoadgenProgress(line: string): Progress | undefined {
  const m = progressRe.exec(line.trim());
  if (m === null) return undefined;
  return { elapsedS: Number(m[1]), ops: Number(m[2]), opsPerSec: Number(m[3]) };
}

const wrkOutputVersion = 1;

/**
 * wrk's output with our done() hook. Errors are wrk's socket errors plus non-2xx statuses (a GET of
 * an absent key is a 404 and counts as an error: the read workloads load their key space first).
 */
export function parseWrkOutput(stdout: string, op: string, clients: number): Measurement {
  const o = lastJsonLine(stdout);
  if (o === undefined || o.tool !== 'wrk')
    throw new Error('wrk: no JSON result line (was the Lua script used?)');
  if (o.version !== wrkOutputVersion) throw new Error(`wrk: unknown output version ${String(o.version)}`);
  const where = 'wrk';
  const requests = num(o, 'requests', where);
  const errors = num(o, 'errors', where);
  const elapsedS = num(o, 'duration_us', where) / 1e6;
  return {
    system: 'tessera',
    op,
    clients,
    ops: requests - errors,
    errors,
    elapsedS,
    opsPerSec: elapsedS > 0 ? Math.round((requests - errors) / elapsedS) : 0,
    p50Ms: num(o, 'p50_us', where) / 1000,
    p99Ms: num(o, 'p99_us', where) / 1000,
  };
}

const units: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 };

/** wrk's "Requests/sec:" from its text summary (a cross-check of the JSON line). */
export function parseWrkRequestsPerSec(stdout: string): number | undefined {
  const m = /Requests\/sec:\s+([\d.]+)([kKMG]?)/.exec(stdout);
  if (m === null) return undefined;
  return Number(m[1]) * (units[m[2] ?? ''] ?? 1);
}
