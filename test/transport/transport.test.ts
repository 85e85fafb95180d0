import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTesseraError, TesseraError } from '../../src/lib/errors.js';
import { nodeId } from '../../src/lib/ids.js';
import { encodeFrame, FrameType, frameHeaderBytes } from '../../src/transport/frame.js';
import type { PeerIdentity } from '../../src/transport/handshake.js';
import { Cluster, closed, deferred, eventually, rawHandshake, secret } from './helpers.js';

let c: Cluster;
beforeEach(() => {
  c = new Cluster();
});
afterEach(async () => {
  await c.cleanup();
});

const echo = 1;
const note = 2;

async function errorOf(p: Promise<unknown>): Promise<TesseraError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TesseraError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

describe('transport', () => {
  it('authenticates both sides and carries pipelined messages and requests, batched', async () => {
    const a = await c.start(1, { role: 'request' });
    const b = await c.start(2);
    const got: number[] = [];
    const seenFrom: PeerIdentity[] = [];
    b.onMessage(note, (from, p) => {
      seenFrom.push(from);
      got.push(Buffer.from(p).readUInt32BE(0));
    });
    b.onRequest(echo, (_from, p) => Buffer.concat([Buffer.from('re:'), p]));
    await c.link(a, b);
    for (let i = 0; i < 1000; i++) {
      const p = Buffer.alloc(4);
      p.writeUInt32BE(i);
      expect(a.send(b.self.nodeId, note, p)).toBe(true);
    }
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) => a.request(b.self.nodeId, echo, Buffer.from(String(i)))),
    );
    expect(answers.map((x) => Buffer.from(x).toString())).toEqual(
      Array.from({ length: 500 }, (_, i) => `re:${i}`),
    );
    await eventually(() => got.length === 1000, 'all messages');
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(seenFrom[0]).toEqual({ nodeId: 1, role: 'request' });
    const s = a.stats();
    expect(s.framesSent).toBe(1500);
    expect(s.writeBatches).toBeLessThan(10); // frames queued in one turn leave in one write
  });

  it('while starting, a request of a kind without a handler yet is UNAVAILABLE (not BAD_REQUEST)', async () => {
    // A storage node listens before it has opened its engines and registered its kv.* handlers
    // (after a kill -9, dev restarts it while request managers still probe it): the request
    // manager retries UNAVAILABLE elsewhere, but answered a client's write 400 BAD_REQUEST.
    const a = await c.start(1, { role: 'request' });
    const b = await c.start(2, { starting: true });
    await c.link(a, b);
    const early = await errorOf(a.request(b.self.nodeId, echo, Buffer.from('x')));
    expect(early.code).toBe('UNAVAILABLE');
    expect(early.message).toContain('starting');
    b.onRequest(echo, (_from, p) => Buffer.concat([Buffer.from('re:'), p]));
    expect(Buffer.from(await a.request(b.self.nodeId, echo, Buffer.from('x'))).toString()).toBe('re:x');
    expect((await errorOf(a.request(b.self.nodeId, 99, Buffer.alloc(0)))).code).toBe('UNAVAILABLE');
    b.ready();
    expect((await errorOf(a.request(b.self.nodeId, 99, Buffer.alloc(0)))).code).toBe('BAD_REQUEST');
  });

  it('carries a large payload without loss and passes handler errors with code and detail', async () => {
    const a = await c.start(1);
    const b = await c.start(2);
    b.onRequest(echo, (_f, p) => p);
    b.onRequest(3, () => {
      throw new TesseraError('NOT_LEADER', 'ask node 7', { leader: 7 });
    });
    b.onRequest(4, async () => {
      throw new Error('boom');
    });
    await c.link(a, b);
    const big = new Uint8Array(randomBytes(3 * 1024 * 1024));
    expect(Buffer.compare(await a.request(b.self.nodeId, echo, big), big)).toBe(0);
    const e = await errorOf(a.request(b.self.nodeId, 3, Buffer.alloc(0)));
    expect(e.code).toBe('NOT_LEADER');
    expect(e.detail).toEqual({ leader: 7 });
    expect((await errorOf(a.request(b.self.nodeId, 4, Buffer.alloc(0)))).code).toBe('INTERNAL');
    expect((await errorOf(a.request(b.self.nodeId, 99, Buffer.alloc(0)))).code).toBe('BAD_REQUEST');
    const tooBig = Buffer.alloc(16 * 1024 * 1024);
    expect(() => a.send(b.self.nodeId, note, tooBig)).toThrowError(
      expect.objectContaining({ code: 'FRAME_TOO_LARGE' }),
    );
  });

  it('fails a request at its deadline, and fails fast to a down or unknown peer', async () => {
    const a = await c.start(1);
    const b = await c.start(2);
    const never = deferred<Uint8Array>();
    b.onRequest(echo, () => never.promise);
    await c.link(a, b);
    const e = await errorOf(a.request(b.self.nodeId, echo, Buffer.from('x'), { timeoutMs: 50 }));
    expect(e.code).toBe('TIMEOUT');
    expect(e.detail).toEqual({ maybeDelivered: true });
    never.resolve(Buffer.from('late')); // a late answer is dropped, nothing breaks
    expect((await errorOf(a.request(nodeId(9), echo, Buffer.alloc(0)))).code).toBe('UNAVAILABLE');
    expect(a.send(nodeId(9), note, Buffer.alloc(1))).toBe(false);
    await b.close();
    await eventually(() => a.peerState(b.self.nodeId) === 'down', 'peer down');
    const down = await errorOf(a.request(b.self.nodeId, echo, Buffer.alloc(0)));
    expect(down.code).toBe('UNAVAILABLE');
    expect(down.detail).toEqual({ maybeDelivered: false });
    expect(a.send(b.self.nodeId, note, Buffer.alloc(1))).toBe(false);
  });

  it('keeps the connection when a message handler fails with an operating error', async () => {
    const a = await c.start(1);
    const b = await c.start(2);
    const got: string[] = [];
    b.onMessage(note, (_f, p) => {
      const text = Buffer.from(p).toString();
      if (text === 'bad') throw new TesseraError('BAD_REQUEST', 'cannot decode');
      got.push(text);
    });
    await c.link(a, b);
    a.send(b.self.nodeId, note, Buffer.from('bad'));
    a.send(b.self.nodeId, note, Buffer.from('good'));
    await eventually(() => got.length === 1, 'next message');
    expect(got).toEqual(['good']);
    expect(a.peerState(b.self.nodeId)).toBe('up');
    expect(c.warnings(2).map((l) => l.msg)).toEqual(['transport message handler failed']);
  });

  it('bounds requests in flight per connection', async () => {
    const a = await c.start(1, { limits: { requestsInflightPerConnectionMax: 4 } });
    const b = await c.start(2);
    const gate = deferred<Uint8Array>();
    b.onRequest(echo, () => gate.promise);
    await c.link(a, b);
    const inflight = Array.from({ length: 4 }, () => a.request(b.self.nodeId, echo, Buffer.alloc(0)));
    expect((await errorOf(a.request(b.self.nodeId, echo, Buffer.alloc(0)))).code).toBe('TOO_MANY_REQUESTS');
    gate.resolve(Buffer.from('ok'));
    expect((await Promise.all(inflight)).map((x) => Buffer.from(x).toString())).toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
    ]);
  });

  it('reconnects after the peer restarts on the same port', async () => {
    const a = await c.start(1);
    let b = await c.start(2);
    b.onRequest(echo, () => Buffer.from('first'));
    await c.link(a, b);
    const addr = b.address;
    if (addr === null) throw new Error('no address');
    await b.close();
    await eventually(() => a.peerState(nodeId(2)) === 'down', 'peer down');
    b = await c.start(2, { listen: addr });
    b.onRequest(echo, () => Buffer.from('second'));
    await a.waitConnected(nodeId(2), 5000);
    expect(Buffer.from(await a.request(nodeId(2), echo, Buffer.alloc(0))).toString()).toBe('second');
  });
});

describe('transport authentication', () => {
  it('refuses a client with the wrong secret, and a client refuses a server with the wrong one', async () => {
    const b = await c.start(2);
    b.onMessage(note, () => expect.unreachable('message from an unauthenticated client'));
    const intruder = await c.start(1, { secret: new Uint8Array(randomBytes(32)) });
    intruder.setPeer(b.self.nodeId, b.address!);
    await eventually(
      () => c.warnings(2).some((l) => String(l.fields?.reason).includes('authentication failed')),
      'refusal',
    );
    expect(intruder.peerState(b.self.nodeId)).not.toBe('up');
    expect(intruder.send(b.self.nodeId, note, Buffer.alloc(1))).toBe(false);
    expect(b.stats().connectionsInbound).toBe(0);
    // a client that skips checking the server and sends a proof made with another secret
    const s = await c.rawSocket(b);
    const wrong = new Uint8Array(randomBytes(32));
    expect(await rawHandshake(s, { nodeId: nodeId(8), role: 'storage' }, wrong)).toBe(FrameType.reject);
    await closed(s);
    expect(c.warnings(2).some((l) => String(l.fields?.reason).includes('client does not know'))).toBe(true);
    expect(b.stats().connectionsInbound).toBe(0);

    const fake = await c.start(3, { secret: new Uint8Array(randomBytes(32)) });
    const a = await c.start(4);
    a.setPeer(fake.self.nodeId, fake.address!);
    await eventually(
      () => c.warnings(4).some((l) => String(l.fields?.reason).includes('server does not know')),
      'server refused',
    );
    expect(a.peerState(fake.self.nodeId)).not.toBe('up');
  });

  it('refuses a server that announces another node id than expected', async () => {
    const a = await c.start(1);
    const b = await c.start(2);
    a.setPeer(nodeId(5), b.address!);
    await eventually(
      () => c.warnings(1).some((l) => String(l.fields?.reason).includes('expected node 5')),
      'refusal',
    );
    expect(a.peerState(nodeId(5))).not.toBe('up');
  });

  it('accepts no application frame before the handshake', async () => {
    const b = await c.start(2);
    b.onMessage(note, () => expect.unreachable('accepted a frame before auth'));
    const s = await c.rawSocket(b);
    s.write(encodeFrame({ type: FrameType.message, kind: note, id: 0, payload: Buffer.from('hi') }));
    await closed(s);
    const proofless = await c.rawSocket(b);
    const oversizedHello = Buffer.alloc(frameHeaderBytes);
    oversizedHello.writeUInt32BE(10_000, 0);
    oversizedHello.writeUInt8(FrameType.hello, 4);
    proofless.write(oversizedHello);
    await closed(proofless);
    expect(c.warnings(2).length).toBe(2);
  });
});

describe('transport connection bound', () => {
  it('refuses inbound connections past connectionsMax, and logs it', async () => {
    const b = await c.start(2, { limits: { connectionsMax: 1 } });
    const first = await c.rawSocket(b);
    const second = await c.rawSocket(b);
    await closed(second);
    expect(first.destroyed).toBe(false);
    expect(c.warnings(2).map((l) => l.fields?.reason)).toEqual(['connectionsMax']);
  });
});

describe('transport bad frames', () => {
  it('closes only the connection that sent garbage, oversized or bad-CRC frames', async () => {
    const a = await c.start(1);
    const b = await c.start(2, { limits: { frameBytesMax: 64 * 1024 } });
    b.onRequest(echo, (_f, p) => p);
    await c.link(a, b);
    const self = { nodeId: nodeId(7), role: 'storage' as const };
    const bad: Buffer[] = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      (() => {
        const f = encodeFrame({ type: FrameType.message, kind: note, id: 0, payload: Buffer.from('x') });
        f.writeUInt32BE(1024 * 1024, 0);
        return f;
      })(),
      (() => {
        const f = encodeFrame({ type: FrameType.message, kind: note, id: 0, payload: Buffer.from('xyz') });
        f[f.length - 1] = 0;
        return f;
      })(),
    ];
    for (const garbage of bad) {
      const s = await c.rawSocket(b);
      expect(await rawHandshake(s, self, secret)).toBe(FrameType.authOk);
      s.write(garbage);
      await closed(s);
      // the other member's connection is untouched
      expect(Buffer.from(await a.request(b.self.nodeId, echo, Buffer.from('ok'))).toString()).toBe('ok');
    }
    expect(c.warnings(2).filter((l) => l.fields?.reason === 'bad frame').length).toBe(3);
    expect(a.peerState(b.self.nodeId)).toBe('up');
  });
});

describe('transport back-pressure', () => {
  it('fails sends fast at the queue bound and resumes after drain', async () => {
    const { FaultProxy } = await import('../../src/transport/proxy.js');
    const queueMax = 256 * 1024;
    const a = await c.start(1, { limits: { sendQueueBytesMax: queueMax } });
    const b = await c.start(2);
    const got: number[] = [];
    b.onMessage(note, (_f, p) => got.push(Buffer.from(p).readUInt32BE(0)));
    const proxy = await FaultProxy.start({ target: b.address! });
    try {
      a.setPeer(b.self.nodeId, proxy.address);
      await a.waitConnected(b.self.nodeId, 5000);
      proxy.stall('forward');
      const payload = Buffer.alloc(16 * 1024);
      let sent = 0;
      let full: unknown = null;
      for (let round = 0; round < 2000 && full === null; round++) {
        for (let i = 0; i < 8 && full === null; i++) {
          try {
            payload.writeUInt32BE(sent, 0);
            a.send(b.self.nodeId, note, Buffer.from(payload));
            sent++;
          } catch (e) {
            full = e;
          }
          expect(a.queuedBytes(b.self.nodeId)).toBeLessThanOrEqual(queueMax);
        }
        await new Promise((r) => setImmediate(r));
      }
      expect(isTesseraError(full, 'SEND_QUEUE_FULL')).toBe(true);
      const drained = a.waitDrain(b.self.nodeId);
      proxy.pass();
      await drained;
      await eventually(() => got.length === sent, 'all queued messages delivered');
      expect(got).toEqual(Array.from({ length: sent }, (_, i) => i));
      expect(a.send(b.self.nodeId, note, Buffer.from(payload))).toBe(true);
    } finally {
      await proxy.close();
    }
  });
});
