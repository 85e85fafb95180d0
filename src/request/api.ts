/**
 * The HTTP API of the request manager without sockets: route table, authentication, validation,
 * handlers, error mapping and metrics. http.ts feeds it from node:http; tests can call `handle`.
 *
 * Pipeline per request (the order decides which error wins):
 *   match path (404) and method (405) -> token (401) -> path params (400/413 key) -> scope/role (403)
 *   -> body size (413, checked on Content-Length before reading and while streaming) -> handler.
 */
import { AssertionError } from '../lib/assert.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { createLogger, type Logger } from '../lib/log.js';
import {
  type Counter,
  type CounterChild,
  defaultRegistry,
  type Histogram,
  type HistogramChild,
  prometheusContentType,
  type Registry,
} from '../lib/metrics.js';
import { type Access, authorize, bearerToken, hashToken, type Principal } from './auth.js';
import type { RequestBackend, RequestId, TokenRecord } from './backend.js';
import { ClusterMetrics, type ClusterMetricsOptions } from './cluster-metrics.js';
import { dashboardHtml } from './dashboard.js';
import { type ApiResponse, errorResponse, type Headers, header, itemKey, json, tableName } from './format.js';
import * as h from './handlers.js';

type BodyKind = 'none' | 'json' | 'value' | 'metadata';

interface MethodSpec {
  op: string;
  access: Access;
  body: BodyKind;
  run: h.Handler;
}

interface Route {
  /** Literal segments, or ':table' / ':key' / ':token' parameters. */
  path: string[];
  methods: Record<string, MethodSpec>;
}

const spec = (op: string, access: Access, body: BodyKind, run: h.Handler): MethodSpec => ({
  op,
  access,
  body,
  run,
});

const bodyLimits: Record<BodyKind, { max: number; code: 'BODY_TOO_LARGE' | 'VALUE_TOO_LARGE' }> = {
  none: { max: limits.httpJsonBodyBytesMax, code: 'BODY_TOO_LARGE' },
  json: { max: limits.httpJsonBodyBytesMax, code: 'BODY_TOO_LARGE' },
  value: { max: limits.valueBytesMax, code: 'VALUE_TOO_LARGE' },
  metadata: { max: limits.httpMetadataBodyBytesMax, code: 'BODY_TOO_LARGE' },
};

export interface ApiRequest {
  method: string;
  /** Raw request target: path and query, percent-encoded as received. */
  url: string;
  /** Lower-case header names, as node:http gives them. */
  headers: Headers;
  body?: Uint8Array;
}

/** A request that passed routing, authentication and validation, waiting for its body. */
export interface Pending {
  op: string;
  bodyBytesMax: number;
  /** The 413 to answer when the body passes bodyBytesMax. */
  bodyTooLarge(): TesseraError;
  run(body: Uint8Array): Promise<ApiResponse>;
}

export interface ApiOptions {
  registry?: Registry;
  logger?: Logger;
  /** Names this request manager in request ids it makes up (random by default). */
  instanceId?: string;
  /** Current in-flight count, for /v1/stats (set by the HTTP server). */
  inflight?: () => number;
  /**
   * Adds the cluster-wide families (cluster-metrics.ts, from backend.cluster(), cached) to
   * /metrics. Off by default; the request manager process turns it on.
   */
  clusterMetrics?: boolean | ClusterMetricsOptions;
}

export class Api {
  readonly backend: RequestBackend;
  readonly registry: Registry;
  readonly log: Logger;
  private readonly routes: Route[];
  private readonly latency: Histogram;
  private readonly requests: Counter;
  private readonly instanceId: string;
  private readonly inflight: () => number;
  private readonly startedAt = Date.now();
  private requestCounter = 0;
  private readonly tokenHashes = new Map<string, string>();
  private readonly tableNames = new Map<string, string>();
  /** op -> code -> the latency and count series (labels() joins strings per call). */
  private readonly series = new Map<string, Map<string, { latency: HistogramChild; count: CounterChild }>>();
  private readonly clusterMetrics: ClusterMetrics | null;

  constructor(backend: RequestBackend, opts: ApiOptions = {}) {
    this.backend = backend;
    this.registry = opts.registry ?? defaultRegistry;
    this.log = opts.logger ?? createLogger('request');
    this.instanceId = opts.instanceId ?? `rm${process.pid.toString(36)}${Date.now().toString(36)}`;
    this.inflight = opts.inflight ?? (() => 0);
    this.latency =
      (this.registry.get('tessera_http_request_duration_seconds') as Histogram | undefined) ??
      this.registry.histogram(
        'tessera_http_request_duration_seconds',
        'HTTP API request latency by operation and result code.',
        ['op', 'code'],
      );
    this.requests =
      (this.registry.get('tessera_http_requests_total') as Counter | undefined) ??
      this.registry.counter(
        'tessera_http_requests_total',
        'HTTP API requests by operation and result code.',
        ['op', 'code'],
      );
    const cm = opts.clusterMetrics ?? false;
    this.clusterMetrics =
      cm === false
        ? null
        : new ClusterMetrics(() => backend.cluster(), {
            ...(cm === true ? {} : cm),
            onError: (e) => this.log.debug('cluster metrics unavailable', { err: e }),
          });
    this.routes = this.routeTable();
  }

  private routeTable(): Route[] {
    const r = (path: string, methods: Record<string, MethodSpec>): Route => ({
      path: path.split('/'),
      methods,
    });
    return [
      r('/v1/health', { GET: spec('health', 'public', 'none', h.health) }),
      r('/v1/tables', { GET: spec('table.list', 'read', 'none', h.listTables) }),
      r('/v1/tables/:table', {
        GET: spec('table.describe', 'read', 'none', h.describeTable),
        PUT: spec('table.create', 'admin', 'json', h.createTable),
        DELETE: spec('table.drop', 'admin', 'none', h.dropTable),
      }),
      r('/v1/tables/:table/items', { GET: spec('item.scan', 'read', 'none', h.scan) }),
      r('/v1/tables/:table/items/:key', {
        GET: spec('item.get', 'read', 'none', h.getItem),
        PUT: spec('item.put', 'write', 'value', h.putItem),
        DELETE: spec('item.delete', 'write', 'none', h.deleteItem),
      }),
      r('/v1/cluster', { GET: spec('cluster', 'read', 'none', h.cluster) }),
      r('/v1/stats', { GET: spec('stats', 'read', 'none', async () => json(200, this.stats())) }),
      r('/v1/tokens', {
        GET: spec('token.list', 'admin', 'none', h.listTokens),
        POST: spec('token.create', 'admin', 'json', h.createToken),
      }),
      r('/v1/tokens/:token', { DELETE: spec('token.revoke', 'admin', 'none', h.revokeToken) }),
      r('/v1/admin/metadata', {
        GET: spec('metadata.backup', 'admin', 'none', h.backupMetadata),
        PUT: spec('metadata.restore', 'admin', 'metadata', h.restoreMetadata),
      }),
      r('/metrics', { GET: spec('metrics', 'public', 'none', async () => this.metricsResponse()) }),
      r('/dashboard', { GET: spec('dashboard', 'public', 'none', async () => dashboardResponse()) }),
    ];
  }

  /** Finds the route: NOT_FOUND or METHOD_NOT_ALLOWED (with the allowed methods). */
  match(method: string, url: string): { spec: MethodSpec; params: Map<string, string>; query: string } {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const segments = path.split('/');
    for (const route of this.routes) {
      const params = matchPath(route.path, segments);
      if (params === null) continue;
      const m = method === 'HEAD' ? 'GET' : method;
      const s = route.methods[m];
      if (s === undefined) {
        const allow = Object.keys(route.methods);
        if (allow.includes('GET')) allow.push('HEAD');
        throw new TesseraError('METHOD_NOT_ALLOWED', `${method} is not allowed here`, { allow });
      }
      return { spec: s, params, query };
    }
    throw new TesseraError('NOT_FOUND', 'no such route');
  }

  /** The metrics name of a request's operation ('unknown' when no route matches). */
  opOf(method: string, url: string): string {
    try {
      return this.match(method, url).spec.op;
    } catch {
      return 'unknown';
    }
  }

  /**
   * Routing, token, path parameters and permissions; the body comes later. Synchronous (no promise)
   * when the route is public or the token is in the backend's in-memory catalog.
   */
  begin(matched: ReturnType<Api['match']>, headers: Headers): Pending | Promise<Pending> {
    if (matched.spec.access === 'public') return this.prepare(matched, headers, null);
    const hash = this.tokenHash(bearerToken(header(headers, 'authorization')));
    const known = this.backend.cachedToken?.(hash);
    if (known !== undefined) return this.prepare(matched, headers, principalOf(known));
    return this.backend.verifyToken(hash).then((record) => {
      if (record === null) throw new TesseraError('UNAUTHORIZED', 'unknown or revoked token');
      return this.prepare(matched, headers, principalOf(record));
    });
  }

  private prepare(matched: ReturnType<Api['match']>, headers: Headers, principal: Principal | null): Pending {
    const { spec: s, params, query } = matched;
    const tableSeg = params.get('table');
    const table = tableSeg === undefined ? '' : this.tableName(tableSeg);
    const keySeg = params.get('key');
    const key = keySeg === undefined ? new Uint8Array(0) : itemKey(keySeg);
    if (principal !== null) authorize(principal, s.access, tableSeg === undefined ? null : table);
    const requestId = this.requestIdFrom(headers, principal);
    const ctx: h.Ctx = {
      backend: this.backend,
      principal,
      table,
      key,
      tokenId: params.get('token') ?? '',
      query,
      headers,
      requestId,
    };
    const lim = bodyLimits[s.body];
    return {
      op: s.op,
      bodyBytesMax: lim.max,
      bodyTooLarge: () => new TesseraError(lim.code, `the body is larger than ${lim.max} bytes`),
      run: (body) => s.run(ctx, body),
    };
  }

  /** A table name from its path segment, from a bounded cache of segments already checked. */
  private tableName(segment: string): string {
    let name = this.tableNames.get(segment);
    if (name === undefined) {
      name = tableName(segment);
      if (this.tableNames.size >= limits.rmTableNameCacheMax) this.tableNames.clear();
      this.tableNames.set(segment, name);
    }
    return name;
  }

  /** sha256 of a bearer secret, from a bounded cache (a hash per request was a visible CPU cost). */
  private tokenHash(secret: string): string {
    let h = this.tokenHashes.get(secret);
    if (h === undefined) {
      h = hashToken(secret);
      if (this.tokenHashes.size >= limits.rmTokenHashCacheMax) this.tokenHashes.clear();
      this.tokenHashes.set(secret, h);
    }
    return h;
  }

  /** `Tessera-Request-Id: <client>:<n>` from the client (for exactly-once retries), or one made up. */
  private requestIdFrom(headers: Headers, principal: Principal | null): () => RequestId {
    const v = header(headers, 'tessera-request-id');
    if (v === undefined) return () => ({ clientId: this.instanceId, n: ++this.requestCounter });
    const m = /^([A-Za-z0-9_-]{1,64}):([0-9]{1,15})$/.exec(v);
    if (m === null) throw new TesseraError('BAD_REQUEST', 'Tessera-Request-Id must be <client>:<number>');
    // Scoped by token id so that one client can't collide with (or replay) another's ids.
    const id: RequestId = { clientId: `${principal?.id ?? 'anon'}.${m[1]}`, n: Number(m[2]) };
    return () => id;
  }

  /** The whole pipeline on an in-memory request (tests without sockets use this). */
  async handle(req: ApiRequest): Promise<ApiResponse> {
    const started = process.hrtime.bigint();
    let op = 'unknown';
    let res: ApiResponse;
    try {
      const matched = this.match(req.method, req.url);
      op = matched.spec.op;
      const pending = await this.begin(matched, req.headers);
      const body = req.body ?? new Uint8Array(0);
      if (body.length > pending.bodyBytesMax) throw pending.bodyTooLarge();
      res = await pending.run(body);
    } catch (e) {
      res = this.failure(e, op);
    }
    this.record(op, res, started);
    return res;
  }

  /** Maps an error to its response; a bug (assertion) is rethrown to crash, never answered. */
  failure(e: unknown, op: string): ApiResponse {
    if (e instanceof AssertionError) throw e;
    if (isTesseraError(e)) return errorResponse(e);
    this.log.error('unexpected error', { op, err: e });
    return errorResponse(new TesseraError('INTERNAL', 'internal error'));
  }

  record(op: string, res: ApiResponse, started: bigint): void {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const code = resultCode(res);
    let byCode = this.series.get(op);
    if (byCode === undefined) {
      byCode = new Map();
      this.series.set(op, byCode);
    }
    let s = byCode.get(code);
    if (s === undefined) {
      s = { latency: this.latency.labels(op, code), count: this.requests.labels(op, code) };
      byCode.set(code, s);
    }
    s.latency.observe(seconds);
    s.count.inc();
  }

  private async metricsResponse(): Promise<ApiResponse> {
    const cluster = this.clusterMetrics === null ? '' : await this.clusterMetrics.text();
    const body = this.registry.expose() + cluster;
    return { status: 200, headers: { 'content-type': prometheusContentType }, body };
  }

  /** A JSON summary for the dashboard: counts and latency buckets per operation and code. */
  stats(): Record<string, unknown> {
    return {
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      inflight: this.inflight(),
      bucket_bounds_s: this.latency.buckets,
      ops: this.latency.series().map(({ values, child }) => ({
        op: values[0],
        code: values[1],
        count: child.count,
        sum_s: child.sum,
        buckets: child.counts,
      })),
    };
  }
}

/** The principal of a token record, made once per record (records are cached by the backend). */
const principals = new WeakMap<TokenRecord, Principal>();
function principalOf(r: TokenRecord): Principal {
  let p = principals.get(r);
  if (p === undefined) {
    p = { id: r.id, role: r.role, table: r.table };
    principals.set(r, p);
  }
  return p;
}

function matchPath(pattern: string[], segments: string[]): Map<string, string> | null {
  if (pattern.length !== segments.length) return null;
  const params = new Map<string, string>();
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segments[i] as string;
    if (p.startsWith(':')) params.set(p.slice(1), s);
    else if (p !== s) return null;
  }
  return params;
}

/** The `code` label: OK for success, else the error code of the JSON body. */
function resultCode(res: ApiResponse): string {
  if (res.status < 400) return 'OK';
  if (typeof res.body === 'string') {
    const m = /"code":"([A-Z_]+)"/.exec(res.body);
    if (m !== null) return m[1] as string;
  }
  return String(res.status);
}

function dashboardResponse(): ApiResponse {
  return {
    status: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'content-security-policy':
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
    },
    body: dashboardHtml,
  };
}
