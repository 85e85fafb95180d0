/**
 * Helpers to run `tessera dev` as a child process in end-to-end tests: start it on a directory,
 * wait for its `ready` line, read cluster.json, stop it with SIGTERM (SIGKILL as a last resort).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '../..');

export interface ClusterProcess {
  role: string;
  id: number | null;
  pid: number | null;
  ports: Record<string, number>;
}

export interface DevCluster {
  proc: ChildProcess;
  url: string;
  dashboard: string;
  output: () => string;
}

export function readClusterJson(dir: string): ClusterProcess[] {
  const file = path.join(dir, 'cluster.json');
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, 'utf8')) as { processes: ClusterProcess[] }).processes;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) resolve(p.exitCode);
    else p.once('exit', (code) => resolve(code));
  });
}

/** Starts `tessera dev` (through tsx, as a developer would) and resolves at its `ready` line. */
export function startDev(dir: string, args: string[], timeoutMs: number): Promise<DevCluster> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'dev', '--dir', dir, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TESSERA_LOG_LEVEL: 'warn' },
  });
  let out = '';
  return new Promise<DevCluster>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`tessera dev not ready after ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ready at (http:\/\/\S+) \(dashboard: (\S+)\)/.exec(out);
      if (m?.[1] !== undefined && m[2] !== undefined) {
        clearTimeout(timer);
        resolve({ proc, url: m[1], dashboard: m[2], output: () => out });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tessera dev exited (${code}) before ready:\n${out}`));
    });
  });
}

/** `signal` (SIGTERM; SIGINT = Ctrl-C), then SIGKILL after `graceMs`; resolves with the exit code. */
export async function stopDev(
  proc: ChildProcess,
  graceMs = 20_000,
  signal: 'SIGTERM' | 'SIGINT' = 'SIGTERM',
): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  proc.kill(signal);
  const code = await exited(proc);
  clearTimeout(kill);
  return code;
}

export async function waitFor(
  what: string,
  f: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
