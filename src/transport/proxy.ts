/**
 * A small fault-injecting TCP proxy for tests: put it between two members (give the client the
 * proxy's address as the peer address) and change its mode at run time.
 *
 *   pass       forward bytes both ways
 *   delay      hold every chunk `delayMs` before forwarding (order kept)
 *   blackhole  accept and read, forward nothing; connections that lost bytes are reset when the
 *              mode changes back (like a TCP connection that timed out during a partition)
 *   stall      stop reading (TCP back-pressure builds up on the sender); resumes on any other mode
 *   cut        reset every connection and every new one (connection refused after accept)
 *
 * `direction` limits delay/blackhole/stall to client->target (`forward`), target->client
 * (`backward`), or `both`. Run it in the test process; the nodes under test are child processes.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { assert } from '../lib/assert.js';

export type ProxyMode = 'pass' | 'delay' | 'blackhole' | 'stall' | 'cut';
export type ProxyDirection = 'both' | 'forward' | 'backward';

interface Endpoint {
  host: string;
  port: number;
}

interface Pipe {
  from: Socket;
  to: Socket;
  dir: 'forward' | 'backward';
  queue: Array<{ atMs: number; chunk: Buffer }>;
  timer: NodeJS.Timeout | null;
}

class Pair {
  poisoned = false;
  readonly pipes: Pipe[];
  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
  ) {
    this.pipes = [
      { from: client, to: upstream, dir: 'forward', queue: [], timer: null },
      { from: upstream, to: client, dir: 'backward', queue: [], timer: null },
    ];
  }

  destroy(): void {
    for (const p of this.pipes) if (p.timer !== null) clearTimeout(p.timer);
    this.client.resetAndDestroy();
    this.upstream.resetAndDestroy();
  }
}

export class FaultProxy {
  private mode: ProxyMode = 'pass';
  private direction: ProxyDirection = 'both';
  private delayMs = 0;
  private readonly pairs = new Set<Pair>();
  private constructor(
    private readonly server: Server,
    readonly target: Endpoint,
  ) {}

  /** Starts a proxy listening on `listen` (port 0: ephemeral) and forwarding to `target`. */
  static async start(opts: { target: Endpoint; listen?: Endpoint }): Promise<FaultProxy> {
    const listen = opts.listen ?? { host: '127.0.0.1', port: 0 };
    const server = createServer();
    const proxy = new FaultProxy(server, opts.target);
    server.on('connection', (s) => proxy.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => resolve());
    });
    return proxy;
  }

  get address(): Endpoint {
    const a = this.server.address();
    assert(a !== null && typeof a !== 'string', 'proxy is listening');
    return { host: a.address, port: a.port };
  }

  get connections(): number {
    return this.pairs.size;
  }

  get state(): { mode: ProxyMode; direction: ProxyDirection; delayMs: number } {
    return { mode: this.mode, direction: this.direction, delayMs: this.delayMs };
  }

  pass(): void {
    this.set('pass');
  }

  cut(): void {
    this.set('cut');
  }

  blackhole(direction: ProxyDirection = 'both'): void {
    this.set('blackhole', { direction });
  }

  stall(direction: ProxyDirection = 'both'): void {
    this.set('stall', { direction });
  }

  delay(delayMs: number, direction: ProxyDirection = 'both'): void {
    this.set('delay', { delayMs, direction });
  }

  set(mode: ProxyMode, opts: { direction?: ProxyDirection; delayMs?: number } = {}): void {
    assert(opts.delayMs === undefined || opts.delayMs >= 0, 'delayMs must be >= 0');
    this.mode = mode;
    this.direction = opts.direction ?? 'both';
    this.delayMs = opts.delayMs ?? 0;
    for (const pair of [...this.pairs]) {
      if (mode === 'cut' || (mode !== 'blackhole' && pair.poisoned)) {
        this.drop(pair);
        continue;
      }
      for (const p of pair.pipes) {
        if (mode === 'stall' && this.affects(p.dir)) p.from.pause();
        else p.from.resume();
      }
    }
  }

  async close(): Promise<void> {
    for (const pair of [...this.pairs]) this.drop(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private affects(dir: 'forward' | 'backward'): boolean {
    return this.direction === 'both' || this.direction === dir;
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.destroy();
  }

  private onConnection(client: Socket): void {
    if (this.mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = netConnect(this.target);
    const pair = new Pair(client, upstream);
    this.pairs.add(pair);
    for (const p of pair.pipes) {
      p.from.on('data', (chunk: Buffer) => this.onChunk(pair, p, chunk));
      p.from.on('error', () => {});
      p.from.on('close', () => this.drop(pair));
      if (this.mode === 'stall' && this.affects(p.dir)) p.from.pause();
    }
  }

  private onChunk(pair: Pair, p: Pipe, chunk: Buffer): void {
    const active = this.affects(p.dir);
    if (active && this.mode === 'blackhole') {
      pair.poisoned = true;
      return;
    }
    const delayMs = active && this.mode === 'delay' ? this.delayMs : 0;
    if (delayMs === 0 && p.queue.length === 0) {
      p.to.write(chunk);
      return;
    }
    const last = p.queue[p.queue.length - 1];
    p.queue.push({ atMs: Math.max(Date.now() + delayMs, last?.atMs ?? 0), chunk });
    if (p.timer === null) this.arm(p);
  }

  private arm(p: Pipe): void {
    const head = p.queue[0];
    if (head === undefined) {
      p.timer = null;
      return;
    }
    p.timer = setTimeout(
      () => {
        const now = Date.now();
        while (p.queue.length > 0 && (p.queue[0]?.atMs ?? 0) <= now)
          p.to.write(p.queue.shift()?.chunk ?? Buffer.alloc(0));
        this.arm(p);
      },
      Math.max(0, head.atMs - Date.now()),
    );
  }
}
