/**
 * The dev cluster's process supervisor: starts each member as a real child process with the same
 * entry as this one (process.execPath + execArgv + the main script, so both `node dist/cli/main.js`
 * and `tsx src/cli/main.ts` work), sends its output to DIR/logs/<role>-<n>.log, restarts it after a
 * short back-off when it dies, and stops everything with SIGTERM, then SIGKILL after a grace period.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { assert } from '../lib/assert.js';
import { limits } from '../lib/limits.js';

export type ChildRole = 'metadata' | 'storage' | 'request';

export interface ChildSpec {
  role: ChildRole;
  /** Index within the role (1..); metadata nodes use it as their fixed node id. */
  n: number;
  /** Arguments after the main script, e.g. ['storage', '--dir', ...]. */
  args: string[];
  /** The child's data dir (its node.json holds the node id of storage and request nodes). */
  dir: string;
  ports: Record<string, number>;
}

export interface SupervisorOptions {
  dir: string;
  /** Called with a line of progress for the user. */
  say: (line: string) => void;
  restartBackoffMinMs?: number;
  restartBackoffMaxMs?: number;
  stopGraceMs?: number;
  /** How to start a child (default: this process's entry: execPath, execArgv, main script). */
  entry?: { execPath: string; args: string[] };
}

interface Running {
  spec: ChildSpec;
  proc: ChildProcess | null;
  restarts: number;
  startedAtMs: number;
  timer: NodeJS.Timeout | null;
}

/**
 * V8 flags for a child of this role, before the entry's own (so that flags given to `node` or in
 * NODE_OPTIONS win). The request manager gets a larger young generation (under load every in-flight
 * request keeps objects alive across scavenges, which copy them: a larger nursery scavenges less
 * often) and a single-threaded GC (on a small machine running a whole cluster, parallel GC helper
 * threads contend with the other processes for the same cores). Storage nodes keep V8's defaults:
 * their memtables and log caches survive scavenges, and both flags lengthened their pauses and
 * the tail latency of puts. Paired A/B runs of the dev cluster in docs/performance.md.
 */
export function nodeFlags(role: ChildRole, entryArgs: readonly string[]): string[] {
  if (role !== 'request') return [];
  const given = (flag: string): boolean =>
    [...entryArgs, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes(flag));
  const flags: string[] = [];
  if (!given('--max-semi-space-size')) flags.push(`--max-semi-space-size=${limits.requestSemiSpaceMb}`);
  if (!given('single-threaded-gc')) flags.push('--single-threaded-gc');
  return flags;
}

export class Supervisor {
  private readonly children: Running[] = [];
  private stopping = false;
  private readonly o: Required<SupervisorOptions>;

  constructor(opts: SupervisorOptions) {
    const script = process.argv[1];
    assert(script !== undefined, 'no main script');
    this.o = {
      restartBackoffMinMs: 300,
      restartBackoffMaxMs: 5_000,
      stopGraceMs: 8_000,
      entry: { execPath: process.execPath, args: [...process.execArgv, script] },
      ...opts,
    };
  }

  start(spec: ChildSpec): void {
    const r: Running = { spec, proc: null, restarts: 0, startedAtMs: 0, timer: null };
    this.children.push(r);
    this.spawn(r);
  }

  private logPath(spec: ChildSpec): string {
    return path.join(this.o.dir, 'logs', `${spec.role}-${spec.n}.log`);
  }

  private spawn(r: Running): void {
    assert(!this.stopping, 'spawn while stopping');
    const entry = this.o.entry;
    const fd = openSync(this.logPath(r.spec), 'a');
    try {
      r.proc = spawn(entry.execPath, [...nodeFlags(r.spec.role, entry.args), ...entry.args, ...r.spec.args], {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, TESSERA_DEV_PARENT_PID: String(process.pid) },
        // Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops children.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    r.startedAtMs = Date.now();
    const proc = r.proc;
    proc.once('exit', (code, signal) => this.onExit(r, proc, code, signal));
    this.writeClusterJson();
  }

  private onExit(r: Running, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (r.proc !== proc) return;
    r.proc = null;
    if (this.stopping) return;
    const name = `${r.spec.role} ${r.spec.n}`;
    // Quick deaths back off exponentially; a child that ran for a while restarts at once-ish.
    if (Date.now() - r.startedAtMs > 30_000) r.restarts = 0;
    const delay = Math.min(
      this.o.restartBackoffMaxMs,
      this.o.restartBackoffMinMs * 2 ** Math.min(r.restarts, 8),
    );
    r.restarts++;
    this.o.say(
      `${name} exited (${signal ?? `code ${code}`}); restarting in ${delay} ms (log: ${this.logPath(r.spec)})`,
    );
    this.writeClusterJson();
    r.timer = setTimeout(() => {
      r.timer = null;
      if (!this.stopping) this.spawn(r);
    }, delay);
  }

  /** Node id of a child: fixed for metadata nodes, from its node.json for the others (null until registered). */
  private nodeIdOf(spec: ChildSpec): number | null {
    if (spec.role === 'metadata') return spec.n;
    const file = path.join(spec.dir, 'node.json');
    if (!existsSync(file)) return null;
    try {
      const j = JSON.parse(readFileSync(file, 'utf8')) as { node?: unknown };
      return typeof j.node === 'number' ? j.node : null;
    } catch {
      return null;
    }
  }

  /** DIR/cluster.json: every process with its role, node id, pid and ports (atomic rewrite). */
  writeClusterJson(): void {
    const processes = [
      { role: 'dev', id: null, pid: process.pid, ports: {} },
      ...this.children.map((r) => ({
        role: r.spec.role,
        id: this.nodeIdOf(r.spec),
        pid: r.proc?.pid ?? null,
        ports: r.spec.ports,
        log: this.logPath(r.spec),
      })),
    ];
    const file = path.join(this.o.dir, 'cluster.json');
    try {
      writeFileSync(`${file}.tmp`, `${JSON.stringify({ version: 1, processes }, null, 2)}\n`);
      renameSync(`${file}.tmp`, file);
    } catch (e) {
      // A full disk must not stop the supervisor (and with it every process it watches).
      this.o.say(`could not write ${file}: ${(e as Error).message}`);
    }
  }

  alive(): number {
    return this.children.filter((r) => r.proc !== null).length;
  }

  /** SIGKILL to every running child (a second Ctrl-C). */
  killAll(): void {
    this.stopping = true;
    for (const r of this.children) r.proc?.kill('SIGKILL');
  }

  /** SIGTERM to every child, then SIGKILL to those still running after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    const waits: Promise<void>[] = [];
    for (const r of this.children) {
      if (r.timer !== null) clearTimeout(r.timer);
      const proc = r.proc;
      if (proc === null || proc.exitCode !== null || proc.signalCode !== null) continue;
      waits.push(
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => {
            this.o.say(`${r.spec.role} ${r.spec.n} did not stop within ${this.o.stopGraceMs} ms: SIGKILL`);
            proc.kill('SIGKILL');
          }, this.o.stopGraceMs);
          proc.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          proc.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(waits);
    for (const r of this.children) r.proc = null;
    this.writeClusterJson();
  }
}
