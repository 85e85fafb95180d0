/**
 * A 3-member etcd cluster on loopback for the benchmarks (Debian's etcd-server 3.4), and the Go load
 * generator that drives it (bench/etcd/loadgen, built into bench/.work/ when missing).
 *
 * Members listen on 127.0.0.1 with distinct client and peer ports, keep their data in a temp dir,
 * and run with etcd's default durability (fsync of the WAL before every acknowledgement). They are
 * stopped by pid, so nothing else is touched. Debian's 3.4.23 slows its reads after big write bursts
 * until restarted (fixed upstream later): call `restart` before read workloads.
 *
 * Alone:   npx tsx bench/etcd/cluster.ts [--base-port 23790]            (hold until Ctrl-C)
 *          npx tsx bench/etcd/cluster.ts -- -workload put -clients 64   (start, run loadgen, stop)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert } from '../../src/lib/assert.js';
import { limits } from '../../src/lib/limits.js';
import { type Measurement, type Progress, parseLoadgenOutput, parseLoadgenProgress } from '../lib/parse.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const benchWorkDir = path.resolve(here, '..', '.work');
export const loadgenBin = path.join(benchWorkDir, 'etcd-loadgen');
const loadgenSrc = path.join(here, 'loadgen');
const goPathDebian = '/usr/share/gocode';
const membersCount = 3;

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | undefined;
}

export interface EtcdCluster {
  dir: string;
  endpoints: string[];
  members: Member[];
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function memberFlags(m: Member, all: Member[], state: 'new' | 'existing'): string[] {
  const cluster = all.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
  return [
    `--name=${m.name}`,
    `--data-dir=${m.dataDir}`,
    `--listen-client-urls=http://127.0.0.1:${m.clientPort}`,
    `--advertise-client-urls=http://127.0.0.1:${m.clientPort}`,
    `--listen-peer-urls=http://127.0.0.1:${m.peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${m.peerPort}`,
    `--initial-cluster=${cluster}`,
    '--initial-cluster-token=tessera-bench',
    `--initial-cluster-state=${state}`,
    '--logger=zap',
    `--log-outputs=${m.logFile}`,
  ];
}

/** Every etcd we started, so that an exiting benchmark never leaves one behind. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) if (p.pid !== undefined && p.exitCode === null) p.kill('SIGKILL');
});

function launch(m: Member, all: Member[], state: 'new' | 'existing'): void {
  assert(m.proc === undefined, `${m.name} already running`);
  const fd = openSync(m.logFile, 'a');
  const proc = spawn('etcd', memberFlags(m, all, state), { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  m.proc = proc;
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

async function waitHealthy(c: EtcdCluster): Promise<void> {
  const deadline = Date.now() + limits.benchEtcdStartTimeoutMs;
  while (Date.now() < deadline) {
    for (const m of c.members) {
      if (m.proc?.exitCode !== null) throw new Error(`etcd ${m.name} exited; see ${m.logFile}`);
    }
    const ok = await Promise.all(c.endpoints.map(healthy));
    if (ok.every(Boolean)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`etcd cluster not healthy after ${limits.benchEtcdStartTimeoutMs} ms; logs in ${c.dir}`);
}

/** Starts 3 members: client ports base+1..3, peer ports base+11..13. */
export async function startEtcd(basePort = 23790): Promise<EtcdCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-etcd-'));
  const members: Member[] = [];
  for (let i = 1; i <= membersCount; i++) {
    const m: Member = {
      name: `m${i}`,
      clientPort: basePort + i,
      peerPort: basePort + 10 + i,
      dataDir: path.join(dir, `m${i}.etcd`),
      logFile: path.join(dir, `m${i}.log`),
      proc: undefined,
    };
    for (const port of [m.clientPort, m.peerPort]) {
      if (!(await portFree(port))) throw new Error(`port ${port} is in use: pass another --etcd-port`);
    }
    members.push(m);
  }
  const c: EtcdCluster = { dir, endpoints: members.map((m) => `http://127.0.0.1:${m.clientPort}`), members };
  for (const m of members) launch(m, members, 'new');
  try {
    await waitHealthy(c);
  } catch (e) {
    await stopEtcd(c, { keepDir: true });
    throw e;
  }
  return c;
}

async function stopMember(m: Member): Promise<void> {
  const p = m.proc;
  m.proc = undefined;
  if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), limits.benchEtcdStopTimeoutMs);
  await exited;
  clearTimeout(timer);
}

/** Stops the members (by pid) and removes the data dir unless keepDir. */
export async function stopEtcd(c: EtcdCluster, opts: { keepDir?: boolean } = {}): Promise<void> {
  await Promise.all(c.members.map(stopMember));
  if (opts.keepDir !== true) rmSync(c.dir, { recursive: true, force: true });
}

/** Stops and starts every member on the same data; waits for health. */
export async function restartEtcd(c: EtcdCluster): Promise<void> {
  await Promise.all(c.members.map(stopMember));
  for (const m of c.members) launch(m, c.members, 'existing');
  await waitHealthy(c);
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('error', reject);
    p.once('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

/** Builds the loadgen offline in GOPATH mode from Debian's golang-etcd-server-dev, if missing or stale. */
export async function ensureLoadgen(): Promise<string> {
  if (
    existsSync(loadgenBin) &&
    statSync(loadgenBin).mtimeMs >= statSync(path.join(loadgenSrc, 'main.go')).mtimeMs
  ) {
    return loadgenBin;
  }
  if (!existsSync(path.join(goPathDebian, 'src/go.etcd.io/etcd/clientv3'))) {
    throw new Error(`no etcd Go client in ${goPathDebian}: install golang-go and golang-etcd-server-dev`);
  }
  mkdirSync(benchWorkDir, { recursive: true });
  const env = {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH: goPathDebian,
    GOCACHE: path.join(benchWorkDir, 'gocache'),
    GOFLAGS: '',
  };
  const r = await run('go', ['build', '-o', loadgenBin, '.'], env, loadgenSrc);
  if (r.code !== 0) throw new Error(`go build of the etcd loadgen failed:\n${r.out}`);
  return loadgenBin;
}

export interface LoadgenOptions {
  workload: 'load' | 'put' | 'a' | 'b' | 'c';
  clients: number;
  durationS: number;
  keys: number;
  dist?: 'uniform' | 'zipfian';
  valueBytes?: number;
  onProgress?: (p: Progress) => void;
}

/** Runs the loadgen once against the cluster and parses its JSON line. */
export function runLoadgen(c: EtcdCluster, o: LoadgenOptions, op: string = o.workload): Promise<Measurement> {
  const args = [
    `-endpoints=${c.endpoints.join(',')}`,
    `-workload=${o.workload}`,
    `-clients=${o.clients}`,
    `-duration=${o.durationS}s`,
    `-keys=${o.keys}`,
    `-dist=${o.dist ?? 'uniform'}`,
    `-value-size=${o.valueBytes ?? 100}`,
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(loadgenBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const lines = err.split('\n');
      err = lines.pop() ?? '';
      for (const line of lines) {
        const pr = parseLoadgenProgress(line);
        if (pr !== undefined) o.onProgress?.(pr);
        else if (line.trim() !== '') process.stderr.write(`loadgen: ${line}\n`);
      }
    });
    p.once('error', reject);
    p.once('close', (code) => {
      if (code !== 0) return reject(new Error(`etcd loadgen exited with ${code}: ${err}${out}`));
      try {
        resolve(parseLoadgenOutput(out, op));
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function main(argv: string[]): Promise<void> {
  const sep = argv.indexOf('--');
  const own = sep < 0 ? argv : argv.slice(0, sep);
  const portAt = own.indexOf('--base-port');
  const base = portAt >= 0 ? Number(own[portAt + 1]) : 23790;
  const c = await startEtcd(base);
  console.log(`etcd cluster up: ${c.endpoints.join(',')} (data in ${c.dir})`);
  if (sep < 0) {
    console.log('Ctrl-C stops it.');
    await new Promise<void>((r) => {
      process.once('SIGINT', r);
      process.once('SIGTERM', r);
    });
  } else {
    try {
      const bin = await ensureLoadgen();
      const r = await run(bin, [`-endpoints=${c.endpoints.join(',')}`, ...argv.slice(sep + 1)], process.env);
      process.stdout.write(r.out);
    } finally {
      await stopEtcd(c);
    }
    return;
  }
  await stopEtcd(c);
  console.log('etcd cluster stopped');
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
