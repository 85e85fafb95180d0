/**
 * The TypeScript client of Tessera's HTTP API (API.md). Keep-alive sockets in a pooled http.Agent;
 * many concurrent calls share the pool (pipelining by concurrency). Retries 503 and 429 (honouring
 * Retry-After) and connection failures within a deadline; every write carries a
 * `Tessera-Request-Id` that stays the same across its retries, so a retried write is applied once.
 * Errors are thrown as TesseraError with the server's code.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { errorCodes, type ErrorCode, TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { percentEncodeBytes } from '../lib/urlbytes.js';
import type * as T from './types.js';

export * from './types.js';

export interface ClientOptions {
  /** Base URL of a request manager (default http://127.0.0.1:7070). */
  url?: string;
  token?: string;
  /** Total time for one call including its retries. */
  deadlineMs?: number;
  /** Sockets kept open to the server. */
  socketsMax?: number;
  /** Names this client in request ids (random by default). */
  clientId?: string;
}

interface CallOptions {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** A write: carries a request id, and a timeout means OUTCOME_UNKNOWN rather than TIMEOUT. */
  write?: boolean;
  /** Statuses that are answers, not errors (e.g. 404 for get). */
  accept?: number[];
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const enc = (k: T.KeyLike): Uint8Array => (typeof k === 'string' ? Buffer.from(k, 'utf8') : k);
const retryableNetCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN']);
/** Network failures before any byte of the request could reach the server. */
const notSentNetCodes = new Set(['ECONNREFUSED', 'EAI_AGAIN']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TesseraClient {
  readonly url: URL;
  private readonly token: string | undefined;
  private readonly deadlineMs: number;
  private readonly agent: http.Agent;
  private readonly clientId: string;
  private requestCounter = 0;

  constructor(opts: ClientOptions = {}) {
    this.url = new URL(opts.url ?? 'http://127.0.0.1:7070');
    this.token = opts.token;
    this.deadlineMs = opts.deadlineMs ?? limits.clientDeadlineMs;
    const agentOpts = {
      keepAlive: true,
      maxSockets: opts.socketsMax ?? limits.clientSocketsMax,
      scheduling: 'lifo' as const,
    };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
    this.clientId = opts.clientId ?? randomBytes(8).toString('hex');
  }

  /** Closes the pooled sockets. */
  close(): void {
    this.agent.destroy();
  }

  // Tables
  async health(): Promise<{ status: string }> {
    return this.json('GET', '/v1/health');
  }
  async listTables(): Promise<T.TableSummary[]> {
    return (await this.json<{ tables: T.TableSummary[] }>('GET', '/v1/tables')).tables;
  }
  async createTable(name: string, opts: { engine?: T.Engine } = {}): Promise<T.TableInfo> {
    return this.json('PUT', tablePath(name), {
      body: JSON.stringify(opts.engine ? { engine: opts.engine } : {}),
    });
  }
  async describeTable(name: string): Promise<T.TableInfo> {
    return this.json('GET', tablePath(name));
  }
  async dropTable(name: string): Promise<void> {
    await this.json('DELETE', tablePath(name));
  }

  // Items
  async put(
    table: string,
    key: T.KeyLike,
    value: T.KeyLike,
    opts: T.WriteOptions = {},
  ): Promise<{ seq: string }> {
    const headers = conditionHeaders(opts);
    const body = enc(value);
    return this.json('PUT', itemPath(table, key), { body, headers, write: true });
  }
  /** The item, or null when the key is absent (a missing table throws TABLE_NOT_FOUND). */
  async get(table: string, key: T.KeyLike): Promise<T.Item | null> {
    const res = await this.call('GET', itemPath(table, key), { accept: [404] });
    if (res.status === 404) {
      const e = toError(res);
      if (e.code === 'KEY_NOT_FOUND') return null;
      throw e;
    }
    return { value: new Uint8Array(res.body), seq: etagSeq(res.headers.etag) };
  }
  /** Deletes the key: KEY_NOT_FOUND when absent, CONDITION_FAILED when ifMatch does not hold. */
  async delete(table: string, key: T.KeyLike, opts: { ifMatch?: string } = {}): Promise<{ seq: string }> {
    return this.json('DELETE', itemPath(table, key), { headers: conditionHeaders(opts), write: true });
  }
  /** One page of an ordered scan; pass `next` as `start` to continue. */
  async scan(table: string, opts: T.ScanOptions = {}): Promise<T.ScanPage> {
    const q: string[] = [];
    for (const name of ['prefix', 'start', 'end'] as const) {
      const v = opts[name];
      if (v !== undefined) q.push(`${name}=${percentEncodeBytes(enc(v))}`);
    }
    if (opts.limit !== undefined) q.push(`limit=${opts.limit}`);
    const path = `${tablePath(table)}/items${q.length ? `?${q.join('&')}` : ''}`;
    const raw = await this.json<T.ScanPageJson>('GET', path);
    return {
      items: raw.items.map((it) => ({
        key: new Uint8Array(Buffer.from(it.key_b64, 'base64')),
        keyText: it.key,
        value: new Uint8Array(Buffer.from(it.value, 'base64')),
        seq: it.seq,
      })),
      next: raw.next_b64 === null ? null : new Uint8Array(Buffer.from(raw.next_b64, 'base64')),
    };
  }
  /** Every item of the range, page by page. */
  async *scanAll(table: string, opts: T.ScanOptions = {}): AsyncGenerator<T.ScanItem> {
    let start: T.KeyLike | undefined = opts.start;
    for (;;) {
      const page = await this.scan(table, { ...opts, ...(start === undefined ? {} : { start }) });
      yield* page.items;
      if (page.next === null) return;
      start = page.next;
    }
  }

  // Cluster, stats, metrics
  async cluster(): Promise<T.ClusterInfo> {
    return this.json('GET', '/v1/cluster');
  }
  async stats(): Promise<T.Stats> {
    return this.json('GET', '/v1/stats');
  }
  async metrics(): Promise<string> {
    return (await this.call('GET', '/metrics')).body.toString('utf8');
  }

  // Tokens (admin)
  async createToken(opts: { role?: T.TokenRole; table?: string | null } = {}): Promise<T.NewToken> {
    return this.json('POST', '/v1/tokens', {
      body: JSON.stringify({ role: opts.role ?? 'read-write', table: opts.table ?? null }),
    });
  }
  async listTokens(): Promise<T.TokenInfo[]> {
    return (await this.json<{ tokens: T.TokenInfo[] }>('GET', '/v1/tokens')).tokens;
  }
  async revokeToken(id: string): Promise<void> {
    await this.json('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  // Metadata (admin)
  async backupMetadata(): Promise<Uint8Array> {
    return new Uint8Array((await this.call('GET', '/v1/admin/metadata')).body);
  }
  async restoreMetadata(backup: Uint8Array): Promise<void> {
    await this.json('PUT', '/v1/admin/metadata', { body: backup });
  }

  private async json<R>(method: string, path: string, opts: CallOptions = {}): Promise<R> {
    const res = await this.call(method, path, opts);
    return JSON.parse(res.body.toString('utf8')) as R;
  }

  /** One API call with retries on 503/429/connection failures until the deadline. */
  async call(method: string, path: string, opts: CallOptions = {}): Promise<RawResponse> {
    const deadline = Date.now() + this.deadlineMs;
    const headers: Record<string, string> = { ...opts.headers };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (opts.write) headers['tessera-request-id'] = `${this.clientId}:${++this.requestCounter}`;
    let failure: TesseraError | undefined;
    // A write's attempt failed after its request may have reached the server: from then on, the
    // deadline answers OUTCOME_UNKNOWN, never a plain failure.
    let maybeDelivered = false;
    for (let attempt = 0; ; attempt++) {
      let retryAfterMs: number;
      try {
        const res = await this.once(method, path, headers, opts.body, deadline - Date.now());
        if (res.status < 400 || opts.accept?.includes(res.status)) return res;
        failure = toError(res);
        if (res.status !== 503 && res.status !== 429) throw failure;
        retryAfterMs = retryAfter(res.headers['retry-after']) ?? backoffMs(attempt);
      } catch (e) {
        if (e instanceof TesseraError) throw e;
        const code = (e as { code?: string }).code ?? '';
        if (code === 'DEADLINE') {
          // A write that may have reached the server has an unknown outcome; a read keeps its last error.
          if (opts.write) throw deadlineError(method, path, true);
          throw failure ?? deadlineError(method, path, false);
        }
        if (!retryableNetCodes.has(code) && (e as Error).message !== 'socket hang up') throw netError(e);
        failure = netError(e);
        if (!notSentNetCodes.has(code)) maybeDelivered = true;
        retryAfterMs = backoffMs(attempt);
      }
      if (Date.now() + retryAfterMs >= deadline) {
        if (opts.write && maybeDelivered) throw deadlineError(method, path, true);
        throw failure;
      }
      await sleep(retryAfterMs);
    }
  }

  private once(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | string | undefined,
    timeoutMs: number,
  ): Promise<RawResponse> {
    const mod = this.url.protocol === 'https:' ? https : http;
    const base = this.url.pathname.replace(/\/$/, '');
    return new Promise((resolve, reject) => {
      if (timeoutMs <= 0) return reject(Object.assign(new Error('deadline'), { code: 'DEADLINE' }));
      const req = mod.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname,
          port: this.url.port,
          method,
          path: base + path,
          headers,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > limits.clientResponseBytesMax) res.destroy(new Error('response too large'));
            else chunks.push(c);
          });
          res.once('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.once('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () =>
        req.destroy(Object.assign(new Error('deadline'), { code: 'DEADLINE' })),
      );
      req.once('error', reject);
      if (body !== undefined) req.setHeader('content-length', Buffer.byteLength(body));
      req.end(body);
    });
  }
}

function tablePath(name: string): string {
  return `/v1/tables/${encodeURIComponent(name)}`;
}

function itemPath(table: string, key: T.KeyLike): string {
  return `${tablePath(table)}/items/${percentEncodeBytes(enc(key))}`;
}

function conditionHeaders(opts: T.WriteOptions): Record<string, string> {
  const h: Record<string, string> = {};
  if (opts.ifMatch !== undefined) h['if-match'] = `"${opts.ifMatch}"`;
  if (opts.ifNoneMatch) h['if-none-match'] = '*';
  return h;
}

function etagSeq(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

function retryAfter(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,6}$/.test(v)) return undefined;
  return Number(v) * 1000;
}

function backoffMs(attempt: number): number {
  const cap = Math.min(limits.clientRetryBackoffMaxMs, limits.clientRetryBackoffMinMs * 2 ** attempt);
  return cap / 2 + Math.random() * (cap / 2);
}

/** The server's JSON error as a TesseraError (unknown codes, from a newer server, become INTERNAL). */
export function toError(res: RawResponse): TesseraError {
  let code = '';
  let message = `HTTP ${res.status}`;
  try {
    const e = (JSON.parse(res.body.toString('utf8')) as { error?: { code?: string; message?: string } })
      .error;
    code = e?.code ?? '';
    message = e?.message ?? message;
  } catch {
    // not JSON: keep the status line
  }
  if (Object.hasOwn(errorCodes, code)) return new TesseraError(code as ErrorCode, message);
  return new TesseraError('INTERNAL', code ? `${code}: ${message}` : message, { status: res.status });
}

function deadlineError(method: string, path: string, write: boolean): TesseraError {
  return write
    ? new TesseraError(
        'OUTCOME_UNKNOWN',
        `${method} ${path}: no answer before the deadline; the write may or may not have been applied`,
      )
    : new TesseraError('TIMEOUT', `${method} ${path}: no answer before the deadline`);
}

function netError(e: unknown): TesseraError {
  const err = e as { code?: string; message?: string };
  return new TesseraError('UNAVAILABLE', `cannot reach the server: ${err.code ?? err.message ?? String(e)}`);
}
