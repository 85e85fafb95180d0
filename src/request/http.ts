/**
 * The request manager's HTTP server on node:http: keep-alive, and bounded everywhere so that slow,
 * half-open or greedy clients can't exhaust it: in-flight requests (429 beyond), connections,
 * header count and time, request time, idle keep-alive, body size (413 on Content-Length before
 * reading, and while streaming a chunked body).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Counter, Gauge } from '../lib/metrics.js';
import { Api, type ApiOptions, type Pending } from './api.js';
import type { RequestBackend } from './backend.js';
import type { ApiResponse } from './format.js';

export interface HttpServerOptions extends ApiOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  inflightMax?: number;
  connectionsMax?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** How often headers/request timeouts are checked. */
  connectionsCheckIntervalMs?: number;
}

export interface RunningServer {
  api: Api;
  server: http.Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

export class HttpFrontend {
  readonly api: Api;
  readonly server: http.Server;
  private inflight = 0;
  private readonly inflightMax: number;
  private readonly rejected: Counter;
  private readonly inflightGauge: Gauge;

  constructor(backend: RequestBackend, opts: HttpServerOptions = {}) {
    this.inflightMax = opts.inflightMax ?? limits.httpInflightMax;
    this.api = new Api(backend, { ...opts, inflight: () => this.inflight });
    const reg = this.api.registry;
    this.inflightGauge =
      (reg.get('tessera_http_inflight_requests') as Gauge | undefined) ??
      reg.gauge('tessera_http_inflight_requests', 'HTTP requests being served now.');
    this.rejected =
      (reg.get('tessera_http_rejected_total') as Counter | undefined) ??
      reg.counter(
        'tessera_http_rejected_total',
        'HTTP requests refused before reaching a handler, by reason.',
        ['reason'],
      );
    this.server = http.createServer({
      keepAlive: true,
      headersTimeout: opts.headersTimeoutMs ?? limits.httpHeadersTimeoutMs,
      requestTimeout: opts.requestTimeoutMs ?? limits.httpRequestTimeoutMs,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? limits.httpKeepAliveTimeoutMs,
      maxHeaderSize: 16 * 1024,
      connectionsCheckingInterval: opts.connectionsCheckIntervalMs ?? limits.httpConnectionsCheckIntervalMs,
      noDelay: true,
    });
    this.server.maxHeadersCount = limits.httpHeadersCountMax;
    this.server.maxConnections = opts.connectionsMax ?? limits.httpConnectionsMax;
    this.server.setTimeout(limits.httpSocketIdleTimeoutMs, (socket) => socket.destroy());
    this.server.on('request', (req, res) => void this.onRequest(req, res, false));
    this.server.on('checkContinue', (req, res) => void this.onRequest(req, res, true));
    this.server.on('clientError', (err, socket) => this.onClientError(err, socket));
  }

  /** A request node:http could not parse (or not in time): a JSON error, then close. */
  private onClientError(err: Error, socket: Duplex): void {
    const code = (err as { code?: string }).code;
    this.countRejected(code === undefined ? 'parse' : code.toLowerCase());
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const e =
      code === 'HPE_HEADER_OVERFLOW'
        ? new TesseraError('HEADERS_TOO_LARGE', 'the request headers are too large')
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new TesseraError('REQUEST_TIMEOUT', 'the request did not arrive in time')
          : new TesseraError('BAD_REQUEST', 'malformed HTTP request');
    const body = JSON.stringify(e.toJSON());
    socket.end(
      `HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status]}\r\nConnection: close\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  private countRejected(reason: string): void {
    this.rejected.inc(1, reason);
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean) {
    const started = process.hrtime.bigint();
    if (this.inflight >= this.inflightMax) {
      this.countRejected('inflight');
      const out = this.api.failure(
        new TesseraError('TOO_MANY_REQUESTS', 'too many requests in flight'),
        'unknown',
      );
      this.api.record(this.api.opOf(req.method ?? 'GET', req.url ?? '/'), out, started);
      this.send(req, res, out, true);
      return;
    }
    this.inflight++;
    this.inflightGauge.set(this.inflight);
    let op = 'unknown';
    let out: ApiResponse;
    let closeAfter = false;
    try {
      const matched = this.api.match(req.method ?? 'GET', req.url ?? '/');
      op = matched.spec.op;
      const begun = this.api.begin(matched, req.headers);
      const pending = begun instanceof Promise ? await begun : begun;
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > pending.bodyBytesMax) {
        closeAfter = true; // the body stays unread: the connection can't be reused
        this.countRejected('body');
        throw pending.bodyTooLarge();
      }
      if (expectsContinue) res.writeContinue();
      let body: Uint8Array;
      try {
        const read = readBody(req, pending);
        body = read instanceof Promise ? await read : read;
      } catch (e) {
        closeAfter = true;
        throw e;
      }
      out = await pending.run(body);
    } catch (e) {
      out = this.api.failure(e, op);
      if (!req.complete) closeAfter = true;
    } finally {
      this.inflight--;
      this.inflightGauge.set(this.inflight);
    }
    this.api.record(op, out, started);
    if (this.api.log.enabled('debug')) {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.api.log.debug('request', { method: req.method, op, status: out.status, ms });
    }
    this.send(req, res, out, closeAfter);
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, out: ApiResponse, close: boolean): void {
    if (res.headersSent || res.destroyed) return;
    // A string body (or a small binary one as latin1, byte for byte) leaves in the same socket
    // write as the head: node:http prepends its header string to a string chunk, while a Buffer
    // chunk goes out corked as a second chunk of a writev.
    const b = out.body;
    const text = typeof b === 'string';
    const inline = text || b.length <= limits.httpInlineBodyBytesMax;
    const bytes = text ? Buffer.byteLength(b, 'utf8') : b.length;
    // One flat [name, value, ...] list straight to writeHead: no per-header setHeader bookkeeping.
    const headers: string[] = [];
    for (const k in out.headers) headers.push(k, out.headers[k] as string);
    headers.push('content-length', String(bytes));
    if (close) headers.push('connection', 'close');
    res.writeHead(out.status, headers);
    if (req.method === 'HEAD') res.end();
    else if (text) res.end(b, 'utf8');
    else if (inline) res.end(Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'), 'latin1');
    else res.end(b);
    if (close) res.on('finish', () => req.socket.destroySoon?.());
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

const emptyBody = new Uint8Array(0);

/** Reads the body, failing with the pending route's 413 as soon as it grows past its limit. */
function readBody(req: http.IncomingMessage, pending: Pending): Promise<Uint8Array> | Uint8Array {
  const h = req.headers;
  if (
    h['transfer-encoding'] === undefined &&
    (h['content-length'] === undefined || h['content-length'] === '0')
  ) {
    req.resume(); // no body (RFC 9112 6.3): don't wait for 'end'
    return emptyBody;
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > pending.bodyBytesMax) {
        req.off('data', onData);
        req.pause();
        reject(pending.bodyTooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)));
    req.once('error', (e) =>
      reject(new TesseraError('BAD_REQUEST', `reading the body failed: ${e.message}`)),
    );
    req.once('aborted', () => reject(new TesseraError('BAD_REQUEST', 'the client aborted the request')));
  });
}

/** Starts a request manager HTTP server on host:port (0 = any free port). */
export async function startHttpServer(
  backend: RequestBackend,
  opts: HttpServerOptions = {},
): Promise<RunningServer> {
  const fe = new HttpFrontend(backend, opts);
  const host = opts.host ?? '127.0.0.1';
  const port = await fe.listen(opts.port ?? 0, host);
  fe.api.log.info('listening', { host, port });
  return {
    api: fe.api,
    server: fe.server,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => fe.close(),
  };
}
