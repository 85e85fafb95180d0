/**
 * Helpers for api-cluster.test.ts: raw HTTP calls (fetch, and node:http for paths fetch would
 * normalize), exact error assertions against docs/errors.md, a model of the seeded items checked
 * byte for byte after every error, and a second request manager run as a child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'vitest';
import { percentEncodeBytes } from '../../src/lib/urlbytes.js';
import { exited, root } from './dev-cluster.js';

export interface Res {
  status: number;
  headers: Headers;
  body: Buffer;
}

export interface CallOptions {
  /** Bearer token; undefined sends no Authorization header. */
  token?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string | ReadableStream<Uint8Array>;
}

/** One request with fetch, no retries: what the server answered, as it answered it. */
export async function call(base: string, method: string, p: string, o: CallOptions = {}): Promise<Res> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: AbortSignal.timeout(30_000) };
  if (o.body !== undefined) init.body = o.body;
  if (o.body instanceof ReadableStream) init.duplex = 'half';
  const r = await fetch(`${base}${p}`, init);
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

/** A request target sent verbatim (fetch would resolve `.` and `..` segments before sending). */
export function rawCall(base: string, method: string, target: string, token: string): Promise<Res> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path: target, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
          resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** code -> HTTP status, from the table of docs/errors.md. */
const documented = new Map<string, number>();
for (const m of readFileSync(path.join(root, 'docs/errors.md'), 'utf8').matchAll(
  /^\| `([A-Z_]+)` \| (\d{3}) \|/gm,
))
  documented.set(m[1]!, Number(m[2]));

/**
 * The response is exactly the documented error: the status docs/errors.md gives the code, a JSON
 * body `{"error":{"code","message"}}` and nothing else, no ETag.
 */
export function expectError(r: Res, status: number, code: string): void {
  const text = r.body.toString('utf8');
  expect(documented.get(code), `${code} is documented in docs/errors.md`).toBe(status);
  expect(r.status, text).toBe(status);
  expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(r.headers.get('etag')).toBeNull();
  const j = JSON.parse(text) as { error: { code: unknown; message: unknown } };
  expect(Object.keys(j)).toEqual(['error']);
  expect(Object.keys(j.error)).toEqual(['code', 'message']);
  expect(j.error.code).toBe(code);
  expect(typeof j.error.message === 'string' && j.error.message.length > 0).toBe(true);
}

export const seqRe = /^[0-9a-f]{32}$/;

/** A successful put or delete: 200 `{"seq"}` and the same seq as ETag; returns the seq. */
export function expectWritten(r: Res): string {
  expect(r.status, r.body.toString()).toBe(200);
  const j = JSON.parse(r.body.toString()) as { seq: string };
  expect(j.seq).toMatch(seqRe);
  expect(r.headers.get('etag')).toBe(`"${j.seq}"`);
  return j.seq;
}

export interface Item {
  table: string;
  key: Buffer;
  value: Buffer;
  seq: string;
}

export const itemPath = (table: string, key: Uint8Array): string =>
  `/v1/tables/${table}/items/${percentEncodeBytes(key)}`;

export async function putItem(base: string, token: string, table: string, key: Buffer, value: Buffer) {
  const seq = expectWritten(await call(base, 'PUT', itemPath(table, key), { token, body: value }));
  return { table, key, value, seq } satisfies Item;
}

/** GET answers exactly this value and seq. */
export async function expectItem(base: string, token: string, x: Item): Promise<void> {
  const r = await call(base, 'GET', itemPath(x.table, x.key), { token });
  expect(r.status, `${x.table}/${x.key.toString('hex')}: ${r.body.toString()}`).toBe(200);
  expect(r.headers.get('etag')).toBe(`"${x.seq}"`);
  expect(Buffer.compare(r.body, x.value)).toBe(0);
}

interface ScanJson {
  items: { key: string; key_b64: string; value: string; seq: string }[];
  next: string | null;
}

/** The whole table by scan, in key order: key (hex), value (base64), seq. */
export async function scanAll(base: string, token: string, table: string): Promise<string[]> {
  const r = await call(base, 'GET', `/v1/tables/${table}/items?limit=10000`, { token });
  expect(r.status, r.body.toString()).toBe(200);
  const j = JSON.parse(r.body.toString()) as ScanJson;
  expect(j.next).toBeNull();
  return j.items.map((i) => `${Buffer.from(i.key_b64, 'base64').toString('hex')} ${i.value} ${i.seq}`);
}

export const scanLines = (items: Item[]): string[] =>
  [...items]
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((i) => `${i.key.toString('hex')} ${i.value.toString('base64')} ${i.seq}`);

export { freePort } from '../support/net.js';

export interface ChildRm {
  proc: ChildProcess;
  url: string;
  output: () => string;
}

/** `tessera request` as dev.ts starts it, on its own port and directory, against the same MMs. */
export function startRequestManager(devDir: string, mm: string, port: number): ChildRm {
  const dir = path.join(devDir, 'request-2');
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'request',
      '--listen',
      `127.0.0.1:${port}`,
      '--mm',
      mm,
      '--dir',
      dir,
      '--secret',
      path.join(devDir, 'cluster.secret'),
      '--admin-token',
      path.join(devDir, 'admin.token'),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TESSERA_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, url: `http://127.0.0.1:${port}`, output: () => out };
}

/** SIGTERM to this child only, SIGKILL after `graceMs`. */
export async function stopChild(proc: ChildProcess, graceMs = 5_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const kill = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  proc.kill('SIGTERM');
  await exited(proc);
  clearTimeout(kill);
}

/** Runs `f` over `xs` with at most `n` at a time. */
export async function inBatches<T>(xs: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < xs.length; i += n) await Promise.all(xs.slice(i, i + n).map(f));
}

export interface NewToken {
  id: string;
  token: string;
}

/** POST /v1/tokens through `base` (201, a fresh secret and id). */
export async function createToken(base: string, admin: string, role: string, table: string | null) {
  const r = await call(base, 'POST', '/v1/tokens', { token: admin, body: JSON.stringify({ role, table }) });
  expect(r.status, r.body.toString()).toBe(201);
  const j = JSON.parse(r.body.toString()) as NewToken & { role: string; table: string | null };
  expect(j.token).toMatch(/^tess_[A-Za-z0-9_-]{43}$/);
  expect(j.id).toMatch(/^[0-9a-f]{16}$/);
  expect([j.role, j.table]).toEqual([role, table]);
  return { id: j.id, token: j.token } satisfies NewToken;
}

/** DELETE /v1/tokens/{id} through `base` (200). */
export async function revokeToken(base: string, admin: string, id: string): Promise<void> {
  const r = await call(base, 'DELETE', `/v1/tokens/${id}`, { token: admin });
  expect(r.status, r.body.toString()).toBe(200);
  expect(JSON.parse(r.body.toString())).toEqual({ revoked: id });
}
