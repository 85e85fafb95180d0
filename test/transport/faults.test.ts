import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TesseraError } from '../../src/lib/errors.js';
import { nodeId } from '../../src/lib/ids.js';
import { FaultSwitch } from '../../src/transport/faults.js';
import { FaultProxy } from '../../src/transport/proxy.js';
import { sendFaultCommand } from '../../src/transport/transport.js';
import { Cluster, eventually } from './helpers.js';

let c: Cluster;
const proxies: FaultProxy[] = [];
beforeEach(() => {
  c = new Cluster();
});
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await c.cleanup();
});

const echo = 1;
const note = 2;
const n1 = nodeId(1);
const n2 = nodeId(2);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TesseraError) return e.code;
    throw e;
  }
  return 'OK';
}

/** Two members linked both ways, each recording the messages it receives. */
async function pair(): Promise<{
  a: Awaited<ReturnType<Cluster['start']>>;
  b: Awaited<ReturnType<Cluster['start']>>;
  inbox: Map<number, string[]>;
}> {
  const a = await c.start(1);
  const b = await c.start(2);
  const inbox = new Map<number, string[]>([
    [1, []],
    [2, []],
  ]);
  for (const t of [a, b]) {
    t.onMessage(note, (_f, p) => inbox.get(t.self.nodeId)?.push(Buffer.from(p).toString()));
    t.onRequest(echo, (_f, p) => p);
  }
  await c.link(a, b);
  await c.link(b, a);
  return { a, b, inbox };
}

describe('fault switch (in process)', () => {
  it('blocks one direction of one link only, and heals', async () => {
    const { a, b, inbox } = await pair();
    c.faults.block(n1, n2);
    expect(c.faults.links()).toEqual([[1, 2]]);
    expect(a.send(n2, note, Buffer.from('lost'))).toBe(true); // a blocked frame looks sent, as a lost packet
    expect(b.send(n1, note, Buffer.from('b->a'))).toBe(true);
    await eventually(() => inbox.get(1)?.length === 1, 'b -> a delivered');
    // a request needs both directions: it is lost and times out
    expect(await codeOf(a.request(n2, echo, Buffer.from('q'), { timeoutMs: 100 }))).toBe('TIMEOUT');
    expect(await codeOf(b.request(n1, echo, Buffer.from('q'), { timeoutMs: 100 }))).toBe('TIMEOUT');
    expect(a.stats().framesDroppedByFault).toBeGreaterThanOrEqual(2);
    c.faults.unblock(n1, n2);
    expect(a.send(n2, note, Buffer.from('after'))).toBe(true);
    expect(Buffer.from(await a.request(n2, echo, Buffer.from('ok'))).toString()).toBe('ok');
    await eventually(() => inbox.get(2)?.length === 1, 'a -> b delivered after heal');
    expect(inbox.get(2)).toEqual(['after']);
    expect(inbox.get(1)).toEqual(['b->a']);
    expect(a.peerState(n2)).toBe('up'); // the connection itself never dropped
  });

  it('is driven remotely by an authenticated admin request when allowed, refused otherwise', async () => {
    const a = await c.start(1, { faults: new FaultSwitch() });
    const node = await c.start(3, { faults: new FaultSwitch(), allowFaultAdmin: true });
    const locked = await c.start(4, { faults: new FaultSwitch() });
    const inbox: string[] = [];
    a.onMessage(note, (_f, p) => inbox.push(Buffer.from(p).toString()));
    await c.link(a, node);
    await c.link(node, a);
    await c.link(a, locked);
    await sendFaultCommand(a, nodeId(3), { op: 'block', from: nodeId(3), to: n1 });
    expect(node.faults.isBlocked(nodeId(3), n1)).toBe(true);
    node.send(n1, note, Buffer.from('dropped'));
    await sendFaultCommand(a, nodeId(3), { op: 'clear' });
    expect(node.faults.links()).toEqual([]);
    node.send(n1, note, Buffer.from('delivered'));
    await eventually(() => inbox.length > 0, 'message after clear');
    expect(inbox).toEqual(['delivered']);
    expect(await codeOf(sendFaultCommand(a, nodeId(4), { op: 'block', from: nodeId(4), to: n1 }))).toBe(
      'FORBIDDEN',
    );
    expect(locked.faults.links()).toEqual([]);
  });
});

describe('fault proxy', () => {
  /** Node 1 (started with `opts`) reaches an echoing node 2 through a fault proxy. */
  async function viaProxy(
    opts?: Parameters<Cluster['start']>[1],
  ): Promise<{ a: Awaited<ReturnType<Cluster['start']>>; proxy: FaultProxy }> {
    const a = await c.start(1, opts);
    const b = await c.start(2);
    b.onRequest(echo, (_f, p) => p);
    const proxy = await FaultProxy.start({ target: b.address! });
    proxies.push(proxy);
    a.setPeer(n2, proxy.address);
    await a.waitConnected(n2, 5000);
    return { a, proxy };
  }

  it('cuts a link (peer down, requests fail fast) and restores it', async () => {
    const { a, proxy } = await viaProxy();
    proxy.cut();
    await eventually(() => a.peerState(n2) === 'down', 'peer down');
    expect(await codeOf(a.request(n2, echo, Buffer.from('x')))).toBe('UNAVAILABLE');
    expect(proxy.connections).toBe(0);
    proxy.pass();
    await a.waitConnected(n2, 5000);
    expect(Buffer.from(await a.request(n2, echo, Buffer.from('back'))).toString()).toBe('back');
  });

  it('blackholes a link (requests time out) and resets the damaged connection when healed', async () => {
    const { a, proxy } = await viaProxy();
    proxy.blackhole();
    expect(await codeOf(a.request(n2, echo, Buffer.from('x'), { timeoutMs: 100 }))).toBe('TIMEOUT');
    proxy.pass();
    await eventually(() => a.peerState(n2) === 'down', 'damaged connection reset');
    await a.waitConnected(n2, 5000);
    expect(Buffer.from(await a.request(n2, echo, Buffer.from('ok'))).toString()).toBe('ok');
  });

  it('closes a connection that falls silent (stalled both ways) and reconnects when it heals', async () => {
    const { a, proxy } = await viaProxy({
      limits: { transportPingIntervalMs: 50, transportIdleTimeoutMs: 200 },
    });
    proxy.stall();
    await eventually(() => a.peerState(n2) === 'down', 'idle connection closed');
    expect(c.warnings(1).some((l) => String(l.fields?.reason).startsWith('no frame for'))).toBe(true);
    proxy.pass();
    await a.waitConnected(n2, 5000);
    expect(Buffer.from(await a.request(n2, echo, Buffer.from('ok'))).toString()).toBe('ok');
  });

  it('delays a link, keeping order', async () => {
    const { a, proxy } = await viaProxy();
    proxy.delay(60);
    const started = Date.now();
    const answers = await Promise.all([1, 2, 3].map((i) => a.request(n2, echo, Buffer.from(String(i)))));
    expect(answers.map((x) => Buffer.from(x).toString())).toEqual(['1', '2', '3']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100); // 60 ms each way, at least
    expect(proxy.state).toEqual({ mode: 'delay', direction: 'both', delayMs: 60 });
  });
});
