/**
 * The Tessera side of the benchmarks: finding the URL and token, checking the cluster answers, and a
 * minimal keep-alive HTTP client for the YCSB generator.
 *
 * SWITCH TO src/client: `KvClient` is the minimal interface the generator needs. When src/client
 * exists, implement `KvClient` with it in `openClient` below (one place) and drop `HttpKvClient`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { limits } from '../lib/limits.js';

export interface KvClient {
  put(table: string, key: string, value: Uint8Array): Promise<void>;
  /** The value, or undefined when the key is absent. */
  get(table: string, key: string): Promise<Uint8Array | undefined>;
  close(): void;
}

/** TESSERA_URL, else the dev cluster's request manager (as the CLI). */
export const urlDefault = process.env.TESSERA_URL ?? 'http://127.0.0.1:7070';

/** parseArgs options every benchmark command takes: the server, a token, a dev data dir (token). */
export const serverArgOptions = {
  url: { type: 'string', default: urlDefault },
  token: { type: 'string' },
  dir: { type: 'string' },
} as const;

/** --token, else TESSERA_TOKEN, else DIR/admin.token (DIR: --dir, TESSERA_DIR, ./tessera-data). */
export function resolveToken(token: string | undefined, dir: string | undefined): string | undefined {
  if (token !== undefined && token !== '') return token;
  const env = process.env.TESSERA_TOKEN;
  if (env !== undefined && env !== '') return env;
  const d = dir ?? process.env.TESSERA_DIR ?? 'tessera-data';
  try {
    return readFileSync(path.join(d, 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Why Tessera can't be benchmarked at url, or undefined when /v1/health answers 200. */
export async function unreachableReason(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(new URL('/v1/health', url), { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok ? undefined : `GET /v1/health answered ${res.status}`;
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    return `no answer from ${url} (${cause})`;
  }
}

/** Creates the table if it is missing (409 TABLE_EXISTS is fine). */
export async function ensureTable(url: string, token: string, table: string): Promise<void> {
  const res = await fetch(new URL(`/v1/tables/${encodeURIComponent(table)}`, url), {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ engine: 'btree' }),
    signal: AbortSignal.timeout(limits.benchRequestTimeoutMs),
  });
  const body = await res.text();
  if (res.status !== 201 && res.status !== 409) {
    throw new Error(`creating table ${table}: HTTP ${res.status} ${body.slice(0, 200)}`);
  }
}

interface Reply {
  status: number;
  body: Buffer;
}

/** Minimal client over node:http with keep-alive; one socket per concurrent request. */
export class HttpKvClient implements KvClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(
    url: string,
    private readonly token: string,
    sockets: number,
  ) {
    this.base = new URL(url);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  private request(method: string, pathname: string, body?: Uint8Array): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
      if (body !== undefined) headers['content-length'] = body.byteLength;
      const req = http.request(
        {
          host: this.base.hostname,
          port: this.base.port,
          method,
          path: pathname,
          headers,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.setTimeout(limits.benchRequestTimeoutMs, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  private itemPath(table: string, key: string): string {
    return `/v1/tables/${encodeURIComponent(table)}/items/${encodeURIComponent(key)}`;
  }

  async put(table: string, key: string, value: Uint8Array): Promise<void> {
    const r = await this.request('PUT', this.itemPath(table, key), value);
    if (r.status !== 200) throw replyError('PUT', r);
  }

  async get(table: string, key: string): Promise<Uint8Array | undefined> {
    const r = await this.request('GET', this.itemPath(table, key));
    if (r.status === 404 && r.body.includes('KEY_NOT_FOUND')) return undefined;
    if (r.status !== 200) throw replyError('GET', r);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}

function replyError(method: string, r: Reply): Error {
  let code = '';
  try {
    code = (JSON.parse(r.body.toString()) as { error?: { code?: string } }).error?.code ?? '';
  } catch {
    // not JSON
  }
  return new Error(`${method} answered ${r.status}${code === '' ? '' : ` ${code}`}`);
}

/** SWITCH TO src/client: the one place that picks the client implementation. */
export function openClient(url: string, token: string, sockets: number): KvClient {
  return new HttpKvClient(url, token, sockets);
}
