/** Route tests without sockets: every call of API.md, every error path, and no change after errors. */
import { beforeEach, describe, expect, it } from 'vitest';
import { limits } from '../../src/lib/limits.js';
import { AssertionError } from '../../src/lib/assert.js';
import { TesseraError } from '../../src/lib/errors.js';
import { bodyBytes, bodyJson, type Fixture, fixture } from './fixture.js';

let f: Fixture;
const seqRe = /^[0-9a-f]{32}$/;

beforeEach(async () => {
  f = await fixture();
  await f.backend.createTable('t', 'btree');
  await f.backend.createTable('scoped', 'lsm');
});

async function put(key: string, value: string | Uint8Array, headers: Record<string, string> = {}) {
  return f.call('PUT', `/v1/tables/t/items/${key}`, { token: f.tokens.rw, body: value, headers });
}

describe('tables', () => {
  it('creates (default btree, or lsm), lists, describes and drops', async () => {
    let res = await f.call('PUT', '/v1/tables/a.b_c-1', { token: f.tokens.admin });
    expect(res.status).toBe(201);
    expect(bodyJson(res)).toMatchObject({ name: 'a.b_c-1', engine: 'btree' });
    res = await f.call('PUT', '/v1/tables/L', { token: f.tokens.admin, body: '{"engine":"lsm"}' });
    expect(res.status).toBe(201);
    expect(bodyJson(res).engine).toBe('lsm');
    res = await f.call('GET', '/v1/tables', { token: f.tokens.ro });
    expect(bodyJson(res).tables.map((t: { name: string }) => t.name)).toEqual([
      'L',
      'a.b_c-1',
      'scoped',
      't',
    ]);
    res = await f.call('GET', '/v1/tables/L', { token: f.tokens.ro });
    const d = bodyJson(res);
    expect(d.shards[0]).toEqual({ start: '', start_b64: '', end: 'm', end_b64: 'bQ==', group: 1, epoch: 1 });
    res = await f.call('DELETE', '/v1/tables/L', { token: f.tokens.admin });
    expect(res.status).toBe(200);
    expect(f.backend.tables.has('L')).toBe(false);
  });

  it('a 64-character name is fine, and a table-scoped token sees only its table', async () => {
    const name = 'x'.repeat(limits.tableNameLengthMax);
    expect((await f.call('PUT', `/v1/tables/${name}`, { token: f.tokens.admin })).status).toBe(201);
    const res = await f.call('GET', '/v1/tables', { token: f.tokens.scoped });
    expect(bodyJson(res).tables).toEqual([{ name: 'scoped', engine: 'lsm' }]);
  });
});

describe('items', () => {
  it('put, get and delete with seq ETags that grow', async () => {
    const a = await put('k', 'v1');
    expect(a.status).toBe(200);
    const seq1 = bodyJson(a).seq as string;
    expect(seq1).toMatch(seqRe);
    expect(a.headers.etag).toBe(`"${seq1}"`);
    const b = await put('k', 'v2');
    const seq2 = bodyJson(b).seq as string;
    expect(seq2 > seq1).toBe(true);
    const g = await f.call('GET', '/v1/tables/t/items/k', { token: f.tokens.ro });
    expect(g.status).toBe(200);
    expect(bodyBytes(g).toString()).toBe('v2');
    expect(g.headers.etag).toBe(`"${seq2}"`);
    expect(g.headers['content-type']).toBe('application/octet-stream');
    const d = await f.call('DELETE', '/v1/tables/t/items/k', { token: f.tokens.rw });
    expect(d.status).toBe(200);
    expect(bodyJson(d).seq > seq2).toBe(true);
    const gone = await f.call('GET', '/v1/tables/t/items/k', { token: f.tokens.ro });
    expect(gone.status).toBe(404);
    expect(bodyJson(gone).error.code).toBe('KEY_NOT_FOUND');
  });

  it('keys are bytes: %FF, %00 and / decode to raw bytes, never via UTF-8', async () => {
    expect((await put('%FF%00%2Fa%e2%82%ac', 'bin')).status).toBe(200);
    const stored = [...f.backend.tables.get('t')!.rows.values()][0]!;
    expect(Buffer.from(stored.key)).toEqual(Buffer.from([0xff, 0x00, 0x2f, 0x61, 0xe2, 0x82, 0xac]));
    const g = await f.call('GET', '/v1/tables/t/items/%ff%00%2fa%E2%82%AC', { token: f.tokens.ro });
    expect(bodyBytes(g).toString()).toBe('bin');
    const s = bodyJson(await f.call('GET', '/v1/tables/t/items', { token: f.tokens.ro }));
    expect(s.items[0].key_b64).toBe(
      Buffer.from([0xff, 0x00, 0x2f, 0x61, 0xe2, 0x82, 0xac]).toString('base64'),
    );
  });

  it('values of exactly 1 MiB and keys of exactly 1,024 bytes are accepted', async () => {
    const value = new Uint8Array(limits.valueBytesMax).fill(7);
    expect((await put('big', value)).status).toBe(200);
    expect((await put('k'.repeat(limits.keyBytesMax), 'v')).status).toBe(200);
    expect(f.backend.tables.get('t')!.rows.size).toBe(2);
  });

  it('an empty value is a value', async () => {
    expect((await put('e', '')).status).toBe(200);
    const g = await f.call('GET', '/v1/tables/t/items/e', { token: f.tokens.ro });
    expect(g.status).toBe(200);
    expect(bodyBytes(g).length).toBe(0);
  });
});

describe('conditional writes', () => {
  it('If-Match applies only on the current seq', async () => {
    const seq1 = bodyJson(await put('k', 'v1')).seq as string;
    const seq2 = bodyJson(await put('k', 'v2', { 'if-match': `"${seq1}"` })).seq as string;
    expect(seq2 > seq1).toBe(true);
    const stale = await put('k', 'v3', { 'if-match': `"${seq1}"` });
    expect(stale.status).toBe(412);
    expect(bodyJson(stale).error.code).toBe('CONDITION_FAILED');
    const missing = await put('absent', 'v', { 'if-match': `"${seq1}"` });
    expect(missing.status).toBe(412);
    const del = await f.call('DELETE', '/v1/tables/t/items/k', {
      token: f.tokens.rw,
      headers: { 'if-match': `"${seq1}"` },
    });
    expect(del.status).toBe(412);
    const ok = await f.call('DELETE', '/v1/tables/t/items/k', {
      token: f.tokens.rw,
      headers: { 'if-match': seq2 },
    });
    expect(ok.status).toBe(200);
    expect(f.backend.tables.get('t')!.rows.size).toBe(0);
  });

  it('If-None-Match: * creates only', async () => {
    expect((await put('n', 'first', { 'if-none-match': '*' })).status).toBe(200);
    const again = await put('n', 'second', { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    const g = await f.call('GET', '/v1/tables/t/items/n', { token: f.tokens.ro });
    expect(bodyBytes(g).toString()).toBe('first');
  });

  it('GET answers 304 on a matching If-None-Match and 412 on a failed If-Match', async () => {
    const seq = bodyJson(await put('k', 'v')).seq as string;
    const nm = await f.call('GET', '/v1/tables/t/items/k', {
      token: f.tokens.ro,
      headers: { 'if-none-match': `"${seq}"` },
    });
    expect(nm.status).toBe(304);
    const other = '0'.repeat(32);
    const m = await f.call('GET', '/v1/tables/t/items/k', {
      token: f.tokens.ro,
      headers: { 'if-match': `"${other}"` },
    });
    expect(m.status).toBe(412);
  });

  it('a retried write with the same Tessera-Request-Id is applied once', async () => {
    const h = { 'tessera-request-id': 'c1:7' };
    const a = bodyJson(await put('k', 'v1', h)).seq;
    const b = bodyJson(await put('k', 'v2', h)).seq;
    expect(b).toBe(a);
    const g = await f.call('GET', '/v1/tables/t/items/k', { token: f.tokens.ro });
    expect(bodyBytes(g).toString()).toBe('v1');
  });
});

describe('scan', () => {
  beforeEach(async () => {
    for (const k of ['a', 'b', 'ba', 'bb', 'c', 'm', 'n', 'z', '%FF%01']) await put(k, `v-${k}`);
  });

  async function scan(query: string) {
    const res = await f.call('GET', `/v1/tables/t/items${query}`, { token: f.tokens.ro });
    expect(res.status).toBe(200);
    return bodyJson(res);
  }

  it('pages in unsigned byte order across the shard bound, with next as the start to continue', async () => {
    const keys: string[] = [];
    let next: string | null = '';
    let pages = 0;
    while (next !== null) {
      const page = await scan(`?limit=2&start=${encodeURIComponent(next)}`);
      for (const it of page.items) {
        keys.push(Buffer.from(it.key_b64, 'base64').toString('hex'));
        expect(it.seq).toMatch(seqRe);
        expect(Buffer.from(it.value, 'base64').toString()).toMatch(/^v-/);
      }
      next = page.next_b64 === null ? null : null;
      if (page.next_b64 !== null) next = Buffer.from(page.next_b64, 'base64').toString('latin1');
      pages++;
    }
    const expected = ['a', 'b', 'ba', 'bb', 'c', 'm', 'n', 'z'].map((k) => Buffer.from(k).toString('hex'));
    expect(keys).toEqual([...expected, 'ff01']);
    expect(pages).toBe(5);
  });

  it('prefix, start and end bound the range; next is null at the end', async () => {
    expect((await scan('?prefix=b')).items.map((i: { key: string }) => i.key)).toEqual(['b', 'ba', 'bb']);
    expect((await scan('?prefix=b&start=ba')).items.map((i: { key: string }) => i.key)).toEqual(['ba', 'bb']);
    expect((await scan('?start=b&end=c')).items.map((i: { key: string }) => i.key)).toEqual([
      'b',
      'ba',
      'bb',
    ]);
    expect((await scan('?prefix=%FF')).items.map((i: { key_b64: string }) => i.key_b64)).toEqual(['/wE=']);
    expect((await scan('?start=z&end=b')).items).toEqual([]);
    const last = await scan('?start=z');
    expect(last.next).toBeNull();
    const first = await scan('?limit=1');
    expect(first.items[0].key).toBe('a');
    expect(first.next).toBe('b');
  });
});

describe('cluster, health, metrics, tokens, metadata', () => {
  it('health is public and answers 503 with Retry-After when not ready', async () => {
    expect(bodyJson(await f.call('GET', '/v1/health'))).toEqual({ status: 'ok' });
    f.backend.healthState = { ok: false, reason: 'no metadata leader' };
    const res = await f.call('GET', '/v1/health');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(bodyJson(res).error).toEqual({ code: 'UNAVAILABLE', message: 'no metadata leader' });
  });

  it('cluster view has the shape of API.md', async () => {
    const c = bodyJson(await f.call('GET', '/v1/cluster', { token: f.tokens.ro }));
    expect(c.metadata).toEqual({ leader: 2, members: [1, 2, 3] });
    expect(c.nodes[0]).toEqual({
      id: 1,
      role: 'metadata',
      addr: '127.0.0.1:7101',
      pid: 1001,
      state: 'up',
      heartbeat_age_ms: 120,
    });
    expect(c.groups[0]).toEqual({ id: 1, members: [11, 12, 13], leader: 12, term: 7 });
    expect(c.tables.map((t: { name: string }) => t.name).sort()).toEqual(['scoped', 't']);
    const scoped = bodyJson(await f.call('GET', '/v1/cluster', { token: f.tokens.scoped }));
    expect(scoped.tables.map((t: { name: string }) => t.name)).toEqual(['scoped']);
  });

  it('metrics count requests by operation and code', async () => {
    await put('k', 'v');
    await f.call('GET', '/v1/tables/nope/items/k', { token: f.tokens.ro });
    const text = bodyBytes(await f.call('GET', '/metrics')).toString();
    expect(text).toContain('tessera_http_requests_total{op="item.put",code="OK"} 1');
    expect(text).toContain('tessera_http_requests_total{op="item.get",code="TABLE_NOT_FOUND"} 1');
    expect(text).toContain('tessera_http_request_duration_seconds_count{op="item.put",code="OK"} 1');
    const stats = bodyJson(await f.call('GET', '/v1/stats', { token: f.tokens.ro }));
    expect(stats.ops.find((o: { op: string }) => o.op === 'item.put').count).toBe(1);
  });

  it('tokens: create read-only scoped, use it, list it (no secret, no hash), revoke it', async () => {
    const created = await f.call('POST', '/v1/tokens', {
      token: f.tokens.admin,
      body: '{"role":"read-only","table":"t"}',
    });
    expect(created.status).toBe(201);
    const t = bodyJson(created);
    expect(t.token).toMatch(/^tess_/);
    expect(f.backend.tokens.get(t.id)!.hash).not.toContain(t.token);
    expect((await f.call('GET', '/v1/tables/t/items', { token: t.token })).status).toBe(200);
    expect((await put('k', 'v', {})).status).toBe(200);
    const w = await f.call('PUT', '/v1/tables/t/items/k', { token: t.token, body: 'x' });
    expect(w.status).toBe(403);
    const list = bodyJson(await f.call('GET', '/v1/tokens', { token: f.tokens.admin }));
    const listed = list.tokens.find((x: { id: string }) => x.id === t.id);
    expect(listed).toEqual({ id: t.id, role: 'read-only', table: 't', created_at: t.created_at });
    expect(JSON.stringify(list)).not.toContain('tess_');
    expect((await f.call('DELETE', `/v1/tokens/${t.id}`, { token: f.tokens.admin })).status).toBe(200);
    const after = await f.call('GET', '/v1/tables/t/items', { token: t.token });
    expect(after.status).toBe(401);
  });

  it('metadata backup and restore round-trip', async () => {
    const b = await f.call('GET', '/v1/admin/metadata', { token: f.tokens.admin });
    expect(b.status).toBe(200);
    await f.backend.createTable('later', 'btree');
    const r = await f.call('PUT', '/v1/admin/metadata', { token: f.tokens.admin, body: bodyBytes(b) });
    expect(r.status).toBe(200);
    expect([...f.backend.tables.keys()].sort()).toEqual(['scoped', 't']);
  });

  it('HEAD is GET without a body', async () => {
    await put('k', 'v');
    const res = await f.call('HEAD', '/v1/tables/t/items/k', { token: f.tokens.ro });
    expect(res.status).toBe(200);
  });
});

describe('every error path answers JSON with its code and changes nothing', () => {
  const big = 'k'.repeat(limits.keyBytesMax + 1);
  const seqA = '0'.repeat(32);
  const cases: [string, () => Promise<import('../../src/request/format.js').ApiResponse>, number, string][] =
    [
      [
        'bad table name char',
        () => f.call('PUT', '/v1/tables/a%20b', { token: f.tokens.admin }),
        400,
        'INVALID_TABLE_NAME',
      ],
      [
        'table name too long',
        () => f.call('PUT', `/v1/tables/${'x'.repeat(65)}`, { token: f.tokens.admin }),
        400,
        'INVALID_TABLE_NAME',
      ],
      [
        'table name ..',
        () => f.call('GET', '/v1/tables/../items', { token: f.tokens.ro }),
        400,
        'INVALID_TABLE_NAME',
      ],
      [
        'empty table name',
        () => f.call('GET', '/v1/tables/', { token: f.tokens.ro }),
        400,
        'INVALID_TABLE_NAME',
      ],
      [
        'bad engine',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.admin, body: '{"engine":"heap"}' }),
        400,
        'INVALID_ENGINE',
      ],
      [
        'null engine (only a missing engine means the default)',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.admin, body: '{"engine":null}' }),
        400,
        'INVALID_ENGINE',
      ],
      [
        'bad JSON',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.admin, body: '{engine' }),
        400,
        'BAD_REQUEST',
      ],
      [
        'JSON not an object',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.admin, body: '[1]' }),
        400,
        'BAD_REQUEST',
      ],
      [
        'unknown JSON field',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.admin, body: '{"x":1}' }),
        400,
        'BAD_REQUEST',
      ],
      [
        'empty key',
        () => f.call('PUT', '/v1/tables/t/items/', { token: f.tokens.rw, body: 'v' }),
        400,
        'KEY_EMPTY',
      ],
      [
        'malformed escape',
        () => f.call('PUT', '/v1/tables/t/items/%G1', { token: f.tokens.rw, body: 'v' }),
        400,
        'BAD_REQUEST',
      ],
      ['bad If-Match', () => put('k', 'v', { 'if-match': '"xyz"' }), 400, 'INVALID_SEQ'],
      [
        'If-Match and If-None-Match',
        () => put('k', 'v', { 'if-match': seqA, 'if-none-match': '*' }),
        400,
        'BAD_REQUEST',
      ],
      ['If-None-Match seq on put', () => put('k', 'v', { 'if-none-match': `"${seqA}"` }), 400, 'BAD_REQUEST'],
      [
        'bad scan limit',
        () => f.call('GET', '/v1/tables/t/items?limit=0', { token: f.tokens.ro }),
        400,
        'BAD_REQUEST',
      ],
      [
        'scan limit too high',
        () => f.call('GET', '/v1/tables/t/items?limit=10001', { token: f.tokens.ro }),
        400,
        'BAD_REQUEST',
      ],
      [
        'unknown scan param',
        () => f.call('GET', '/v1/tables/t/items?from=a', { token: f.tokens.ro }),
        400,
        'BAD_REQUEST',
      ],
      [
        'bad request id',
        () => put('k', 'v', { 'tessera-request-id': 'no spaces allowed:1' }),
        400,
        'BAD_REQUEST',
      ],
      [
        'bad token role',
        () => f.call('POST', '/v1/tokens', { token: f.tokens.admin, body: '{"role":"root"}' }),
        400,
        'BAD_REQUEST',
      ],
      [
        'restore garbage',
        () => f.call('PUT', '/v1/admin/metadata', { token: f.tokens.admin, body: 'garbage' }),
        400,
        'BAD_REQUEST',
      ],
      ['no token', () => f.call('GET', '/v1/tables'), 401, 'UNAUTHORIZED'],
      [
        'not bearer',
        () => f.call('GET', '/v1/tables', { headers: { authorization: 'Basic abc' } }),
        401,
        'UNAUTHORIZED',
      ],
      [
        'unknown token',
        () => f.call('GET', '/v1/tables', { token: `tess_${'A'.repeat(43)}` }),
        401,
        'UNAUTHORIZED',
      ],
      [
        'read-only put',
        () => f.call('PUT', '/v1/tables/t/items/k', { token: f.tokens.ro, body: 'v' }),
        403,
        'FORBIDDEN',
      ],
      [
        'read-only delete',
        () => f.call('DELETE', '/v1/tables/t/items/k', { token: f.tokens.ro }),
        403,
        'FORBIDDEN',
      ],
      [
        'read-write creates table',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.rw }),
        403,
        'FORBIDDEN',
      ],
      [
        'read-write drops table',
        () => f.call('DELETE', '/v1/tables/t', { token: f.tokens.rw }),
        403,
        'FORBIDDEN',
      ],
      [
        'scoped token, other table',
        () => f.call('PUT', '/v1/tables/t/items/k', { token: f.tokens.scoped, body: 'v' }),
        403,
        'FORBIDDEN',
      ],
      [
        'read-write lists tokens',
        () => f.call('GET', '/v1/tokens', { token: f.tokens.rw }),
        403,
        'FORBIDDEN',
      ],
      [
        'read-write backs up',
        () => f.call('GET', '/v1/admin/metadata', { token: f.tokens.rw }),
        403,
        'FORBIDDEN',
      ],
      ['unknown route', () => f.call('GET', '/v2/tables', { token: f.tokens.ro }), 404, 'NOT_FOUND'],
      [
        'describe missing table',
        () => f.call('GET', '/v1/tables/nope', { token: f.tokens.ro }),
        404,
        'TABLE_NOT_FOUND',
      ],
      [
        'drop missing table',
        () => f.call('DELETE', '/v1/tables/nope', { token: f.tokens.admin }),
        404,
        'TABLE_NOT_FOUND',
      ],
      [
        'put into missing table',
        () => f.call('PUT', '/v1/tables/nope/items/k', { token: f.tokens.rw, body: 'v' }),
        404,
        'TABLE_NOT_FOUND',
      ],
      [
        'scan missing table',
        () => f.call('GET', '/v1/tables/nope/items', { token: f.tokens.ro }),
        404,
        'TABLE_NOT_FOUND',
      ],
      [
        'get missing key',
        () => f.call('GET', '/v1/tables/t/items/absent', { token: f.tokens.ro }),
        404,
        'KEY_NOT_FOUND',
      ],
      [
        'delete missing key',
        () => f.call('DELETE', '/v1/tables/t/items/absent', { token: f.tokens.rw }),
        404,
        'KEY_NOT_FOUND',
      ],
      [
        'revoke unknown token',
        () => f.call('DELETE', `/v1/tokens/${'0'.repeat(16)}`, { token: f.tokens.admin }),
        404,
        'TOKEN_NOT_FOUND',
      ],
      [
        'POST on an item',
        () => f.call('POST', '/v1/tables/t/items/k', { token: f.tokens.rw, body: 'v' }),
        405,
        'METHOD_NOT_ALLOWED',
      ],
      [
        'create existing table',
        () => f.call('PUT', '/v1/tables/t', { token: f.tokens.admin }),
        409,
        'TABLE_EXISTS',
      ],
      [
        'put If-None-Match on existing',
        () => put('exists', 'v', { 'if-none-match': '*' }),
        412,
        'CONDITION_FAILED',
      ],
      ['put If-Match stale', () => put('exists', 'v', { 'if-match': `"${seqA}"` }), 412, 'CONDITION_FAILED'],
      ['key too large', () => put(big, 'v'), 413, 'KEY_TOO_LARGE'],
      ['value too large', () => put('k', new Uint8Array(limits.valueBytesMax + 1)), 413, 'VALUE_TOO_LARGE'],
      [
        'JSON body too large',
        () => f.call('PUT', '/v1/tables/n', { token: f.tokens.admin, body: ' '.repeat(70_000) }),
        413,
        'BODY_TOO_LARGE',
      ],
    ];

  it.each(cases)('%s', async (_name, run, status, code) => {
    await put('exists', 'v');
    const before = f.backend.dump();
    const res = await run();
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = bodyJson(res);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    expect(f.backend.dump()).toBe(before);
    if (status === 405) expect(res.headers.allow).toBe('GET, PUT, DELETE, HEAD');
  });

  it('an unexpected backend failure is a 500 INTERNAL without details', async () => {
    f.backend.get = async () => {
      throw new Error('disk on fire at /secret/path');
    };
    const res = await f.call('GET', '/v1/tables/t/items/k', { token: f.tokens.ro });
    expect(res.status).toBe(500);
    expect(bodyJson(res).error).toEqual({ code: 'INTERNAL', message: 'internal error' });
  });

  it('a failed assertion (a bug) is never answered: it propagates to crash the process', async () => {
    f.backend.get = async () => {
      throw new AssertionError('broken invariant');
    };
    await expect(f.call('GET', '/v1/tables/t/items/k', { token: f.tokens.ro })).rejects.toThrow(
      'broken invariant',
    );
  });

  it('backend operating errors pass through with their status (503 with Retry-After, 504, 507)', async () => {
    for (const [code, status] of [
      ['UNAVAILABLE', 503],
      ['OUTCOME_UNKNOWN', 504],
      ['DISK_FULL', 507],
    ] as const) {
      f.backend.failures.push(new TesseraError(code, 'x'));
      const res = await put('k2', 'v');
      expect(res.status).toBe(status);
      expect(bodyJson(res).error.code).toBe(code);
      if (status === 503) expect(res.headers['retry-after']).toBe('1');
    }
  });
});
