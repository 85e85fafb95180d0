/**
 * One authenticated TCP connection between two members: handshake, framing, batched writes,
 * request correlation with deadlines, keep-alive pings. The Transport (transport.ts) owns the
 * connections, their reconnection and the dispatch of application frames to handlers.
 *
 * Batching: frames queued in one turn of the event loop (every I/O callback of one poll phase:
 * e.g. the kv requests of many HTTP connections) are written together by a setImmediate, small
 * ones copied into one buffer, large payloads passed by reference (no copy), all in one corked
 * write (one writev, one syscall). No timer is involved, so a lone frame leaves in the same turn.
 */
import type { Socket } from 'node:net';
import { pack, unpack } from 'msgpackr';
import { assert } from '../lib/assert.js';
import { type ErrorCode, errorCodes, TesseraError } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import {
  type Frame,
  FrameDecoder,
  FrameType,
  type FrameTypeCode,
  frameHeaderBytes,
  writeFrameHeader,
} from './frame.js';
import {
  computeProof,
  decodeHello,
  decodeHelloAck,
  encodeHello,
  encodeHelloAck,
  handshakeVersion,
  handshakeVersionMin,
  negotiateVersion,
  newNonce,
  type PeerIdentity,
  proofMatches,
} from './handshake.js';
import type { TransportLimits, TransportLog } from './options.js';

export interface ConnectionHooks {
  /** Called once, when the handshake has succeeded. */
  onOpen(conn: Connection): void;
  /** Application frames (message, request) after the handshake. */
  onFrame(conn: Connection, frame: Frame): void;
  /** Called once, when the socket is closed, with the reason (null for a local close()). */
  onClose(conn: Connection, reason: Error | null): void;
}

export interface ConnectionOptions {
  socket: Socket;
  side: 'client' | 'server';
  self: PeerIdentity;
  secret: Uint8Array;
  /** Client side: the node id the server must announce. */
  expectNodeId?: NodeId;
  limits: TransportLimits;
  log: TransportLog;
  hooks: ConnectionHooks;
  /** True when the fault switch blocks frames from us to this peer: they are dropped silently. */
  outboundBlocked: (peer: NodeId) => boolean;
}

interface Outgoing {
  type: FrameTypeCode;
  kind: number;
  id: number;
  payload: Uint8Array;
}

interface PendingRequest {
  resolve: (payload: Uint8Array) => void;
  reject: (e: TesseraError) => void;
  timer: NodeJS.Timeout;
}

const empty = new Uint8Array(0);

export class Connection {
  readonly side: 'client' | 'server';
  /** The authenticated peer; null until the handshake is done. */
  peer: PeerIdentity | null = null;
  state: 'handshake' | 'open' | 'closed' = 'handshake';
  framesSent = 0;
  framesReceived = 0;
  writeBatches = 0;
  /** Frames dropped by the fault switch. */
  framesDropped = 0;

  private readonly socket: Socket;
  private readonly opts: ConnectionOptions;
  private readonly decoder: FrameDecoder;
  private clientNonce: Uint8Array | null = null;
  private serverNonce: Uint8Array | null = null;
  private version = handshakeVersion;
  private pending: Outgoing[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private nextId = 1;
  private readonly requests = new Map<number, PendingRequest>();
  private serverInflight = 0;
  private lastReceiveMs = Date.now();
  private timer: NodeJS.Timeout;
  private drainWaiters: Array<() => void> = [];
  private closeReason: Error | null = null;
  private failed = false;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
    this.side = opts.side;
    this.socket = opts.socket;
    this.decoder = new FrameDecoder(opts.limits.handshakeFrameBytesMax, (f) => this.onFrame(f));
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e) => (this.closeReason ??= e));
    this.socket.on('close', () => this.onSocketClose());
    this.socket.on('drain', () => this.checkDrain());
    this.timer = setTimeout(() => this.fail('handshake timeout'), opts.limits.handshakeTimeoutMs).unref();
    if (this.side === 'client') this.sendHello();
  }

  usesSocket(socket: Socket): boolean {
    return this.socket === socket;
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /** Bytes accepted for sending and not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  get requestsInflight(): number {
    return this.requests.size;
  }

  /** Queues a one-way message. Throws SEND_QUEUE_FULL or FRAME_TOO_LARGE. */
  sendMessage(kind: number, payload: Uint8Array): void {
    this.enqueue(FrameType.message, kind, 0, payload);
  }

  request(kind: number, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    assert(this.state === 'open', 'request on a connection that is not open');
    if (this.requests.size >= this.opts.limits.requestsInflightPerConnectionMax) {
      return Promise.reject(
        new TesseraError('TOO_MANY_REQUESTS', 'too many requests in flight to this peer'),
      );
    }
    const id = this.nextId;
    this.nextId = this.nextId === 0xffff_ffff ? 1 : this.nextId + 1;
    try {
      this.enqueue(FrameType.request, kind, id, payload);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(id);
        reject(
          new TesseraError('TIMEOUT', `request timed out after ${timeoutMs} ms`, { maybeDelivered: true }),
        );
      }, timeoutMs).unref();
      this.requests.set(id, { resolve, reject, timer });
    });
  }

  /** Answers request `id`; a full send queue or a closed connection drops the answer (logged). */
  respond(kind: number, id: number, payload: Uint8Array): void {
    this.answer(FrameType.response, kind, id, payload);
  }

  /** Forgets request `id` without answering (the fault switch dropped it). */
  respondDropped(): void {
    this.serverInflight--;
    assert(this.serverInflight >= 0, 'more answers than requests');
  }

  respondError(kind: number, id: number, error: TesseraError): void {
    const body = pack({ code: error.code, message: error.message, detail: error.detail ?? null });
    this.answer(FrameType.errorResponse, kind, id, body);
  }

  /** Resolves when the queue is below half its bound (at once if it is), or when closed. */
  waitDrain(): Promise<void> {
    if (this.state === 'closed' || this.queuedBytes <= this.opts.limits.sendQueueBytesMax / 2) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    if (this.state === 'closed') return;
    this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref(); // the peer may never close its side
  }

  /**
   * Closes after a protocol or authentication failure and logs why: at once, or `graceful`ly (what
   * was written, e.g. a REJECT, is flushed first; destroyed after a second anyway).
   */
  fail(reason: string, error?: Error, graceful = false): void {
    if (this.failed || this.state === 'closed' || this.socket.destroyed) return;
    this.failed = true;
    this.opts.log.warn('transport connection closed', {
      reason,
      error: error?.message,
      remote: this.remoteAddress,
      peer: this.peer?.nodeId,
      side: this.side,
    });
    this.closeReason = new TesseraError('UNAVAILABLE', `connection closed: ${reason}`);
    if (!graceful) return void this.socket.destroy();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Sends a transport-level frame at once (handshake, ping), bypassing the batch queue. */
  private sendNow(type: FrameTypeCode, payload: Uint8Array): void {
    const b = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
    writeFrameHeader(b, 0, type, 0, 0, 0, payload);
    b.set(payload, frameHeaderBytes);
    this.socket.write(b);
  }

  private answer(type: FrameTypeCode, kind: number, id: number, payload: Uint8Array): void {
    if (this.state !== 'open') return;
    this.serverInflight--;
    assert(this.serverInflight >= 0, 'more answers than requests');
    try {
      this.enqueue(type, kind, id, payload);
    } catch (e) {
      this.opts.log.warn('transport response dropped', {
        error: (e as Error).message,
        peer: this.peer?.nodeId,
      });
    }
  }

  private enqueue(type: FrameTypeCode, kind: number, id: number, payload: Uint8Array): void {
    if (this.state !== 'open') throw new TesseraError('UNAVAILABLE', 'connection is not open');
    const size = frameHeaderBytes + payload.length;
    if (size > this.opts.limits.frameBytesMax) {
      throw new TesseraError('FRAME_TOO_LARGE', `frame of ${size} bytes > ${this.opts.limits.frameBytesMax}`);
    }
    if (this.peer !== null && this.opts.outboundBlocked(this.peer.nodeId)) {
      this.framesDropped++;
      return;
    }
    if (this.queuedBytes + size > this.opts.limits.sendQueueBytesMax) {
      throw new TesseraError('SEND_QUEUE_FULL', `send queue to node ${this.peer?.nodeId} is full`, {
        queuedBytes: this.queuedBytes,
      });
    }
    this.pending.push({ type, kind, id, payload });
    this.pendingBytes += size;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Not a microtask: those run after EACH I/O callback, so frames queued by the callbacks of
      // one poll phase would leave one syscall each (the biggest CPU cost of a loaded RM/leader).
      setImmediate(() => this.flush());
    }
  }

  /** Writes every queued frame in one corked write: small frames coalesced, large payloads by reference. */
  private flush(): void {
    this.flushScheduled = false;
    const frames = this.pending;
    if (frames.length === 0 || this.socket.destroyed) return;
    this.pending = [];
    const coalesceMax = this.opts.limits.frameCoalesceBytesMax;
    let small = 0;
    for (const f of frames)
      small += frameHeaderBytes + (f.payload.length <= coalesceMax ? f.payload.length : 0);
    const buf = Buffer.allocUnsafe(small);
    const chunks: Uint8Array[] = [];
    let pos = 0;
    let chunkStart = 0;
    for (const f of frames) {
      writeFrameHeader(buf, pos, f.type, 0, f.kind, f.id, f.payload);
      pos += frameHeaderBytes;
      if (f.payload.length <= coalesceMax) {
        buf.set(f.payload, pos);
        pos += f.payload.length;
      } else {
        chunks.push(buf.subarray(chunkStart, pos), f.payload);
        chunkStart = pos;
      }
    }
    assert(pos === small, 'coalesce size mismatch');
    if (chunkStart < pos) chunks.push(buf.subarray(chunkStart, pos));
    this.socket.cork();
    for (const c of chunks) this.socket.write(c);
    this.socket.uncork();
    this.pendingBytes = 0;
    this.framesSent += frames.length;
    this.writeBatches++;
  }

  private checkDrain(): void {
    if (this.drainWaiters.length === 0) return;
    if (this.state !== 'closed' && this.queuedBytes > this.opts.limits.sendQueueBytesMax / 2) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private onData(chunk: Buffer): void {
    if (this.failed || this.state === 'closed') return;
    this.lastReceiveMs = Date.now();
    try {
      this.decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof TesseraError)) throw e;
      this.fail('bad frame', e);
    }
  }

  private onFrame(f: Frame): void {
    if (this.failed || this.socket.destroyed) return;
    this.framesReceived++;
    if (this.state === 'handshake') {
      this.onHandshakeFrame(f);
      return;
    }
    switch (f.type) {
      case FrameType.message:
        this.opts.hooks.onFrame(this, f);
        return;
      case FrameType.request:
        this.onRequestFrame(f);
        return;
      case FrameType.response:
      case FrameType.errorResponse:
        this.onResponseFrame(f);
        return;
      case FrameType.ping:
        this.sendNow(FrameType.pong, empty);
        return;
      case FrameType.pong:
        return;
      default:
        this.fail(`unexpected frame type ${f.type} after the handshake`);
        return;
    }
  }

  private onRequestFrame(f: Frame): void {
    this.serverInflight++;
    if (this.serverInflight > this.opts.limits.requestsInflightPerConnectionMax) {
      this.respondError(f.kind, f.id, new TesseraError('TOO_MANY_REQUESTS', 'too many requests in flight'));
      return;
    }
    this.opts.hooks.onFrame(this, f);
  }

  private onResponseFrame(f: Frame): void {
    const p = this.requests.get(f.id);
    if (p === undefined) return; // answered after its deadline: dropped
    this.requests.delete(f.id);
    clearTimeout(p.timer);
    if (f.type === FrameType.response) {
      p.resolve(f.payload);
      return;
    }
    p.reject(decodeError(f.payload));
  }

  private sendHello(): void {
    this.clientNonce = newNonce();
    const self = this.opts.self;
    const hello = {
      versionMin: handshakeVersionMin,
      versionMax: handshakeVersion,
      ...self,
      nonce: this.clientNonce,
    };
    this.sendNow(FrameType.hello, encodeHello(hello));
  }

  private onHandshakeFrame(f: Frame): void {
    if (f.type === FrameType.reject) {
      this.fail(`refused by peer: ${Buffer.from(f.payload).toString()}`);
      return;
    }
    const next =
      this.side === 'server'
        ? this.peer === null
          ? FrameType.hello
          : FrameType.auth
        : this.serverNonce === null
          ? FrameType.helloAck
          : FrameType.authOk;
    if (f.type !== next) {
      this.refuse(`unexpected frame type ${f.type} in the handshake`);
      return;
    }
    if (f.type === FrameType.hello) {
      this.onHello(f.payload);
      return;
    }
    if (f.type === FrameType.helloAck) {
      this.onHelloAck(f.payload);
      return;
    }
    if (f.type === FrameType.auth) {
      this.onAuth(f.payload);
      return;
    }
    this.open();
    return;
  }

  private onHello(payload: Uint8Array): void {
    const hello = decodeHello(payload);
    if (hello === null) {
      this.refuse('malformed hello');
      return;
    }
    const version = negotiateVersion(hello);
    if (version === null) {
      this.refuse(`no common handshake version (${hello.versionMin}-${hello.versionMax})`);
      return;
    }
    this.version = version;
    this.peer = { nodeId: hello.nodeId, role: hello.role };
    this.clientNonce = Buffer.from(hello.nonce);
    this.serverNonce = newNonce();
    const proof = computeProof(this.opts.secret, this.proofInput('server'));
    const self = this.opts.self;
    this.sendNow(FrameType.helloAck, encodeHelloAck({ version, ...self, nonce: this.serverNonce, proof }));
  }

  private onHelloAck(payload: Uint8Array): void {
    const ack = decodeHelloAck(payload);
    if (ack === null) {
      this.refuse('malformed hello-ack');
      return;
    }
    if (ack.version < handshakeVersionMin || ack.version > handshakeVersion) {
      this.refuse(`unsupported handshake version ${ack.version}`);
      return;
    }
    const expect = this.opts.expectNodeId;
    if (expect !== undefined && ack.nodeId !== expect) {
      this.refuse(`expected node ${expect} but node ${ack.nodeId} answered`);
      return;
    }
    this.version = ack.version;
    this.peer = { nodeId: ack.nodeId, role: ack.role };
    this.serverNonce = Buffer.from(ack.nonce);
    if (!proofMatches(computeProof(this.opts.secret, this.proofInput('server')), ack.proof)) {
      this.refuse('authentication failed: the server does not know the cluster secret');
      return;
    }
    this.sendNow(FrameType.auth, computeProof(this.opts.secret, this.proofInput('client')));
  }

  private onAuth(payload: Uint8Array): void {
    if (!proofMatches(computeProof(this.opts.secret, this.proofInput('client')), payload)) {
      this.refuse('authentication failed: the client does not know the cluster secret');
      return;
    }
    this.sendNow(FrameType.authOk, empty);
    this.open();
  }

  private proofInput(side: 'client' | 'server') {
    const peer = this.peer;
    assert(peer !== null && this.clientNonce !== null && this.serverNonce !== null, 'handshake state');
    const self = this.opts.self;
    const [client, server] = this.side === 'client' ? [self, peer] : [peer, self];
    const { clientNonce, serverNonce, version } = this;
    return { side, version, clientNonce, serverNonce, client, server };
  }

  /** Tells the peer why (best effort), logs, and closes. */
  private refuse(reason: string): void {
    this.sendNow(FrameType.reject, Buffer.from(reason));
    this.fail(reason, undefined, true);
  }

  private open(): void {
    assert(this.peer !== null, 'open without a peer');
    this.state = 'open';
    this.decoder.payloadBytesMax = this.opts.limits.frameBytesMax - frameHeaderBytes;
    clearTimeout(this.timer);
    const interval = this.opts.limits.transportPingIntervalMs;
    this.timer = setInterval(() => this.keepAlive(), interval).unref();
    this.opts.hooks.onOpen(this);
  }

  private keepAlive(): void {
    const silentMs = Date.now() - this.lastReceiveMs;
    if (silentMs > this.opts.limits.transportIdleTimeoutMs) {
      this.fail(`no frame for ${silentMs} ms`);
      return;
    }
    if (silentMs >= this.opts.limits.transportPingIntervalMs) this.sendNow(FrameType.ping, empty);
  }

  private onSocketClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.pending = [];
    this.pendingBytes = 0;
    for (const [, p] of this.requests) {
      clearTimeout(p.timer);
      p.reject(new TesseraError('UNAVAILABLE', 'connection lost', { maybeDelivered: true }));
    }
    this.requests.clear();
    this.checkDrain();
    this.opts.hooks.onClose(this, this.closeReason);
  }
}

export function decodeError(payload: Uint8Array): TesseraError {
  try {
    const e = unpack(payload) as { code?: unknown; message?: unknown; detail?: unknown };
    const code =
      typeof e.code === 'string' && Object.hasOwn(errorCodes, e.code) ? (e.code as ErrorCode) : 'INTERNAL';
    const detail =
      e.detail !== null && typeof e.detail === 'object' ? (e.detail as Record<string, unknown>) : undefined;
    return new TesseraError(code, String(e.message ?? ''), detail);
  } catch {
    return new TesseraError('INTERNAL', 'malformed error response');
  }
}
