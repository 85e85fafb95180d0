/**
 * The HTTP API (API.md) against ONE real `tessera dev` cluster (3 MM, 2 groups of 3 storage nodes,
 * a request manager, all processes), with raw fetch so that status, error body and headers are
 * asserted exactly:
 *   - every error status of API.md (400 401 403 404 405 409 412 413, and 431), each with the code
 *     docs/errors.md gives it; after each one the cluster is healthy, every seeded item has exactly
 *     its bytes and seq, no key, table or token appeared, and finally writes still succeed;
 *   - a second request manager started beside the first: tables, items, seqs, conditional writes,
 *     concurrent writes and token revocation are the same through both.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChildRm,
  call,
  createToken,
  expectError,
  expectItem,
  expectWritten,
  freePort,
  inBatches,
  type Item,
  itemPath,
  putItem,
  type Res,
  rawCall,
  revokeToken,
  scanAll,
  scanLines,
  startRequestManager,
  stopChild,
} from './api-cluster-helpers.js';
import { exited, isAlive, readClusterJson, startDev, stopDev, waitFor } from './dev-cluster.js';

const devArgs = ['--port', '0', '--groups', '2', '--spares', '0'];
const dir = mkdtempSync(path.join(tmpdir(), 'tessera-api-'));
let proc: ChildProcess | undefined;
let url = '';
let admin = '';
const childPids = new Set<number>();

beforeAll(async () => {
  const dev = await startDev(dir, devArgs, 90_000);
  proc = dev.proc;
  url = dev.url;
  for (const p of readClusterJson(dir)) if (p.pid !== null && p.role !== 'dev') childPids.add(p.pid);
  admin = readFileSync(path.join(dir, 'admin.token'), 'utf8').trim();
}, 120_000);

afterAll(async () => {
  if (proc !== undefined) await stopDev(proc, 10_000);
  for (const pid of childPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const b = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s) : Buffer.from(s));
const json = (v: unknown): string => JSON.stringify(v);
const tableList = [
  { name: 'bt', engine: 'btree' },
  { name: 'ls', engine: 'lsm' },
];

describe('every error path against a real cluster', () => {
  const seeded: Item[] = [];
  const tok = { readOnly: '', readWrite: '', scoped: '', revoked: '' };
  let tokenIds: string[] = [];
  const tomb = new Map<string, { live: string; dead: string }>();
  const tombMatch = (table: string, which: 'live' | 'dead') => ({
    'if-match': `"${tomb.get(table)![which]}"`,
  });
  const item = (table: string, i: number): Item => seeded.filter((s) => s.table === table)[i]!;
  const seqOf = (table: string, i: number): string => item(table, i).seq;
  const p = (table: string, i: number): string => itemPath(table, item(table, i).key);
  const gp = (table: string, name: string): string => itemPath(table, b(`ghost-${name}`));

  const listTokenIds = async (): Promise<string[]> => {
    const r = await call(url, 'GET', '/v1/tokens', { token: admin });
    expect(r.status).toBe(200);
    return (JSON.parse(r.body.toString()) as { tokens: { id: string }[] }).tokens.map((t) => t.id).sort();
  };

  beforeAll(async () => {
    for (const t of tableList) {
      const r = await call(url, 'PUT', `/v1/tables/${t.name}`, {
        token: admin,
        body: json({ engine: t.engine }),
      });
      expect(r.status, r.body.toString()).toBe(201);
      expect(r.headers.get('location')).toBe(`/v1/tables/${t.name}`);
    }
    const kvs: [Buffer, Buffer][] = [
      [b('a'), b('alpha')],
      [b([0x00]), b([0x00, 0x01, 0x02, 0xff])],
      [b('dir/file.txt'), b('a key with a slash')],
      [b([0xff, 0xfe]), b('high bytes')],
      [b('empty'), b('')],
      [b('k'.repeat(1024)), Buffer.alloc(70_000, 0x5a)],
      [b('100% sure? #1 &x=y'), b('a key to escape')],
    ];
    for (const t of tableList)
      for (const [k, v] of kvs) seeded.push(await putItem(url, admin, t.name, k, Buffer.from(v)));
    tok.readOnly = (await createToken(url, admin, 'read-only', null)).token;
    tok.readWrite = (await createToken(url, admin, 'read-write', null)).token;
    tok.scoped = (await createToken(url, admin, 'read-write', 'bt')).token;
    const revoked = await createToken(url, admin, 'read-write', null);
    await revokeToken(url, admin, revoked.id);
    tok.revoked = revoked.token;
    tokenIds = await listTokenIds();
    expect(tokenIds).not.toContain(revoked.id);
    // A key written and deleted: its seqs (live, then the delete's) must not match it any more.
    for (const t of tableList) {
      const w = await putItem(url, admin, t.name, b('ghost-tomb'), b('buried'));
      const d = expectWritten(await call(url, 'DELETE', gp(t.name, 'tomb'), { token: admin }));
      expect(d > w.seq).toBe(true);
      tomb.set(t.name, { live: w.seq, dead: d });
    }
  }, 60_000);

  /** Keys failed writes aimed at (`gp`), and tables failed creates named: none of them may exist. */
  const ghosts = 'tomb inm rid anon unknown ro scoped get del ifm big chunked'.split(' ');
  const ghostTables = ['newt', 'missing'];

  /** Nothing a failed request touched changed: health, items (bytes + ETag), keys, tables, tokens. */
  async function intact(): Promise<void> {
    const h = await call(url, 'GET', '/v1/health');
    expect([h.status, h.body.toString()]).toEqual([200, '{"status":"ok"}']);
    for (const s of seeded) await expectItem(url, admin, s);
    for (const t of tableList)
      expect(await scanAll(url, admin, t.name)).toEqual(scanLines(seeded.filter((s) => s.table === t.name)));
    const tl = await call(url, 'GET', '/v1/tables', { token: admin });
    expect(JSON.parse(tl.body.toString())).toEqual({ tables: tableList });
    expect(await listTokenIds()).toEqual(tokenIds);
    for (const t of tableList)
      for (const g of ghosts)
        expectError(await call(url, 'GET', gp(t.name, g), { token: admin }), 404, 'KEY_NOT_FOUND');
    for (const t of ghostTables)
      expectError(await call(url, 'GET', `/v1/tables/${t}`, { token: admin }), 404, 'TABLE_NOT_FOUND');
  }

  /** One test per request: exactly this error, then intact(). */
  function errors(status: number, code: string, sends: Record<string, () => Promise<Res>>): void {
    for (const [name, send] of Object.entries(sends))
      it(`${status} ${code}: ${name}`, async () => {
        const r = await send();
        expectError(r, status, code);
        if (status === 405) expect(r.headers.get('allow')).not.toBeNull();
        await intact();
      });
  }
  /** A 405 must also say which methods the route takes. */
  const allowing = (allow: string, send: () => Promise<Res>) => async (): Promise<Res> => {
    const r = await send();
    expect(r.headers.get('allow')).toBe(allow);
    return r;
  };

  const as = (token: () => string) => ({
    get: (path: string, headers: Record<string, string> = {}) =>
      call(url, 'GET', path, { token: token(), headers }),
    put: (path: string, body: string | Uint8Array | ReadableStream<Uint8Array>, headers = {}) =>
      call(url, 'PUT', path, { token: token(), body, headers }),
    del: (path: string, headers: Record<string, string> = {}) =>
      call(url, 'DELETE', path, { token: token(), headers }),
    post: (path: string, body: string) => call(url, 'POST', path, { token: token(), body }),
    send: (method: string, path: string) => call(url, method, path, { token: token() }),
  });
  const A = as(() => admin);
  const RO = as(() => tok.readOnly);
  const RW = as(() => tok.readWrite);
  const SC = as(() => tok.scoped);
  const long = 'a'.repeat(65);
  const zeros = '0'.repeat(32);
  const tooBig = (): Buffer => Buffer.alloc(1_048_577, 0x41);
  const streamed = (n: number): ReadableStream<Uint8Array> => {
    let left = n;
    return new ReadableStream({
      pull(ctrl) {
        if (left === 0) return ctrl.close();
        const chunk = new Uint8Array(Math.min(left, 64 * 1024)).fill(0x42);
        left -= chunk.length;
        ctrl.enqueue(chunk);
      },
    });
  };
  const itemAllow = 'GET, PUT, DELETE, HEAD';

  errors(400, 'INVALID_TABLE_NAME', {
    'describe a 65-character table name': () => A.get(`/v1/tables/${long}`),
    'create a 65-character table name': () => A.put(`/v1/tables/${long}`, json({ engine: 'btree' })),
    'create a table name with a space': () => A.put('/v1/tables/bad%20name', ''),
    'create a non-ASCII table name': () => A.put('/v1/tables/%C3%A9t%C3%A9', ''),
    'create an empty table name': () => A.put('/v1/tables/', ''),
    'create the table ".."': () => rawCall(url, 'PUT', '/v1/tables/..', admin),
    'get an item of the table "."': () => rawCall(url, 'GET', '/v1/tables/./items/a', admin),
    'put into a table name with an encoded slash': () => A.put('/v1/tables/bt%2Fx/items/a', 'v'),
    'create a token scoped to a bad table name': () =>
      A.post('/v1/tokens', json({ role: 'read-only', table: 'bad name' })),
  });
  errors(400, 'BAD_REQUEST', {
    'a malformed percent-escape in a table name': () => A.get('/v1/tables/b%ZZ'),
    'create with a body that is not JSON': () => A.put('/v1/tables/newt', '{"engine":'),
    'create with a JSON array': () => A.put('/v1/tables/newt', '["lsm"]'),
    'create with a JSON string': () => A.put('/v1/tables/newt', '"lsm"'),
    'create with JSON null': () => A.put('/v1/tables/newt', 'null'),
    'create with an unknown field': () => A.put('/v1/tables/newt', json({ engine: 'lsm', shards: 4 })),
    'create with a body that is not UTF-8': () => A.put('/v1/tables/newt', b([0xff, 0xfe, 0x7b])),
    'scan with limit=0': () => A.get('/v1/tables/bt/items?limit=0'),
    'scan with limit=10001': () => A.get('/v1/tables/ls/items?limit=10001'),
    'scan with limit=abc': () => A.get('/v1/tables/bt/items?limit=abc'),
    'scan with limit=-1': () => A.get('/v1/tables/bt/items?limit=-1'),
    'scan with an empty limit': () => A.get('/v1/tables/ls/items?limit='),
    'scan with limit given twice': () => A.get('/v1/tables/bt/items?limit=1&limit=2'),
    'scan with an unknown parameter': () => A.get('/v1/tables/bt/items?cursor=a'),
    'scan with a malformed start cursor': () => A.get('/v1/tables/ls/items?start=%ZZ'),
    'scan with a malformed end': () => A.get('/v1/tables/bt/items?end=%G0'),
    'scan with a truncated prefix escape': () => A.get('/v1/tables/bt/items?prefix=a%4'),
    'put a key with a malformed escape': () => A.put('/v1/tables/bt/items/ghost-%2', 'v'),
    'put with If-Match: *': () => A.put(p('bt', 0), 'x', { 'if-match': '*' }),
    'put with two If-Match tags': () =>
      A.put(p('ls', 2), 'x', { 'if-match': `"${seqOf('ls', 2)}", "${zeros}"` }),
    'put with If-Match and If-None-Match': () =>
      A.put(p('bt', 2), 'x', { 'if-match': `"${seqOf('bt', 2)}"`, 'if-none-match': '*' }),
    'put with If-None-Match of a seq': () => A.put(gp('bt', 'inm'), 'x', { 'if-none-match': `"${zeros}"` }),
    'delete with If-None-Match: *': () => A.del(p('ls', 3), { 'if-none-match': '*' }),
    'put with a malformed Tessera-Request-Id': () =>
      A.put(gp('ls', 'rid'), 'x', { 'tessera-request-id': 'no number' }),
    'create a token with the role "root"': () => A.post('/v1/tokens', json({ role: 'root' })),
    'create a token with a body that is not JSON': () => A.post('/v1/tokens', '{role'),
  });
  errors(400, 'INVALID_ENGINE', {
    'create with the engine "rocksdb"': () => A.put('/v1/tables/newt', json({ engine: 'rocksdb' })),
    'create with the engine "BTREE"': () => A.put('/v1/tables/newt', json({ engine: 'BTREE' })),
    'create with a numeric engine': () => A.put('/v1/tables/newt', json({ engine: 1 })),
  });
  errors(400, 'KEY_EMPTY', {
    'get an empty key': () => A.get('/v1/tables/bt/items/'),
    'put an empty key': () => A.put('/v1/tables/ls/items/', 'v'),
  });
  errors(400, 'INVALID_SEQ', {
    'put with If-Match not a seq': () => A.put(p('bt', 0), 'x', { 'if-match': '"abc"' }),
    'delete with If-Match in upper-case hex': () =>
      A.del(p('ls', 0), { 'if-match': `"${seqOf('ls', 0).toUpperCase()}"` }),
    'put with a weak If-Match': () => A.put(p('bt', 1), 'x', { 'if-match': `W/"${seqOf('bt', 1)}"` }),
    'put with If-Match of 31 hex digits': () =>
      A.put(p('ls', 1), 'x', { 'if-match': `"${seqOf('ls', 1).slice(1)}"` }),
    'get with If-Match not a seq': () => A.get(p('bt', 0), { 'if-match': '"zz"' }),
  });
  errors(401, 'UNAUTHORIZED', {
    'get without a token': () => call(url, 'GET', p('bt', 0)),
    'put without a token': () => call(url, 'PUT', gp('bt', 'anon'), { body: 'x' }),
    'list tables without a token': () => call(url, 'GET', '/v1/tables'),
    'a token that is not a token': () => as(() => 'nope').get(p('ls', 0)),
    'Basic instead of Bearer': () =>
      call(url, 'GET', p('ls', 0), { headers: { authorization: `Basic ${admin}` } }),
    'a well-formed unknown token': () => as(() => `tess_${'A'.repeat(43)}`).put(gp('ls', 'unknown'), 'x'),
    'a revoked token': () => as(() => tok.revoked).put(p('bt', 0), 'x'),
    'no token beats an oversize key': () => call(url, 'GET', `/v1/tables/bt/items/${'k'.repeat(1025)}`),
  });
  errors(403, 'FORBIDDEN', {
    'read-only token puts an existing key': () => RO.put(p('bt', 0), 'x'),
    'read-only token puts a new key': () => RO.put(gp('ls', 'ro'), 'x'),
    'read-only token deletes a key': () => RO.del(p('ls', 1)),
    'read-only token creates a table': () => RO.put('/v1/tables/newt', ''),
    'read-write token creates a table': () => RW.put('/v1/tables/newt', json({ engine: 'lsm' })),
    'read-write token drops a table': () => RW.del('/v1/tables/ls'),
    'read-write token creates a token': () => RW.post('/v1/tokens', json({ role: 'admin' })),
    'read-only token lists tokens': () => RO.get('/v1/tokens'),
    'token scoped to bt gets from ls': () => SC.get(p('ls', 0)),
    'token scoped to bt puts into ls': () => SC.put(gp('ls', 'scoped'), 'x'),
    'token scoped to bt overwrites in ls': () => SC.put(p('ls', 2), 'x'),
    'token scoped to bt deletes from ls': () => SC.del(p('ls', 3)),
    'token scoped to bt scans ls': () => SC.get('/v1/tables/ls/items'),
    'token scoped to bt describes ls': () => SC.get('/v1/tables/ls'),
  });
  errors(404, 'TABLE_NOT_FOUND', {
    'describe a missing table': () => A.get('/v1/tables/missing'),
    'describe a missing 64-character table': () => A.get(`/v1/tables/${'a'.repeat(64)}`),
    'get from a missing table': () => A.get('/v1/tables/missing/items/a'),
    'put into a missing table': () => A.put('/v1/tables/missing/items/a', 'x'),
    'delete from a missing table': () => A.del('/v1/tables/missing/items/a'),
    'scan a missing table': () => A.get('/v1/tables/missing/items?limit=5'),
    'scan an empty range of a missing table': () => A.get('/v1/tables/missing/items?start=b&end=a'),
    'drop a missing table': () => A.del('/v1/tables/missing'),
  });
  errors(404, 'KEY_NOT_FOUND', {
    'get a missing key (btree)': () => A.get(gp('bt', 'get')),
    'get a missing key (lsm)': () => A.get(gp('ls', 'get')),
    'delete a missing key (btree)': () => A.del(gp('bt', 'del')),
    'delete a missing key (lsm)': () => A.del(gp('ls', 'del')),
  });
  errors(404, 'NOT_FOUND', {
    'an unknown route': () => A.get('/v1/nope'),
    'an item path with one segment too many': () => A.put('/v1/tables/bt/items/a/b', 'x'),
  });
  errors(404, 'TOKEN_NOT_FOUND', {
    'revoke an unknown token id': () => A.del('/v1/tokens/00000000ffffffff'),
    'revoke a token id that is not one': () => A.del('/v1/tokens/not-an-id'),
  });
  errors(405, 'METHOD_NOT_ALLOWED', {
    'POST an item': allowing(itemAllow, () => A.send('POST', p('bt', 0))),
    'PATCH an item': allowing(itemAllow, () => A.send('PATCH', p('ls', 0))),
    'POST a table': allowing(itemAllow, () => A.send('POST', '/v1/tables/bt')),
    'PUT the table list': allowing('GET, HEAD', () => A.send('PUT', '/v1/tables')),
    'DELETE the scan route': allowing('GET, HEAD', () => A.send('DELETE', '/v1/tables/ls/items')),
    'DELETE health': allowing('GET, HEAD', () => A.send('DELETE', '/v1/health')),
    'GET a token': allowing('DELETE', () => A.send('GET', '/v1/tokens/00000000ffffffff')),
  });
  errors(409, 'TABLE_EXISTS', {
    'create the existing btree table': () => A.put('/v1/tables/bt', json({ engine: 'btree' })),
    'create the existing lsm table as btree': () => A.put('/v1/tables/ls', json({ engine: 'btree' })),
    'create an existing table without a body': () => A.put('/v1/tables/bt', ''),
  });
  errors(412, 'CONDITION_FAILED', {
    'put If-Match the seq of another key (btree)': () =>
      A.put(p('bt', 0), 'x', { 'if-match': `"${seqOf('bt', 1)}"` }),
    'put If-Match a zero seq (lsm)': () => A.put(p('ls', 0), 'x', { 'if-match': `"${zeros}"` }),
    'put If-Match on a missing key': () => A.put(gp('bt', 'ifm'), 'x', { 'if-match': `"${seqOf('bt', 0)}"` }),
    'delete If-Match a wrong seq (btree)': () => A.del(p('bt', 2), { 'if-match': `"${seqOf('bt', 3)}"` }),
    'delete If-Match a wrong seq (lsm)': () => A.del(p('ls', 4), { 'if-match': `"${seqOf('bt', 4)}"` }),
    'If-None-Match: * on an existing key (btree)': () => A.put(p('bt', 3), 'x', { 'if-none-match': '*' }),
    'If-None-Match: * on an existing key (lsm)': () => A.put(p('ls', 5), 'x', { 'if-none-match': '*' }),
    'If-None-Match: * on the empty value': () => A.put(p('bt', 4), '', { 'if-none-match': '*' }),
    'get If-Match a wrong seq': () => A.get(p('ls', 1), { 'if-match': `"${zeros}"` }),
    'put If-Match the seq a deleted key had (btree)': () =>
      A.put(gp('bt', 'tomb'), 'x', tombMatch('bt', 'live')),
    'put If-Match the seq of the delete (lsm)': () => A.put(gp('ls', 'tomb'), 'x', tombMatch('ls', 'dead')),
    'delete If-Match the seq of the delete (btree)': () => A.del(gp('bt', 'tomb'), tombMatch('bt', 'dead')),
    'get If-Match the seq of the delete (lsm)': () => A.get(gp('ls', 'tomb'), tombMatch('ls', 'dead')),
  });
  errors(413, 'KEY_TOO_LARGE', {
    'put a key of 1,025 bytes': () => A.put(`/v1/tables/bt/items/${'k'.repeat(1025)}`, 'x'),
    'get a key of 1,025 escaped bytes': () => A.get(`/v1/tables/ls/items/${'%FF'.repeat(1025)}`),
    'delete a key of 1,025 bytes': () => A.del(`/v1/tables/ls/items/${'k'.repeat(1025)}`),
  });
  errors(413, 'VALUE_TOO_LARGE', {
    'put a value of 1,048,577 bytes': () => A.put(gp('bt', 'big'), tooBig()),
    'overwrite with a value of 1,048,577 bytes': () => A.put(p('ls', 0), tooBig()),
    'If-None-Match put of 1,048,577 bytes': () => A.put(gp('ls', 'big'), tooBig(), { 'if-none-match': '*' }),
    'stream a value of 1,048,577 bytes (chunked)': () => A.put(gp('bt', 'chunked'), streamed(1_048_577)),
  });
  errors(413, 'BODY_TOO_LARGE', {
    'a table-create body over 64 KiB': () =>
      A.put('/v1/tables/newt', json({ engine: 'lsm', pad: 'p'.repeat(70_000) })),
    'a token-create body over 64 KiB': () =>
      A.post('/v1/tokens', json({ role: 'admin', pad: 'p'.repeat(70_000) })),
    'a delete with a body over 64 KiB': () =>
      call(url, 'DELETE', p('bt', 5), { token: admin, body: Buffer.alloc(70_000) }),
  });
  errors(431, 'HEADERS_TOO_LARGE', {
    'a 20 KB header': () => A.get(p('bt', 0), { 'x-pad': 'h'.repeat(20_000) }),
  });

  it('the same tokens do what they may: scoped on its table, read-only reads', async () => {
    expect((await SC.get(p('bt', 0))).status).toBe(200);
    const r = await SC.get('/v1/tables');
    expect(JSON.parse(r.body.toString())).toEqual({ tables: [tableList[0]] });
    const scan = await RO.get('/v1/tables/ls/items?limit=2');
    expect(scan.status).toBe(200);
    expect((JSON.parse(scan.body.toString()) as { items: unknown[] }).items.length).toBe(2);
    await intact();
  });

  it('after all the errors, a put per table still succeeds, at the limits too', async () => {
    // btree: the largest key with the largest value; lsm: a new key with If-None-Match: *, its
    // 1 MiB value streamed (chunked), as the oversize one was.
    const bigKey = b('z'.repeat(1024));
    const bigValue = Buffer.alloc(1_048_576, 0x61);
    const r1 = await A.put(itemPath('bt', bigKey), bigValue);
    const big: Item = { table: 'bt', key: bigKey, value: bigValue, seq: expectWritten(r1) };
    const freshKey = b('fresh-key');
    const r2 = await A.put(itemPath('ls', freshKey), streamed(1_048_576), { 'if-none-match': '*' });
    const fresh: Item = {
      table: 'ls',
      key: freshKey,
      value: Buffer.alloc(1_048_576, 0x42),
      seq: expectWritten(r2),
    };
    // And a conditional overwrite with the seeded seq: the seq grows.
    const old = item('bt', 0);
    const r3 = await A.put(p('bt', 0), 'alpha-2', { 'if-match': `"${old.seq}"` });
    const next: Item = { ...old, value: b('alpha-2'), seq: expectWritten(r3) };
    expect(next.seq > old.seq).toBe(true);
    for (const s of seeded) expect(big.seq > s.seq && fresh.seq > s.seq).toBe(true);
    seeded.splice(seeded.indexOf(old), 1, next);
    seeded.push(big, fresh);
    await intact();
  });
});

describe('two request managers side by side', () => {
  let rm2: ChildRm | undefined;
  let url2 = '';

  beforeAll(async () => {
    const mm = readClusterJson(dir)
      .filter((p) => p.role === 'metadata')
      .map((p) => `${p.id}=127.0.0.1:${p.ports.rpc}`)
      .join(',');
    expect(mm.split(',').length).toBe(3);
    const started = startRequestManager(dir, mm, await freePort());
    rm2 = started;
    url2 = started.url;
    let gone = false;
    void exited(started.proc).then(() => (gone = true));
    await waitFor(
      'the second request manager to be healthy',
      async () => {
        if (gone) throw new Error(`the second request manager exited:\n${started.output()}`);
        const r = await fetch(`${url2}/v1/health`).catch(() => null);
        return r?.status === 200;
      },
      60_000,
    );
  }, 90_000);

  afterAll(async () => {
    if (rm2 !== undefined) await stopChild(rm2.proc);
    if (rm2?.proc.pid !== undefined) expect(isAlive(rm2.proc.pid)).toBe(false);
  }, 30_000);

  const via = (base: () => string) => ({
    put: (table: string, key: Buffer, value: Buffer | string, headers: Record<string, string> = {}) =>
      call(base(), 'PUT', itemPath(table, key), { token: admin, body: value, headers }),
    del: (table: string, key: Buffer, headers: Record<string, string> = {}) =>
      call(base(), 'DELETE', itemPath(table, key), { token: admin, headers }),
  });
  const rm1 = via(() => url);
  const rmB = via(() => url2);
  const both = (): string[] => [url, url2];

  it('a table created through RM1 is usable through RM2, and the earlier data reads the same', async () => {
    const r = await call(url, 'PUT', '/v1/tables/side', { token: admin, body: json({ engine: 'lsm' }) });
    expect(r.status, r.body.toString()).toBe(201);
    const d = await call(url2, 'GET', '/v1/tables/side', { token: admin });
    expect(d.status, d.body.toString()).toBe(200);
    expect((JSON.parse(d.body.toString()) as { engine: string }).engine).toBe('lsm');
    const w = await putItem(url2, admin, 'side', b('from-rm2'), b('two'));
    for (const base of both()) await expectItem(base, admin, w);
    // Errors are the same through RM2 (a sample).
    expectError(await call(url2, 'PUT', '/v1/tables/side', { token: admin }), 409, 'TABLE_EXISTS');
    expectError(await call(url2, 'GET', '/v1/tables/nope/items/a', { token: admin }), 404, 'TABLE_NOT_FOUND');
    expectError(await call(url2, 'GET', '/v1/tables/side/items/x'), 401, 'UNAUTHORIZED');
    // The items of the first describe block, byte for byte with their seqs, through RM2.
    for (const t of ['bt', 'ls']) {
      const rows = await scanAll(url, admin, t);
      expect(rows.length).toBeGreaterThan(5);
      expect(await scanAll(url2, admin, t)).toEqual(rows);
    }
  });

  it('writes through either are read through both with the same seq', async () => {
    const a = await putItem(url2, admin, 'side', b('k-rm2'), b('written via rm2'));
    const c = await putItem(url, admin, 'side', b('k-rm1'), b([0xff, 0x00, 0xfe]));
    for (const base of both()) for (const x of [a, c]) await expectItem(base, admin, x);
    const over = {
      ...a,
      value: b('overwritten via rm1'),
      seq: expectWritten(await rm1.put('side', a.key, 'overwritten via rm1')),
    };
    expect(over.seq > a.seq).toBe(true);
    for (const base of both()) await expectItem(base, admin, over);
    expectWritten(await rmB.del('side', c.key));
    for (const base of both())
      expectError(await call(base, 'GET', itemPath('side', c.key), { token: admin }), 404, 'KEY_NOT_FOUND');
  });

  it('a conditional write through RM2 with the seq read from RM1 succeeds once; the stale seq is refused', async () => {
    const key = b('cas');
    const first = await putItem(url, admin, 'side', key, b('v0'));
    const read = await call(url, 'GET', itemPath('side', key), { token: admin });
    const seq = (read.headers.get('etag') ?? '').replaceAll('"', '');
    expect(seq).toBe(first.seq);
    const won = expectWritten(await rmB.put('side', key, 'v1', { 'if-match': `"${seq}"` }));
    expect(won > seq).toBe(true);
    expectError(await rmB.put('side', key, 'v2', { 'if-match': `"${seq}"` }), 412, 'CONDITION_FAILED');
    expectError(await rm1.put('side', key, 'v3', { 'if-match': `"${seq}"` }), 412, 'CONDITION_FAILED');
    expectError(await rm1.del('side', key, { 'if-match': `"${seq}"` }), 412, 'CONDITION_FAILED');
    expectError(await rmB.put('side', key, 'v4', { 'if-none-match': '*' }), 412, 'CONDITION_FAILED');
    for (const base of both())
      await expectItem(base, admin, { table: 'side', key, value: b('v1'), seq: won });
    // The winner's seq works through the other request manager.
    const again = expectWritten(await rm1.put('side', key, 'v5', { 'if-match': `"${won}"` }));
    for (const base of both())
      await expectItem(base, admin, { table: 'side', key, value: b('v5'), seq: again });
  });

  it('concurrent puts of distinct keys through both are all readable through both', async () => {
    const n = 200;
    const keys = (rm: string) =>
      Array.from({ length: n }, (_, i) => b(`conc-${rm}-${String(i).padStart(3, '0')}`));
    const val = (k: Buffer): Buffer => Buffer.concat([k, b([0x00, 0xff]), b(k.toString('hex'))]);
    const written = await Promise.all([
      ...keys('a').map((k) => putItem(url, admin, 'side', k, val(k))),
      ...keys('b').map((k) => putItem(url2, admin, 'side', k, val(k))),
    ]);
    expect(new Set(written.map((w) => w.seq)).size).toBe(2 * n);
    for (const base of both()) await inBatches(written, 25, (w) => expectItem(base, admin, w));
    const want = scanLines(written);
    for (const base of both()) {
      const all = await scanAll(base, admin, 'side');
      expect(all.filter((l) => l.startsWith(b('conc-').toString('hex')))).toEqual(want);
    }
  }, 180_000);

  it('a table dropped through RM1 is gone through RM2 at once, and comes back empty', async () => {
    const r = await call(url, 'PUT', '/v1/tables/gone', { token: admin, body: json({ engine: 'btree' }) });
    expect(r.status, r.body.toString()).toBe(201);
    await putItem(url2, admin, 'gone', b('k'), b('before the drop'));
    const d = await call(url, 'DELETE', '/v1/tables/gone', { token: admin });
    expect([d.status, d.body.toString()]).toEqual([200, '{"dropped":"gone"}']);
    // RM2 learned the table before the drop; right after it, its writes must not land anywhere.
    const late = await Promise.all([rmB.put('gone', b('k'), 'after'), rmB.put('gone', b('k2'), 'after')]);
    for (const l of late) expectError(l, 404, 'TABLE_NOT_FOUND');
    for (const base of both())
      expectError(
        await call(base, 'GET', itemPath('gone', b('k')), { token: admin }),
        404,
        'TABLE_NOT_FOUND',
      );
    const again = await call(url, 'PUT', '/v1/tables/gone', { token: admin, body: json({ engine: 'lsm' }) });
    expect(again.status, again.body.toString()).toBe(201);
    for (const base of both()) {
      expectError(await call(base, 'GET', itemPath('gone', b('k')), { token: admin }), 404, 'KEY_NOT_FOUND');
      expect(await scanAll(base, admin, 'gone')).toEqual([]);
    }
  });

  it('a token created through RM1 works on RM2 and, revoked through RM1, is refused by RM2', async () => {
    const t = await createToken(url, admin, 'read-write', 'side');
    const w = await putItem(url2, t.token, 'side', b('by-token'), b('scoped write via rm2'));
    for (const base of both()) await expectItem(base, t.token, w);
    expectError(await call(url2, 'GET', itemPath('bt', b('a')), { token: t.token }), 403, 'FORBIDDEN');
    await revokeToken(url, admin, t.id);
    expectError(await call(url, 'GET', itemPath('side', w.key), { token: t.token }), 401, 'UNAUTHORIZED');
    let last: Res | undefined;
    await waitFor(
      'RM2 to refuse the revoked token',
      async () => {
        last = await call(url2, 'GET', itemPath('side', w.key), { token: t.token });
        return last.status !== 200;
      },
      10_000,
    );
    expectError(last!, 401, 'UNAUTHORIZED');
    const late = await call(url2, 'PUT', itemPath('side', b('after-revoke')), { token: t.token, body: 'x' });
    expectError(late, 401, 'UNAUTHORIZED');
    for (const base of both()) {
      expectError(
        await call(base, 'GET', itemPath('side', b('after-revoke')), { token: admin }),
        404,
        'KEY_NOT_FOUND',
      );
      await expectItem(base, admin, w);
    }
  });
});
