/**
 * The transport between cluster members: a listener for inbound connections, one outbound
 * connection per configured peer (reconnected with exponential back-off and jitter), one-way
 * messages and request/response RPCs, both pipelined. See docs/transport.md.
 *
 * Direction: `send` and `request` always use the outbound connection to the peer; responses return
 * on the connection that carried the request; messages arriving on any authenticated connection go
 * to the message handler of their kind.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { AssertionError, assert } from '../lib/assert.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import { Connection } from './connection.js';
import {
  decodeFaultCommand,
  encodeFaultCommand,
  type FaultCommand,
  FaultSwitch,
  faultAdminKind,
} from './faults.js';
import { type Frame, FrameType, frameKindTransportMin } from './frame.js';
import type { PeerIdentity } from './handshake.js';
import {
  defaultTransportLimits,
  stderrTransportLog,
  type TransportLimits,
  type TransportLog,
} from './options.js';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface TransportOptions {
  /** Our node id and role, announced in the handshake. */
  self: PeerIdentity;
  /** The cluster secret (secret.ts). */
  secret: Uint8Array;
  /** Where to accept members (port 0: ephemeral). Omit for a transport that only connects out. */
  listen?: PeerAddress;
  /** Shared in-process fault switch; a fresh one by default. */
  faults?: FaultSwitch;
  /** Answer remote fault commands (faultAdminKind). For test clusters only. */
  allowFaultAdmin?: boolean;
  log?: TransportLog;
  limits?: Partial<TransportLimits>;
  /** Jitter source in [0, 1); Math.random by default. */
  random?: () => number;
  /**
   * The node registers its request handlers after it starts listening (a storage node opens its
   * engines and replays its log in between): until `ready()`, a request of a kind without a handler
   * is answered UNAVAILABLE (retry elsewhere or later), not BAD_REQUEST. Default false.
   */
  starting?: boolean;
}

/** `connecting`: first attempt in progress; `up`: authenticated; `down`: lost or refused, retrying. */
export type PeerState = 'connecting' | 'up' | 'down';

export type MessageHandler = (from: PeerIdentity, payload: Uint8Array) => void;
export type RequestHandler = (from: PeerIdentity, payload: Uint8Array) => Uint8Array | Promise<Uint8Array>;

export interface TransportStats {
  framesSent: number;
  framesReceived: number;
  writeBatches: number;
  framesDroppedByFault: number;
  messagesDroppedPeerDown: number;
  connectionsInbound: number;
}

class PeerLink {
  state: PeerState = 'connecting';
  conn: Connection | null = null;
  attempt = 0;
  timer: NodeJS.Timeout | null = null;
  upWaiters: Array<() => void> = [];
  constructor(
    readonly id: NodeId,
    public addr: PeerAddress,
  ) {}
}

export class Transport {
  readonly self: PeerIdentity;
  readonly faults: FaultSwitch;
  private readonly opts: TransportOptions;
  private readonly limits: TransportLimits;
  private readonly log: TransportLog;
  private readonly random: () => number;
  private server: Server | null = null;
  private readonly peers = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<Connection>();
  private inboundSockets = 0;
  /** Every inbound socket, handshaking or open, so close() can end them all. */
  private readonly inboundSocketSet = new Set<Socket>();
  private readonly messageHandlers = new Map<number, MessageHandler>();
  private readonly requestHandlers = new Map<number, RequestHandler>();
  private readonly retired: TransportStats = {
    framesSent: 0,
    framesReceived: 0,
    writeBatches: 0,
    framesDroppedByFault: 0,
    messagesDroppedPeerDown: 0,
    connectionsInbound: 0,
  };
  private closed = false;
  private starting: boolean;

  private constructor(opts: TransportOptions) {
    assert(opts.secret.length >= 16, 'cluster secret too short');
    this.opts = opts;
    this.self = opts.self;
    this.faults = opts.faults ?? new FaultSwitch();
    this.limits = { ...defaultTransportLimits, ...opts.limits };
    this.log = opts.log ?? stderrTransportLog;
    this.random = opts.random ?? Math.random;
    this.starting = opts.starting ?? false;
  }

  /** Every request handler is registered: a request of an unknown kind is BAD_REQUEST from now on. */
  ready(): void {
    this.starting = false;
  }

  /** Creates a transport and, with `listen`, starts accepting connections. */
  static async start(opts: TransportOptions): Promise<Transport> {
    const t = new Transport(opts);
    if (opts.listen !== undefined) await t.listen(opts.listen);
    return t;
  }

  /** The bound listening address (with the real port when 0 was asked), or null. */
  get address(): PeerAddress | null {
    const a = this.server?.address();
    if (a === null || a === undefined || typeof a === 'string') return null;
    return { host: a.address, port: a.port };
  }

  onMessage(kind: number, handler: MessageHandler): void {
    assert(kind >= 0 && kind < frameKindTransportMin, `message kind ${kind} out of range`);
    this.messageHandlers.set(kind, handler);
  }

  onRequest(kind: number, handler: RequestHandler): void {
    assert(kind >= 0 && kind < frameKindTransportMin, `request kind ${kind} out of range`);
    this.requestHandlers.set(kind, handler);
  }

  /** Adds a peer (connects at once, keeps reconnecting) or changes its address (reconnects). */
  setPeer(id: NodeId, addr: PeerAddress): void {
    assert(!this.closed, 'setPeer after close');
    assert(id !== this.self.nodeId, 'a transport does not connect to itself');
    const link = this.peers.get(id);
    if (link !== undefined) {
      if (link.addr.host === addr.host && link.addr.port === addr.port) return;
      link.addr = addr;
      link.conn?.close();
      return;
    }
    const fresh = new PeerLink(id, addr);
    this.peers.set(id, fresh);
    this.connect(fresh);
  }

  removePeer(id: NodeId): void {
    const link = this.peers.get(id);
    if (link === undefined) return;
    this.peers.delete(id);
    if (link.timer !== null) clearTimeout(link.timer);
    link.conn?.close();
  }

  peerState(id: NodeId): PeerState | undefined {
    return this.peers.get(id)?.state;
  }

  /**
   * Queues a one-way message to a configured peer. Returns false when it was dropped because the
   * peer is not connected (consensus tolerates loss). A frame blocked by the fault switch counts as
   * sent (true), as a lost packet would. Throws SEND_QUEUE_FULL when the queue is at its bound (see
   * waitDrain) and FRAME_TOO_LARGE for a payload over frameBytesMax. The payload is not copied when
   * large: don't modify it afterwards.
   */
  send(to: NodeId, kind: number, payload: Uint8Array): boolean {
    const conn = this.openConnection(to);
    if (conn === null) {
      this.retired.messagesDroppedPeerDown++;
      return false;
    }
    conn.sendMessage(kind, payload);
    return true;
  }

  /**
   * Sends a request and resolves with the response payload. Rejects with UNAVAILABLE at once when
   * the peer is down (or not configured), TIMEOUT after the deadline, TOO_MANY_REQUESTS or
   * SEND_QUEUE_FULL at the bounds, or the TesseraError the handler threw. `detail.maybeDelivered`
   * tells whether the peer may have seen the request. While the first connection attempt is in
   * progress, the request waits for it within its deadline.
   */
  request(to: NodeId, kind: number, payload: Uint8Array, opts?: { timeoutMs?: number }): Promise<Uint8Array> {
    const timeoutMs = opts?.timeoutMs ?? this.limits.requestDeadlineMs;
    // Connected peer (the hot path): straight to the connection, no extra async frame.
    if (this.peers.get(to)?.state !== 'connecting') {
      const conn = this.openConnection(to);
      if (conn !== null) return conn.request(kind, payload, Math.max(1, timeoutMs));
    }
    return this.requestWhenConnected(to, kind, payload, timeoutMs);
  }

  private async requestWhenConnected(
    to: NodeId,
    kind: number,
    payload: Uint8Array,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    const started = Date.now();
    const link = this.peers.get(to);
    if (link?.state === 'connecting') await this.waitConnected(to, timeoutMs).catch(() => {});
    const conn = this.openConnection(to);
    if (conn === null) {
      throw new TesseraError('UNAVAILABLE', `node ${to} is not connected`, { maybeDelivered: false });
    }
    return conn.request(kind, payload, Math.max(1, timeoutMs - (Date.now() - started)));
  }

  /** Resolves when the peer is up; rejects with TIMEOUT after timeoutMs. */
  waitConnected(to: NodeId, timeoutMs: number): Promise<void> {
    const link = this.peers.get(to);
    if (link === undefined)
      return Promise.reject(new TesseraError('UNAVAILABLE', `node ${to} is not a peer`));
    if (link.state === 'up') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        link.upWaiters = link.upWaiters.filter((w) => w !== waiter);
        reject(new TesseraError('TIMEOUT', `node ${to} not connected after ${timeoutMs} ms`));
      }, timeoutMs).unref();
      link.upWaiters.push(waiter);
    });
  }

  /** Resolves when the send queue to the peer is at most half full (or the connection is gone). */
  waitDrain(to: NodeId): Promise<void> {
    return this.peers.get(to)?.conn?.waitDrain() ?? Promise.resolve();
  }

  /** Bytes queued to the peer (ours plus the socket's). */
  queuedBytes(to: NodeId): number {
    return this.peers.get(to)?.conn?.queuedBytes ?? 0;
  }

  stats(): TransportStats {
    const s = { ...this.retired, connectionsInbound: this.inbound.size };
    const live = [...this.inbound, ...[...this.peers.values()].flatMap((l) => (l.conn ? [l.conn] : []))];
    for (const c of live) addConnStats(s, c);
    return s;
  }

  /** Stops listening, closes every connection and stops reconnecting. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    for (const c of this.inbound) c.close();
    for (const socket of this.inboundSocketSet) if (!this.isOpenInbound(socket)) socket.destroy();
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private isOpenInbound(socket: Socket): boolean {
    for (const c of this.inbound) if (c.usesSocket(socket)) return true;
    return false;
  }

  private listen(addr: PeerAddress): Promise<void> {
    const server = createServer((socket) => this.onInbound(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host, () => {
        server.off('error', reject);
        server.on('error', (e) => this.log.warn('transport listener error', { error: e.message }));
        resolve();
      });
    });
  }

  private onInbound(socket: Socket): void {
    if (this.closed || this.inboundSockets >= this.limits.connectionsMax) {
      this.log.warn('transport refused a connection', {
        reason: this.closed ? 'closing' : 'connectionsMax',
        remote: `${socket.remoteAddress}:${socket.remotePort}`,
      });
      socket.destroy();
      return;
    }
    this.inboundSockets++;
    this.inboundSocketSet.add(socket);
    socket.once('close', () => {
      this.inboundSockets--;
      this.inboundSocketSet.delete(socket);
    });
    const conn = this.newConnection(socket, 'server', undefined, {
      onOpen: (c) => this.onInboundOpen(c),
      onClose: (c) => {
        this.inbound.delete(c);
        addConnStats(this.retired, c);
      },
    });
    assert(conn.state === 'handshake', 'new connection state');
  }

  private onInboundOpen(conn: Connection): void {
    const peer = conn.peer;
    assert(peer !== null, 'open without peer');
    // A member reconnecting replaces its older (probably half-open) connection. Ids 0 and 0xffffffff
    // are provisional ids of members that have not registered yet (several may connect at once).
    const provisional = peer.nodeId === 0 || peer.nodeId === 0xffff_ffff;
    if (!provisional) for (const old of this.inbound) if (old.peer?.nodeId === peer.nodeId) old.close();
    this.inbound.add(conn);
    this.log.info('transport member connected', {
      peer: peer.nodeId,
      role: peer.role,
      remote: conn.remoteAddress,
    });
  }

  private connect(link: PeerLink): void {
    link.timer = null;
    if (this.closed || this.peers.get(link.id) !== link) return;
    const socket = netConnect({ host: link.addr.host, port: link.addr.port });
    link.conn = this.newConnection(socket, 'client', link.id, {
      onOpen: () => this.onLinkUp(link),
      onClose: (c, reason) => this.onLinkClosed(link, c, reason),
    });
  }

  private onLinkUp(link: PeerLink): void {
    link.state = 'up';
    link.attempt = 0;
    this.log.info('transport peer up', { peer: link.id, addr: `${link.addr.host}:${link.addr.port}` });
    const waiters = link.upWaiters;
    link.upWaiters = [];
    for (const w of waiters) w();
  }

  private onLinkClosed(link: PeerLink, conn: Connection, reason: Error | null): void {
    addConnStats(this.retired, conn);
    if (link.conn === conn) link.conn = null;
    const wasUp = link.state === 'up';
    link.state = 'down';
    if (wasUp) this.log.warn('transport peer down', { peer: link.id, reason: reason?.message });
    if (this.closed || this.peers.get(link.id) !== link) return;
    const base = Math.min(
      this.limits.reconnectBackoffMaxMs,
      this.limits.reconnectBackoffMinMs * 2 ** Math.min(link.attempt, 30),
    );
    link.attempt++;
    const delayMs = Math.round(base / 2 + (this.random() * base) / 2);
    link.timer = setTimeout(() => this.connect(link), delayMs);
    link.timer.unref();
  }

  private newConnection(
    socket: Socket,
    side: 'client' | 'server',
    expectNodeId: NodeId | undefined,
    hooks: { onOpen: (c: Connection) => void; onClose: (c: Connection, reason: Error | null) => void },
  ): Connection {
    return new Connection({
      socket,
      side,
      self: this.self,
      secret: this.opts.secret,
      ...(expectNodeId === undefined ? {} : { expectNodeId }),
      limits: this.limits,
      log: this.log,
      outboundBlocked: (peer) => this.faults.isBlocked(this.self.nodeId, peer),
      hooks: { ...hooks, onFrame: (c, f) => this.onFrame(c, f) },
    });
  }

  private openConnection(to: NodeId): Connection | null {
    const link = this.peers.get(to);
    if (link === undefined || link.state !== 'up' || link.conn === null) return null;
    return link.conn.state === 'open' ? link.conn : null;
  }

  private onFrame(conn: Connection, f: Frame): void {
    const from = conn.peer;
    assert(from !== null, 'application frame before authentication');
    if (this.faults.isBlocked(from.nodeId, this.self.nodeId)) {
      this.retired.framesDroppedByFault++;
      if (f.type === FrameType.request) conn.respondDropped();
      return;
    }
    if (f.type === FrameType.message) {
      const handler = this.messageHandlers.get(f.kind);
      if (handler === undefined) {
        this.log.warn('transport message without handler', { kind: f.kind });
        return;
      }
      try {
        handler(from, f.payload);
      } catch (e) {
        // An operating error in a handler is its business, not the connection's; bugs crash.
        if (!isTesseraError(e)) throw e;
        this.log.warn('transport message handler failed', { kind: f.kind, code: e.code, error: e.message });
      }
      return;
    }
    assert(f.type === FrameType.request, `unexpected frame type ${f.type}`);
    if (f.kind === faultAdminKind) {
      this.onFaultAdmin(conn, f);
      return;
    }
    const handler = this.requestHandlers.get(f.kind);
    if (handler === undefined) {
      const e = this.starting
        ? new TesseraError(
            'UNAVAILABLE',
            `node ${this.self.nodeId} is starting (no handler for kind ${f.kind} yet)`,
          )
        : new TesseraError('BAD_REQUEST', `no handler for kind ${f.kind}`);
      conn.respondError(f.kind, f.id, e);
      return;
    }
    this.runHandler(conn, f, handler, from);
  }

  private runHandler(conn: Connection, f: Frame, handler: RequestHandler, from: PeerIdentity): void {
    const fail = (e: unknown): void => {
      if (isTesseraError(e)) {
        conn.respondError(f.kind, f.id, e);
        return;
      }
      if (e instanceof AssertionError) {
        queueMicrotask(() => {
          throw e; // a bug: crash, never answer it
        });
        return;
      }
      this.log.warn('transport request handler failed', { kind: f.kind, error: String(e) });
      conn.respondError(f.kind, f.id, new TesseraError('INTERNAL', 'request handler failed'));
    };
    try {
      const out = handler(from, f.payload);
      if (out instanceof Uint8Array) {
        conn.respond(f.kind, f.id, out);
        return;
      }
      out.then((r) => conn.respond(f.kind, f.id, r), fail);
    } catch (e) {
      fail(e);
    }
  }

  private onFaultAdmin(conn: Connection, f: Frame): void {
    if (this.opts.allowFaultAdmin !== true) {
      conn.respondError(f.kind, f.id, new TesseraError('FORBIDDEN', 'fault admin is disabled on this node'));
      return;
    }
    const cmd = decodeFaultCommand(f.payload);
    if (cmd === null) {
      conn.respondError(f.kind, f.id, new TesseraError('BAD_REQUEST', 'bad fault command'));
      return;
    }
    // Acknowledge while the link back to the caller is open: before a block, after an unblock.
    if (cmd.op !== 'block') this.faults.apply(cmd);
    conn.respond(f.kind, f.id, new Uint8Array(0));
    if (cmd.op === 'block') this.faults.apply(cmd);
    this.log.warn('transport fault command', { ...cmd, by: conn.peer?.nodeId });
  }
}

function addConnStats(s: TransportStats, c: Connection): void {
  s.framesSent += c.framesSent;
  s.framesReceived += c.framesReceived;
  s.writeBatches += c.writeBatches;
  s.framesDroppedByFault += c.framesDropped;
}

/** Asks the member `to` (started with allowFaultAdmin) to apply a fault command to its switch. */
export async function sendFaultCommand(t: Transport, to: NodeId, cmd: FaultCommand): Promise<void> {
  await t.request(to, faultAdminKind, encodeFaultCommand(cmd));
}
