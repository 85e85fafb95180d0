/** The HTTP server over real sockets: limits (413 before reading, 429), keep-alive, timeouts, e2e. */
import net from 'node:net';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { limits } from '../../src/lib/limits.js';
import { Registry } from '../../src/lib/metrics.js';
import { type HttpServerOptions, type RunningServer, startHttpServer } from '../../src/request/http.js';
import { makeTokens, quietLogger, type Tokens } from './fixture.js';
import { MemoryBackend } from './memory-backend.js';

let backend: MemoryBackend;
let server: RunningServer;
let tokens: Tokens;
let client: TesseraClient;

async function start(opts: HttpServerOptions = {}) {
  backend = new MemoryBackend();
  tokens = await makeTokens(backend);
  await backend.createTable('t', 'btree');
  server = await startHttpServer(backend, { registry: new Registry(), logger: quietLogger(), ...opts });
  client = new TesseraClient({ url: server.url, token: tokens.admin });
}

afterEach(async () => {
  client.close();
  await server.close();
});

/** Sends raw bytes on a new socket; resolves with everything received until the server closes it. */
function raw(port: number, request: string, opts: { after?: (s: net.Socket) => void } = {}) {
  return new Promise<{ text: string; closed: boolean }>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
    });
    s.on('error', (e) =>
      (e as { code?: string }).code === 'ECONNRESET' ? resolve({ text, closed: true }) : reject(e),
    );
    s.on('close', () => resolve({ text, closed: true }));
    s.write(request);
    opts.after?.(s);
  });
}

describe('over real sockets', () => {
  beforeEach(() => start());

  it('round-trips random binary keys and values through put, get and scan', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 256 }),
        async (key, value) => {
          const { seq } = await client.put('t', key, value);
          const got = await client.get('t', key);
          expect(got).not.toBeNull();
          expect(Buffer.from(got!.value)).toEqual(Buffer.from(value));
          expect(got!.seq).toBe(seq);
          const page = await client.scan('t', { start: key, limit: 1 });
          expect(Buffer.from(page.items[0]!.key)).toEqual(Buffer.from(key));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('answers values of every byte exactly on both sides of the inline-body size', async () => {
    const edge = limits.httpInlineBodyBytesMax;
    for (const size of [0, 1, 255, 256, edge - 1, edge, edge + 1, 3 * edge]) {
      const value = Uint8Array.from({ length: size }, (_, i) => (i * 131 + size) & 0xff);
      const key = new TextEncoder().encode(`size-${size}`);
      await client.put('t', key, value);
      const res = await fetch(`${server.url}/v1/tables/t/items/size-${size}`, {
        headers: { authorization: `Bearer ${tokens.admin}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(size));
      expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from(value));
    }
  });

  it('answers 413 on a too-large Content-Length before reading the body, and closes', async () => {
    const before = backend.dump();
    const req =
      `PUT /v1/tables/t/items/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.rw}\r\n` +
      `Content-Length: ${limits.valueBytesMax + 1}\r\n\r\n`;
    const res = await raw(server.port, req); // no body sent at all: the answer can't wait for it
    expect(res.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(res.text).toContain('"code":"VALUE_TOO_LARGE"');
    expect(res.text.toLowerCase()).toContain('connection: close');
    expect(res.closed).toBe(true);
    expect(backend.dump()).toBe(before);
  });

  it('stops a chunked body as soon as it passes the limit', async () => {
    const before = backend.dump();
    const head = `PUT /v1/tables/t/items/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.rw}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const res = await raw(server.port, head, {
      after: (s) => {
        let sent = 0;
        const pump = () => {
          while (sent < 20 && !s.destroyed) {
            sent++;
            if (!s.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`))
              return s.once('drain', pump);
          }
        };
        pump();
      },
    });
    expect(res.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(res.text).toContain('"code":"VALUE_TOO_LARGE"');
    expect(backend.dump()).toBe(before);
  });

  it('refuses Expect: 100-continue uploads that are too large without asking for the body', async () => {
    const req =
      `PUT /v1/tables/t/items/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.rw}\r\n` +
      `Expect: 100-continue\r\nContent-Length: ${limits.valueBytesMax + 10}\r\n\r\n`;
    const res = await raw(server.port, req);
    expect(res.text).not.toContain('100 Continue');
    expect(res.text).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('answers 405 with Allow, and 401 before reading a body', async () => {
    const res = await raw(server.port, 'PATCH /v1/tables/t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(res.text).toMatch(/^HTTP\/1\.1 405 /);
    expect(res.text).toMatch(/\r\nallow: GET, PUT, DELETE, HEAD\r\n/i);
    const unauth = await raw(
      server.port,
      'PUT /v1/tables/t/items/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc',
    );
    expect(unauth.text).toMatch(/^HTTP\/1\.1 401 /);
    expect(unauth.text).toContain('"code":"UNAUTHORIZED"');
  });

  it('answers 431 in JSON to oversized headers, and 400 to garbage', async () => {
    const big = await raw(
      server.port,
      `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(big.text).toMatch(/^HTTP\/1\.1 431 /);
    expect(big.text).toContain('"code":"HEADERS_TOO_LARGE"');
    const bad = await raw(server.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(bad.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad.text).toContain('"code":"BAD_REQUEST"');
  });

  it('answers pipelined requests in order on one connection', async () => {
    const auth = `Authorization: Bearer ${tokens.rw}\r\n`;
    const res = await raw(
      server.port,
      `PUT /v1/tables/t/items/p1 HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 3\r\n\r\none` +
        `GET /v1/tables/t/items/p1 HTTP/1.1\r\nHost: x\r\n${auth}\r\n` +
        `GET /v1/tables/t/items/absent HTTP/1.1\r\nHost: x\r\n${auth}\r\n` +
        `PUT /v1/tables/t/items/p2 HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\n\r\n` +
        `2\r\ntw\r\n1;x=y\r\no\r\n0\r\n\r\n` +
        `GET /v1/tables/t/items/p2 HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`,
    );
    const statuses = [...res.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '404', '200', '200']);
    expect(res.text).toMatch(/\r\n\r\none/);
    expect(res.text.endsWith('\r\n\r\ntwo')).toBe(true);
    expect(res.text.toLowerCase()).toMatch(/\r\ndate: [a-z]{3}, \d\d [a-z]{3} \d{4} /);
    expect(res.closed).toBe(true);
  });

  it('closes HTTP/1.0 connections unless asked to keep them, and answers HEAD without a body', async () => {
    await client.put('t', 'h', 'hello');
    const auth = `Authorization: Bearer ${tokens.rw}\r\n`;
    const once = await raw(server.port, `GET /v1/tables/t/items/h HTTP/1.0\r\n${auth}\r\n`);
    expect(once.text).toMatch(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\nhello$/);
    expect(once.closed).toBe(true);
    const kept = await raw(
      server.port,
      `HEAD /v1/tables/t/items/h HTTP/1.0\r\nConnection: keep-alive\r\n${auth}\r\n` +
        `GET /v1/tables/t/items/h HTTP/1.1\r\nConnection: close\r\n${auth}\r\n`,
    );
    const [first, second] = kept.text.split(/(?=HTTP\/1\.1 )/);
    expect(first!.toLowerCase()).toContain('connection: keep-alive');
    expect(first!.toLowerCase()).toContain('content-length: 5');
    expect(first!.endsWith('\r\n\r\n')).toBe(true);
    expect(second).toMatch(/\r\n\r\nhello$/);
  });

  it('asks for the body of an accepted Expect: 100-continue upload, then stores it', async () => {
    const value = 'x'.repeat(1000);
    const res = await raw(
      server.port,
      `PUT /v1/tables/t/items/cont HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.rw}\r\n` +
        `Expect: 100-continue\r\nContent-Length: ${value.length}\r\nConnection: close\r\n\r\n`,
      {
        after: (s) => {
          s.once('data', (d) => {
            expect(d.toString('latin1')).toBe('HTTP/1.1 100 Continue\r\n\r\n');
            s.write(value);
          });
        },
      },
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(Buffer.from((await client.get('t', 'cont'))!.value).toString()).toBe(value);
  });

  it('refuses smuggling-prone and malformed requests with 400 and closes, changing nothing', async () => {
    const before = backend.dump();
    const auth = `Authorization: Bearer ${tokens.rw}\r\n`;
    for (const req of [
      `PUT /v1/tables/t/items/s HTTP/1.1\r\n${auth}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
      `PUT /v1/tables/t/items/s HTTP/1.1\r\n${auth}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`,
      `PUT /v1/tables/t/items/s HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
      `GET /v1/tables/t/items/s HTTP/1.1\r\n${auth}X-Folded: a\r\n b\r\n\r\n`,
    ]) {
      const res = await raw(server.port, req);
      expect(res.text).toMatch(/^HTTP\/1\.1 400 /);
      expect(res.text).toContain('"code":"BAD_REQUEST"');
      expect(res.closed).toBe(true);
    }
    expect(backend.dump()).toBe(before);
    expect(await client.get('t', 'ok')).toBeNull(); // and the server still serves
  });

  it('closes idle keep-alive connections after the keep-alive timeout', async () => {
    await server.close();
    await start({ keepAliveTimeoutMs: 200, connectionsCheckIntervalMs: 50 });
    const startedAt = Date.now();
    const res = await raw(server.port, `GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(res.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(res.closed).toBe(true);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(150);
  });

  it('keeps connections alive: many sequential requests share one socket', async () => {
    let connections = 0;
    server.server.on('connection', () => connections++);
    const one = new TesseraClient({ url: server.url, token: tokens.rw, socketsMax: 1 });
    for (let i = 0; i < 20; i++) {
      await one.put('t', `k${i}`, 'v');
      expect(await one.get('t', `absent${i}`)).toBeNull(); // an error answer keeps the connection too
    }
    one.close();
    expect(connections).toBe(1);
  });

  it('serves the dashboard page and the metrics without a token', async () => {
    const page = await fetch(`${server.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<title>Tessera dashboard</title>');
    const m = await fetch(`${server.url}/metrics`);
    expect(await m.text()).toContain('# TYPE tessera_http_request_duration_seconds histogram');
  });
});

describe('bounds', () => {
  it('answers 429 with Retry-After beyond the in-flight limit, and serves the others', async () => {
    await start({ inflightMax: 2 });
    let release!: () => void;
    backend.gate = new Promise((r) => (release = r));
    const c = new TesseraClient({ url: server.url, token: tokens.rw, deadlineMs: 30_000 });
    const held = [c.put('t', 'a', '1'), c.put('t', 'b', '2')];
    while (backend.calls < 2) await new Promise((r) => setTimeout(r, 5));
    const before = backend.dump();
    const res = await fetch(`${server.url}/v1/tables/t/items/c`, {
      method: 'PUT',
      body: 'x',
      headers: { authorization: `Bearer ${tokens.rw}` },
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_REQUESTS');
    expect(backend.dump()).toBe(before);
    expect(server.api.registry.expose()).toContain(
      'tessera_http_requests_total{op="item.put",code="TOO_MANY_REQUESTS"} 1',
    );
    release();
    backend.gate = null;
    const seqs = await Promise.all(held);
    expect(seqs.every((s) => /^[0-9a-f]{32}$/.test(s.seq))).toBe(true);
    c.close();
  });

  it('closes a connection whose headers never complete (slowloris)', async () => {
    await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, connectionsCheckIntervalMs: 100 });
    const res = await raw(server.port, 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(res.closed).toBe(true);
    expect(res.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(res.text).toContain('{"error":{"code":"REQUEST_TIMEOUT"');
  });

  it('closes a connection whose body never arrives', async () => {
    await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, connectionsCheckIntervalMs: 100 });
    const req = `PUT /v1/tables/t/items/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.rw}\r\nContent-Length: 10\r\n\r\nab`;
    const before = backend.dump();
    const res = await raw(server.port, req);
    expect(res.closed).toBe(true);
    expect(backend.dump()).toBe(before);
    for (let i = 0; i < 200 && server.api.stats().inflight !== 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(server.api.stats().inflight).toBe(0);
  });
});
