/** The TypeScript client against a real server with the memory backend. */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { TesseraError } from '../../src/lib/errors.js';
import { Registry } from '../../src/lib/metrics.js';
import type { RequestId } from '../../src/request/backend.js';
import { type RunningServer, startHttpServer } from '../../src/request/http.js';
import { makeTokens, quietLogger, type Tokens } from '../request/fixture.js';
import { MemoryBackend } from '../request/memory-backend.js';
import { rejection } from '../support/rejection.js';

let backend: MemoryBackend;
let server: RunningServer;
let tokens: Tokens;
const clients: TesseraClient[] = [];

function client(opts: ConstructorParameters<typeof TesseraClient>[0] = {}): TesseraClient {
  const c = new TesseraClient({ url: server.url, token: tokens.admin, ...opts });
  clients.push(c);
  return c;
}

beforeEach(async () => {
  backend = new MemoryBackend();
  tokens = await makeTokens(backend);
  server = await startHttpServer(backend, { registry: new Registry(), logger: quietLogger() });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server.close();
});

const retryNow = (code: 'UNAVAILABLE' | 'TOO_MANY_REQUESTS') =>
  new TesseraError(code, 'try again', { retryAfterSeconds: 0 });

describe('client', () => {
  it('typed calls for tables, items, scans, cluster, tokens and metadata', async () => {
    const c = client();
    expect(await c.health()).toEqual({ status: 'ok' });
    expect((await c.createTable('t', { engine: 'lsm' })).engine).toBe('lsm');
    expect(await c.listTables()).toEqual([{ name: 't', engine: 'lsm' }]);
    expect((await c.describeTable('t')).shards).toHaveLength(2);
    const { seq } = await c.put('t', 'a', '1');
    expect((await c.put('t', 'a', '2', { ifMatch: seq })).seq > seq).toBe(true);
    expect((await rejection(c.put('t', 'a', '3', { ifMatch: seq }))).code).toBe('CONDITION_FAILED');
    expect((await rejection(c.put('t', 'a', '3', { ifNoneMatch: true }))).code).toBe('CONDITION_FAILED');
    for (const k of ['b', 'c', 'n', 'o']) await c.put('t', k, k);
    const all: string[] = [];
    for await (const it of c.scanAll('t', { limit: 2 })) all.push(it.keyText);
    expect(all).toEqual(['a', 'b', 'c', 'n', 'o']);
    expect(Buffer.from((await c.get('t', 'a'))!.value).toString()).toBe('2');
    expect(await c.get('t', 'zz')).toBeNull();
    expect((await rejection(c.get('nope', 'a'))).code).toBe('TABLE_NOT_FOUND');
    await c.delete('t', 'a');
    expect((await rejection(c.delete('t', 'a'))).code).toBe('KEY_NOT_FOUND');
    expect((await c.cluster()).groups[0]!.term).toBe(7);
    const tok = await c.createToken({ role: 'read-only', table: 't' });
    expect((await c.listTokens()).some((t) => t.id === tok.id)).toBe(true);
    const ro = client({ token: tok.token });
    expect((await rejection(ro.put('t', 'x', 'y'))).code).toBe('FORBIDDEN');
    await c.revokeToken(tok.id);
    expect((await rejection(ro.get('t', 'b'))).code).toBe('UNAUTHORIZED');
    const backup = await c.backupMetadata();
    await c.dropTable('t');
    await c.restoreMetadata(backup);
    expect((await c.listTables()).map((t) => t.name)).toEqual(['t']);
    expect(await c.metrics()).toContain('tessera_http_requests_total');
    expect((await c.stats()).ops.length).toBeGreaterThan(0);
  });

  it('retries 503 and 429 with the same request id, so the write is applied once', async () => {
    const c = client();
    await c.createTable('t');
    const ids: RequestId[] = [];
    const put = backend.put.bind(backend);
    backend.put = (table, key, value, opts) => {
      ids.push(opts.requestId);
      return put(table, key, value, opts);
    };
    // The failures fire inside the backend's put, before it writes; the fourth attempt succeeds.
    backend.failures.push(retryNow('UNAVAILABLE'), retryNow('TOO_MANY_REQUESTS'), retryNow('UNAVAILABLE'));
    const { seq } = await c.put('t', 'k', 'v');
    expect(seq).toMatch(/^[0-9a-f]{32}$/);
    await c.put('t', 'k2', 'v');
    expect(ids).toHaveLength(5);
    // Every attempt of the first put carried one id (so the state machine can deduplicate them).
    for (const id of ids.slice(0, 4)) expect(id).toEqual(ids[0]);
    expect(ids[4]!.clientId).toBe(ids[0]!.clientId);
    expect(ids[4]!.n).toBe(ids[0]!.n + 1);
    expect(backend.tables.get('t')!.rows.size).toBe(2);
  });

  it('gives up at the deadline with the last error', async () => {
    const c = client({ deadlineMs: 300 });
    await c.createTable('t');
    for (let i = 0; i < 1000; i++)
      backend.failures.push(new TesseraError('UNAVAILABLE', 'no leader', { retryAfterSeconds: 0 }));
    const e = await rejection(c.get('t', 'k'));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toBe('no leader');
    expect(backend.calls).toBeGreaterThan(2);
  });

  it('does not retry errors that are answers (404, 412)', async () => {
    const c = client();
    const before = backend.calls;
    expect((await rejection(c.describeTable('nope'))).code).toBe('TABLE_NOT_FOUND');
    expect(backend.calls - before).toBe(1);
  });

  it('reports an unreachable server as UNAVAILABLE after retrying until the deadline', async () => {
    const spare = net.createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const port = (spare.address() as net.AddressInfo).port;
    await new Promise((r) => spare.close(r));
    const c = new TesseraClient({ url: `http://127.0.0.1:${port}`, deadlineMs: 200 });
    clients.push(c);
    const e = await rejection(c.listTables());
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain('ECONNREFUSED');
  });

  it('runs many concurrent calls over a bounded pool of keep-alive sockets', async () => {
    let connections = 0;
    server.server.on('connection', () => connections++);
    const c = client({ socketsMax: 4 });
    await c.createTable('t');
    const n = 300;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => c.put('t', `k${i}`, `v${i}`)));
    expect(new Set(results.map((r) => r.seq)).size).toBe(n);
    expect(backend.tables.get('t')!.rows.size).toBe(n);
    expect(connections).toBeGreaterThan(0);
    expect(connections).toBeLessThanOrEqual(4);
  });
});
