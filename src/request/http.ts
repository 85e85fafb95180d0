/**
 * The request manager's HTTP/1.1 server, on node:net with the parser of http1.ts (node:http cost
 * about twice the CPU per request: docs/performance.md). Keep-alive and pipelining (requests on a
 * connection run concurrently, answers leave in order), and bounded everywhere so that slow,
 * half-open or greedy clients can't exhaust it: in-flight requests (429 beyond), connections, head
 * size and field count, header and request time, idle keep-alive, body size (413 on Content-Length
 * before reading, and while reading a chunked body).
 */
import { STATUS_CODES } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { Counter, Gauge } from '../lib/metrics.js';
import { Api, type ApiOptions, type Pending } from './api.js';
import type { RequestBackend } from './backend.js';
import type { ApiResponse } from './format.js';
import { ChunkedDecoder, HttpParseError, headEnd, parseHead, type RequestHead } from './http1.js';

export interface HttpServerOptions extends ApiOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  inflightMax?: number;
  connectionsMax?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** How often headers/request/keep-alive timeouts are checked. */
  connectionsCheckIntervalMs?: number;
}

export interface RunningServer {
  api: Api;
  server: net.Server;
  frontend: HttpFrontend;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The most a request head (request line and fields) may take. */
const headBytesMax = 16 * 1024;
/** Bytes buffered past a head while its route decides about the body, before the socket pauses. */
const waitBytesMax = 64 * 1024;
const emptyBody = new Uint8Array(0);

/** A request's place in its connection's answer order. */
interface Slot {
  /** The answer, encoded, once known. */
  out: string | null;
  /** The answer's bytes are latin1 (a binary body), else UTF-8. */
  latin1: boolean;
  /** A large binary body, written after `out` (in the same corked write). */
  tail: Uint8Array | null;
  close: boolean;
  /** Expect: 100-continue to send once the earlier answers are out. */
  continueWanted: boolean;
}

function newSlot(close: boolean): Slot {
  return { out: null, latin1: false, tail: null, close, continueWanted: false };
}

/** A request the parser refused, as the error its answer carries. */
function parseFailure(e: unknown, what: string): TesseraError {
  if (!(e instanceof HttpParseError)) throw e;
  return new TesseraError(e.status === 431 ? 'HEADERS_TOO_LARGE' : 'BAD_REQUEST', `${what}: ${e.message}`);
}

interface BodyRead {
  /** The route's body limit and its 413. */
  readonly pending: Pending;
  size: number;
  readonly chunks: Buffer[];
  /** Content-Length bytes still to come (unused when chunked). */
  remaining: number;
  readonly decoder: ChunkedDecoder | null;
  readonly resolve: (b: Uint8Array) => void;
  readonly reject: (e: TesseraError) => void;
}

/** One client connection: its unread bytes, the parser's phase and the answers owed, in order. */
class Conn {
  readonly socket: net.Socket;
  private readonly fe: HttpFrontend;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** head: reading heads; wait: a route is deciding about a body; body: reading it; closing: done. */
  phase: 'head' | 'wait' | 'body' | 'closing' = 'head';
  headStartedMs = 0;
  requestStartedMs = 0;
  lastActiveMs: number;
  private readonly slots: Slot[] = [];
  private body: BodyRead | null = null;
  private pumping = false;
  private paused = false;
  private closed = false;

  constructor(fe: HttpFrontend, socket: net.Socket) {
    this.fe = fe;
    this.socket = socket;
    this.lastActiveMs = Date.now();
    socket.setNoDelay(true);
    socket.setTimeout(limits.httpSocketIdleTimeoutMs, () => socket.destroy());
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
  }

  get idle(): boolean {
    return this.slots.length === 0 && this.phase === 'head' && this.headStartedMs === 0;
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closing') return;
    this.lastActiveMs = Date.now();
    if (this.pos === this.buf.length) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
    this.pump();
  }

  private onClose(): void {
    this.closed = true;
    this.phase = 'closing';
    this.slots.length = 0;
    const b = this.body;
    this.body = null;
    b?.reject(new TesseraError('BAD_REQUEST', 'the client aborted the request'));
    this.fe.forget(this);
  }

  /** Parses what has arrived, as far as the phase allows. */
  private pump(): void {
    if (this.pumping) return; // re-entered from a route deciding synchronously: the loop goes on
    this.pumping = true;
    try {
      while (this.step());
    } finally {
      this.pumping = false;
    }
  }

  /** One parsing step; false when it has to wait for more bytes or for a route. */
  private step(): boolean {
    const buf = this.buf;
    switch (this.phase) {
      case 'head': {
        while (this.pos < buf.length && (buf[this.pos] === 13 || buf[this.pos] === 10)) this.pos++;
        if (this.pos === buf.length) {
          this.headStartedMs = 0;
          return false;
        }
        if (this.headStartedMs === 0) this.headStartedMs = this.requestStartedMs = Date.now();
        const end = headEnd(buf, this.pos);
        if ((end < 0 ? buf.length : end) - this.pos > headBytesMax) {
          this.fail(new TesseraError('HEADERS_TOO_LARGE', 'the request headers are too large'), 'headers');
          return false;
        }
        if (end < 0) return false;
        let head: RequestHead;
        try {
          head = parseHead(buf, this.pos, end, limits.httpHeadersCountMax);
        } catch (e) {
          this.fail(parseFailure(e, 'malformed HTTP request'), 'parse');
          return false;
        }
        this.pos = end;
        this.headStartedMs = 0;
        const slot = newSlot(!head.keepAlive);
        this.slots.push(slot);
        const hasBody = head.chunked || head.contentLength > 0;
        if (hasBody) this.phase = 'wait';
        else this.requestStartedMs = 0;
        void this.fe.handle(this, slot, head, hasBody);
        return true;
      }
      case 'wait':
        if (buf.length - this.pos > waitBytesMax && !this.paused) {
          this.paused = true;
          this.socket.pause();
        }
        return false;
      case 'body':
        return this.readBodyBytes();
      case 'closing':
        return false;
    }
  }

  private readBodyBytes(): boolean {
    const b = this.body!;
    const add = (d: Buffer): void => {
      b.size += d.length;
      if (b.size > b.pending.bodyBytesMax) {
        this.fe.countRejected('body');
        throw b.pending.bodyTooLarge();
      }
      b.chunks.push(d);
    };
    let complete: boolean;
    try {
      if (b.decoder !== null) {
        this.pos = b.decoder.feed(this.buf, this.pos, add);
        complete = b.decoder.done;
      } else {
        const n = Math.min(b.remaining, this.buf.length - this.pos);
        if (n > 0) add(this.buf.subarray(this.pos, this.pos + n));
        this.pos += n;
        b.remaining -= n;
        complete = b.remaining === 0;
      }
    } catch (e) {
      const err = e instanceof TesseraError ? e : parseFailure(e, 'malformed body');
      this.body = null;
      this.phase = 'closing'; // the rest of the body stays unread: the connection can't be reused
      b.reject(err);
      return false;
    }
    if (!complete) return false;
    this.body = null;
    this.phase = 'head';
    this.requestStartedMs = 0;
    const c = b.chunks;
    b.resolve(c.length === 1 ? (c[0] as Buffer) : c.length === 0 ? emptyBody : Buffer.concat(c, b.size));
    return true;
  }

  /** The route of `slot` (the last head read) accepts its body: read it, up to `pending`'s limit. */
  readBody(slot: Slot, head: RequestHead, pending: Pending): Promise<Uint8Array> {
    if (this.phase !== 'wait')
      return Promise.reject(new TesseraError('BAD_REQUEST', 'the connection closed'));
    return new Promise((resolve, reject) => {
      this.body = {
        pending,
        size: 0,
        chunks: [],
        remaining: head.chunked ? 0 : head.contentLength,
        decoder: head.chunked ? new ChunkedDecoder(headBytesMax) : null,
        resolve,
        reject,
      };
      this.phase = 'body';
      if (head.expectContinue) {
        slot.continueWanted = true;
        this.flush();
      }
      if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
      this.pump();
    });
  }

  /** The route refused the request before its body: nothing more is read on this connection. */
  skipBody(): void {
    if (this.phase === 'wait') this.phase = 'closing';
  }

  /** A request timed out while its body was being read: the route answers 408. */
  timeoutBody(): void {
    const b = this.body;
    if (b === null) return;
    this.body = null;
    this.phase = 'closing';
    b.reject(new TesseraError('REQUEST_TIMEOUT', 'the request did not arrive in time'));
  }

  /** A connection-level error (no route): its answer goes after those owed, then the connection closes. */
  fail(e: TesseraError, reason: string): void {
    this.fe.countRejected(reason);
    this.phase = 'closing';
    const slot = newSlot(true);
    this.slots.push(slot);
    this.answer(slot, null, this.fe.api.failure(e, 'unknown'), true);
  }

  /** Encodes the answer of `slot` and sends what is ready, in order. */
  answer(slot: Slot, head: RequestHead | null, out: ApiResponse, close: boolean): void {
    slot.close ||= close;
    const b = out.body;
    const text = typeof b === 'string';
    const bytes = text ? Buffer.byteLength(b, 'utf8') : b.length;
    let h = `HTTP/1.1 ${out.status} ${STATUS_CODES[out.status] ?? 'Unknown'}\r\n`;
    for (const k in out.headers) {
      const v = out.headers[k] as string;
      assert(!v.includes('\n') && !v.includes('\r'), `header ${k}: a line break in its value`);
      h += `${k}: ${v}\r\n`;
    }
    h += `date: ${httpDate()}\r\ncontent-length: ${bytes}\r\n`;
    if (slot.close) h += 'connection: close\r\n';
    else if (head?.minor === 0) h += 'connection: keep-alive\r\n';
    h += '\r\n';
    if (head?.method === 'HEAD' || bytes === 0) slot.out = h;
    else if (text) slot.out = h + b;
    else if (bytes <= limits.httpInlineBodyBytesMax) {
      // Small binary bodies leave as latin1, byte for byte, in the same string as the head.
      slot.out = h + Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
      slot.latin1 = true;
    } else {
      slot.out = h;
      slot.tail = b;
    }
    this.flush();
  }

  private flush(): void {
    if (this.closed) return;
    const s = this.socket;
    s.cork();
    while (this.slots.length > 0) {
      const first = this.slots[0]!;
      if (first.out === null) {
        if (first.continueWanted) {
          first.continueWanted = false;
          s.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
        }
        break;
      }
      this.slots.shift();
      s.write(first.out, first.latin1 ? 'latin1' : 'utf8');
      if (first.tail !== null) s.write(first.tail);
      if (first.close) {
        this.phase = 'closing';
        this.slots.length = 0;
        s.end();
        break;
      }
    }
    s.uncork();
    this.lastActiveMs = Date.now();
  }
}

let dateSecond = -1;
let dateText = '';

/** The Date field (RFC 9110 6.6.1), made once a second. */
function httpDate(): string {
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateText = new Date(sec * 1000).toUTCString();
  }
  return dateText;
}

export class HttpFrontend {
  readonly api: Api;
  readonly server: net.Server;
  /** Sees every request head as it is parsed, before any check (tests, debugging). */
  onHead: ((head: RequestHead) => void) | null = null;
  private inflight = 0;
  private readonly inflightMax: number;
  private readonly rejected: Counter;
  private readonly inflightGauge: Gauge;
  private readonly conns = new Set<Conn>();
  private readonly headersTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly sweeper: NodeJS.Timeout;

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
    this.headersTimeoutMs = opts.headersTimeoutMs ?? limits.httpHeadersTimeoutMs;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? limits.httpRequestTimeoutMs;
    this.keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? limits.httpKeepAliveTimeoutMs;
    this.server = net.createServer({ noDelay: true }, (socket) => this.conns.add(new Conn(this, socket)));
    this.server.maxConnections = opts.connectionsMax ?? limits.httpConnectionsMax;
    this.sweeper = setInterval(
      () => this.sweep(),
      opts.connectionsCheckIntervalMs ?? limits.httpConnectionsCheckIntervalMs,
    );
    this.sweeper.unref();
  }

  forget(conn: Conn): void {
    this.conns.delete(conn);
  }

  countRejected(reason: string): void {
    this.rejected.inc(1, reason);
  }

  /** Header and request timeouts (408, then close) and idle keep-alive connections (closed). */
  private sweep(): void {
    const now = Date.now();
    for (const c of this.conns) {
      if (c.phase === 'head' && c.headStartedMs > 0 && now - c.headStartedMs > this.headersTimeoutMs) {
        c.fail(new TesseraError('REQUEST_TIMEOUT', 'the request headers did not arrive in time'), 'timeout');
      } else if (c.phase === 'body' && now - c.requestStartedMs > this.requestTimeoutMs) {
        this.countRejected('timeout');
        c.timeoutBody();
      } else if (c.idle && now - c.lastActiveMs > this.keepAliveTimeoutMs) {
        c.socket.end();
        c.phase = 'closing';
      }
    }
  }

  /** Serves one request: route, checks, body, handler; the answer goes back through its slot. */
  async handle(conn: Conn, slot: Slot, head: RequestHead, hasBody: boolean): Promise<void> {
    const started = process.hrtime.bigint();
    this.onHead?.(head);
    if (this.inflight >= this.inflightMax) {
      this.countRejected('inflight');
      const out = this.api.failure(
        new TesseraError('TOO_MANY_REQUESTS', 'too many requests in flight'),
        'unknown',
      );
      this.api.record(this.api.opOf(head.method, head.url), out, started);
      if (hasBody) conn.skipBody();
      conn.answer(slot, head, out, hasBody);
      return;
    }
    this.inflight++;
    this.inflightGauge.set(this.inflight);
    let op = 'unknown';
    let out: ApiResponse;
    let bodyRead = !hasBody;
    try {
      const matched = this.api.match(head.method, head.url);
      op = matched.spec.op;
      const begun = this.api.begin(matched, head.headers);
      const pending = begun instanceof Promise ? await begun : begun;
      if (head.contentLength > pending.bodyBytesMax) {
        this.countRejected('body');
        throw pending.bodyTooLarge(); // the body stays unread: the connection closes after the answer
      }
      let body: Uint8Array = emptyBody;
      if (hasBody) {
        body = await conn.readBody(slot, head, pending);
        bodyRead = true;
      }
      out = await pending.run(body);
    } catch (e) {
      out = this.api.failure(e, op);
    } finally {
      this.inflight--;
      this.inflightGauge.set(this.inflight);
    }
    if (!bodyRead) conn.skipBody();
    this.api.record(op, out, started);
    if (this.api.log.enabled('debug')) {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.api.log.debug('request', { method: head.method, op, status: out.status, ms });
    }
    conn.answer(slot, head, out, !bodyRead);
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
    clearInterval(this.sweeper);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const c of this.conns) c.socket.destroy();
    });
  }
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
    frontend: fe,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => fe.close(),
  };
}
