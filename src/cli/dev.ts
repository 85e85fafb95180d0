/**
 * `tessera dev [--dir DIR] [--port P] [--groups N] [--replicas 3|5] [--spares N] [--replace-after S]`
 * (= `npm start`): a local cluster of real processes on 127.0.0.1: 3 metadata nodes,
 * groups*replicas + spares storage nodes, 1 request manager. See docs/dev.md.
 *
 * DIR layout: cluster.secret (0600), admin.token (0600), dev.json (ports and shape, reused on
 * restart), cluster.json (processes), logs/<role>-<n>.log, metadata-<n>/, storage-<n>/, request-1/.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { loadOrCreateClusterSecret } from '../transport/secret.js';
import { newToken } from '../request/auth.js';
import { flagString, parseArgs, UsageError } from './args.js';
import { type ChildSpec, Supervisor } from './dev-supervisor.js';

const host = '127.0.0.1';
const mmCount = 3;
const readyPollMs = 300;

export interface DevOptions {
  dir: string;
  port: number;
  groups: number;
  replicas: 3 | 5;
  spares: number;
  replaceAfterS: number;
}

interface DevState {
  version: 1;
  httpPort: number;
  metadataPorts: number[];
  storagePorts: number[];
}

function intFlag(v: string | undefined, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer ${min}..${max}`);
  return n;
}

export function parseDevArgs(args: string[]): DevOptions {
  const p = parseArgs(args, ['dir', 'port', 'groups', 'replicas', 'spares', 'replace-after'], []);
  if (p.positional.length > 0) throw new UsageError(`unexpected argument ${p.positional[0]}`);
  const replicas = intFlag(flagString(p, 'replicas'), 'replicas', 3, 3, 5);
  if (replicas !== 3 && replicas !== 5) throw new UsageError('--replicas must be 3 or 5');
  return {
    dir: path.resolve(flagString(p, 'dir') ?? process.env.TESSERA_DIR ?? './tessera-data'),
    port: intFlag(flagString(p, 'port'), 'port', 7070, 0, 65_535),
    groups: intFlag(flagString(p, 'groups'), 'groups', 2, 1, 64),
    replicas,
    spares: intFlag(flagString(p, 'spares'), 'spares', 1, 0, 64),
    replaceAfterS: intFlag(flagString(p, 'replace-after'), 'replace-after', 30, 1, 86_400),
  };
}

/** A port the OS says is free now (listen on 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** Every port of the cluster must be free before anything starts (another cluster may hold one). */
async function checkPortsFree(s: DevState): Promise<void> {
  const named: [string, number][] = [
    ['the request manager (--port)', s.httpPort],
    ...s.metadataPorts.map((p, i): [string, number] => [`metadata ${i + 1}`, p]),
    ...s.storagePorts.map((p, i): [string, number] => [`storage ${i + 1}`, p]),
  ];
  for (const [what, port] of named)
    if (!(await portFree(port))) throw new UsageError(`port ${port} of ${what} is in use on ${host}`);
}

async function freePorts(n: number, avoid: Set<number>): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!avoid.has(p) && !out.includes(p)) out.push(p);
  }
  return out;
}

/** Ports from DIR/dev.json when it exists (a restart reuses them), else fresh free ones. */
async function loadOrPickPorts(o: DevOptions, storageCount: number): Promise<DevState> {
  const file = path.join(o.dir, 'dev.json');
  let s: DevState | null = null;
  if (existsSync(file)) s = JSON.parse(readFileSync(file, 'utf8')) as DevState;
  const used = new Set<number>([...(s?.metadataPorts ?? []), ...(s?.storagePorts ?? [])]);
  const httpPort = o.port !== 0 ? o.port : (s?.httpPort ?? (await freePorts(1, used))[0]!);
  used.add(httpPort);
  const metadataPorts = s?.metadataPorts ?? (await freePorts(mmCount, used));
  for (const p of metadataPorts) used.add(p);
  const storagePorts = [...(s?.storagePorts ?? [])];
  if (storagePorts.length < storageCount)
    storagePorts.push(...(await freePorts(storageCount - storagePorts.length, used)));
  const state: DevState = { version: 1, httpPort, metadataPorts, storagePorts };
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`);
  return state;
}

/** The admin token: DIR/admin.token (0600), created on first start. */
function loadOrCreateAdminToken(dir: string): string {
  const file = path.join(dir, 'admin.token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const { secret } = newToken('admin', null);
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

function childSpecs(o: DevOptions, s: DevState, storageCount: number): ChildSpec[] {
  const mm = s.metadataPorts.map((p, i) => `${i + 1}=${host}:${p}`).join(',');
  const specs: ChildSpec[] = [];
  s.metadataPorts.forEach((port, i) => {
    const dir = path.join(o.dir, `metadata-${i + 1}`);
    specs.push({
      role: 'metadata',
      n: i + 1,
      dir,
      ports: { rpc: port },
      args: [
        'metadata',
        '--id',
        String(i + 1),
        '--listen',
        `${host}:${port}`,
        '--peers',
        mm,
        '--dir',
        dir,
        '--groups',
        String(o.groups),
        '--replicas',
        String(o.replicas),
        '--replace-after',
        String(o.replaceAfterS),
      ],
    });
  });
  for (let i = 0; i < storageCount; i++) {
    const port = s.storagePorts[i]!;
    const dir = path.join(o.dir, `storage-${i + 1}`);
    specs.push({
      role: 'storage',
      n: i + 1,
      dir,
      ports: { rpc: port },
      args: ['storage', '--dir', dir, '--listen', `${host}:${port}`, '--mm', mm],
    });
  }
  const rmDir = path.join(o.dir, 'request-1');
  specs.push({
    role: 'request',
    n: 1,
    dir: rmDir,
    ports: { http: s.httpPort },
    args: [
      'request',
      '--listen',
      `${host}:${s.httpPort}`,
      '--mm',
      mm,
      '--dir',
      rmDir,
      '--admin-token',
      path.join(o.dir, 'admin.token'),
    ],
  });
  return specs;
}

interface Readiness {
  ok: boolean;
  what: string;
}

/** Ready = health 200 and every one of the `groups` groups has a leader (as /v1/cluster shows). */
async function readiness(url: string, token: string, groups: number): Promise<Readiness> {
  try {
    const h = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2_000) });
    if (h.status !== 200) {
      const body = (await h.json().catch(() => null)) as { error?: { message?: string } } | null;
      return { ok: false, what: `request manager: ${body?.error?.message ?? `HTTP ${h.status}`}` };
    }
    const c = await fetch(`${url}/v1/cluster`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2_000),
    });
    if (c.status !== 200) return { ok: false, what: `cluster view: HTTP ${c.status}` };
    const view = (await c.json()) as { groups?: { leader: number | null }[] };
    const all = view.groups ?? [];
    const led = all.filter((g) => g.leader !== null).length;
    return { ok: all.length >= groups && led === all.length, what: `groups with a leader: ${led}/${groups}` };
  } catch {
    return { ok: false, what: 'request manager not answering yet' };
  }
}

/** Refuses to run twice on one directory: cluster.json names a live supervisor. */
function checkNotRunning(dir: string): void {
  const file = path.join(dir, 'cluster.json');
  if (!existsSync(file)) return;
  let pid: unknown;
  try {
    const j = JSON.parse(readFileSync(file, 'utf8')) as { processes?: { role?: string; pid?: unknown }[] };
    pid = j.processes?.find((p) => p.role === 'dev')?.pid;
  } catch {
    return;
  }
  if (typeof pid !== 'number' || pid === process.pid) return;
  try {
    process.kill(pid, 0);
  } catch {
    return;
  }
  throw new UsageError(`a tessera dev (pid ${pid}) is already running on ${dir}`);
}

export async function run(args: string[]): Promise<number> {
  const o = parseDevArgs(args);
  checkNotRunning(o.dir);
  const say = (line: string): void => {
    process.stdout.write(`tessera dev: ${line}\n`);
  };
  const storageCount = o.groups * o.replicas + o.spares;
  mkdirSync(path.join(o.dir, 'logs'), { recursive: true });
  const fresh = !existsSync(path.join(o.dir, 'cluster.secret'));
  loadOrCreateClusterSecret(path.join(o.dir, 'cluster.secret'));
  const token = loadOrCreateAdminToken(o.dir);
  const state = await loadOrPickPorts(o, storageCount);
  await checkPortsFree(state);
  const url = `http://${host}:${state.httpPort}`;
  say(
    `${fresh ? 'creating' : 'restarting'} cluster in ${o.dir}: ${mmCount} metadata, ${storageCount} storage ` +
      `(${o.groups} groups x ${o.replicas} + ${o.spares} spare), 1 request manager`,
  );
  const sup = new Supervisor({ dir: o.dir, say });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      say('stopping all children (SIGTERM)...');
      await sup.stop();
      say('stopped');
    })();
    return stopping;
  };
  // Handlers stay installed: a second signal must not kill the supervisor and orphan its children;
  // it escalates to SIGKILL of the children instead.
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (): void => {
      if (stopping !== null) {
        say('second signal: SIGKILL to every child');
        sup.killAll();
        return;
      }
      void stop().then(resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  for (const spec of childSpecs(o, state, storageCount)) {
    say(
      `starting ${spec.role} ${spec.n} (${Object.entries(spec.ports)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
    sup.start(spec);
  }
  await waitReady(url, token, o.groups, say, () => stopping !== null);
  if (stopping === null) {
    sup.writeClusterJson();
    say(`ready at ${url} (dashboard: ${url}/dashboard#token=${token})`);
  }
  await stopped;
  return 0;
}

async function waitReady(
  url: string,
  token: string,
  groups: number,
  say: (l: string) => void,
  stop: () => boolean,
) {
  let last = '';
  let lastSaidMs = 0;
  for (;;) {
    if (stop()) return;
    const r = await readiness(url, token, groups);
    if (r.ok) return;
    if (r.what !== last || Date.now() - lastSaidMs > 10_000) {
      say(`waiting: ${r.what}`);
      last = r.what;
      lastSaidMs = Date.now();
    }
    await new Promise((res) => setTimeout(res, readyPollMs));
  }
}
