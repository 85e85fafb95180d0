import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { nodeId as toNodeId } from '../../src/lib/ids.js';
import { FaultSwitch } from '../../src/transport/faults.js';
import { encodeFrame, type Frame, FrameDecoder, FrameType } from '../../src/transport/frame.js';
import {
  computeProof,
  decodeHelloAck,
  encodeHello,
  newNonce,
  type PeerIdentity,
  type Role,
} from '../../src/transport/handshake.js';
import type { TransportLimits } from '../../src/transport/options.js';
import { Transport, type TransportOptions } from '../../src/transport/transport.js';

export const secret = new Uint8Array(randomBytes(32));

export const fastLimits: Partial<TransportLimits> = {
  reconnectBackoffMinMs: 10,
  reconnectBackoffMaxMs: 100,
  handshakeTimeoutMs: 2000,
  requestDeadlineMs: 3000,
};

export interface LogLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown> | undefined;
}

/** Starts transports on 127.0.0.1 with ephemeral ports and closes them all in cleanup(). */
export class Cluster {
  readonly transports: Transport[] = [];
  readonly logs = new Map<number, LogLine[]>();
  readonly faults = new FaultSwitch();
  private readonly sockets: Socket[] = [];

  async start(id: number, opts: Partial<TransportOptions> & { role?: Role } = {}): Promise<Transport> {
    const lines: LogLine[] = [];
    this.logs.set(id, lines);
    const t = await Transport.start({
      self: { nodeId: toNodeId(id), role: opts.role ?? 'storage' },
      secret,
      listen: { host: '127.0.0.1', port: 0 },
      faults: this.faults,
      log: {
        info: (msg, fields) => lines.push({ level: 'info', msg, fields }),
        warn: (msg, fields) => lines.push({ level: 'warn', msg, fields }),
      },
      ...opts,
      limits: { ...fastLimits, ...opts.limits },
    });
    this.transports.push(t);
    return t;
  }

  /** Connects `from` to `to` and waits until the link is up. */
  async link(from: Transport, to: Transport): Promise<void> {
    const addr = to.address;
    if (addr === null) throw new Error('not listening');
    from.setPeer(to.self.nodeId, addr);
    await from.waitConnected(to.self.nodeId, 5000);
  }

  rawSocket(t: Transport): Promise<Socket> {
    const addr = t.address;
    if (addr === null) throw new Error('not listening');
    const s = connect(addr.port, addr.host);
    this.sockets.push(s);
    s.on('error', () => {});
    return new Promise((resolve) => s.once('connect', () => resolve(s)));
  }

  warnings(id: number): LogLine[] {
    return (this.logs.get(id) ?? []).filter((l) => l.level === 'warn');
  }

  async cleanup(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

export function closed(s: Socket): Promise<void> {
  s.resume(); // read to the end, or 'close' never comes
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

/** Runs the client side of the handshake by hand on a raw socket; resolves with the server's answer. */
export async function rawHandshake(s: Socket, self: PeerIdentity, key: Uint8Array): Promise<Frame['type']> {
  const frames: Frame[] = [];
  let wake: () => void = () => {};
  const decoder = new FrameDecoder(1 << 20, (f) => {
    frames.push(f);
    wake();
  });
  s.on('data', (c: Buffer) => decoder.push(c));
  const next = async (): Promise<Frame> => {
    while (frames.length === 0) await new Promise<void>((r) => (wake = r));
    return frames.shift() as Frame;
  };
  const clientNonce = newNonce();
  s.write(
    encodeFrame({
      type: FrameType.hello,
      kind: 0,
      id: 0,
      payload: encodeHello({ versionMin: 1, versionMax: 1, ...self, nonce: clientNonce }),
    }),
  );
  const ackFrame = await next();
  const ack = decodeHelloAck(ackFrame.payload);
  if (ack === null) throw new Error('no hello-ack');
  const server = { nodeId: ack.nodeId, role: ack.role };
  const proof = computeProof(key, {
    side: 'client',
    version: 1,
    clientNonce,
    serverNonce: ack.nonce,
    client: self,
    server,
  });
  s.write(encodeFrame({ type: FrameType.auth, kind: 0, id: 0, payload: proof }));
  return (await next()).type;
}

export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => {};
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
