import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../src/lib/bytes.js';
import { nodeId } from '../../src/lib/ids.js';
import { MmClient } from '../../src/metadata/client.js';
import type { RequestId, WriteOptions } from '../../src/request/backend.js';
import { ClusterBackend } from '../../src/request/cluster-backend.js';
import { rpcClientId } from '../../src/request/router.js';
import { FakeCluster, quietLog } from './fake-cluster.js';
import { rejection } from '../support/rejection.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
let counter = 0;
const w = (requestId?: RequestId): WriteOptions => ({
  condition: { kind: 'none' },
  requestId: requestId ?? { clientId: 'test', n: ++counter },
});

describe('ClusterBackend over a fake cluster', () => {
  let c: FakeCluster;
  let backend: ClusterBackend;

  async function startBackend(deadlineMs = 3_000, id = 20): Promise<ClusterBackend> {
    const t = await c.transport(id, 'request', false);
    const mm = new MmClient({
      transport: t,
      members: new Map([[nodeId(1), c.mmAddress]]),
      deadlineMs: 1_000,
    });
    const b = new ClusterBackend({ transport: t, mm, log: quietLog, deadlineMs });
    b.start();
    for (let i = 0; i < 200 && !(await b.health()).ok; i++) await new Promise((r) => setTimeout(r, 10));
    return b;
  }

  beforeEach(async () => {
    c = new FakeCluster();
    await c.start([16, 17, 18]);
    c.mm.group(1, [16, 17, 18], 16);
    c.node(16).leaderOf.add(1);
  });

  afterEach(async () => {
    await backend?.close();
    await c.close();
  });

  it('loads the catalog, creates a table, and puts / gets / deletes through the leader', async () => {
    backend = await startBackend();
    expect(await backend.health()).toEqual({ ok: true });
    const d = await backend.createTable('t1', 'lsm');
    expect(d.engine).toBe('lsm');
    expect((await backend.listTables()).map((t) => t.name)).toEqual(['t1']);
    const key = new Uint8Array([0xff, 0x00, 0x41]);
    const seq = await backend.put('t1', key, enc('v1'), w());
    const got = await backend.get('t1', key);
    expect(got && dec(got.value)).toBe('v1');
    expect(got && toHex(got.seq)).toBe(toHex(seq));
    await backend.delete('t1', key, w());
    expect(await backend.get('t1', key)).toBeNull();
    expect((await rejection(backend.delete('t1', key, w()))).code).toBe('KEY_NOT_FOUND');
    expect((await rejection(backend.get('nope', key))).code).toBe('TABLE_NOT_FOUND');
    // Every kv call carried the shard epoch and our catalog version.
    const seen = c.node(16).seen;
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) {
      expect(s.target.epoch).toBe(1);
      expect(s.target.catalogVersion).toBeGreaterThanOrEqual(2);
    }
  });

  it('follows a NOT_LEADER hint to the new leader', async () => {
    backend = await startBackend();
    await backend.createTable('t', 'btree');
    c.node(16).leaderOf.delete(1);
    c.node(16).hint = 18;
    c.node(18).leaderOf.add(1);
    await backend.put('t', enc('k'), enc('v'), w());
    expect(c.node(16).seen.at(-1)?.kind).toBe('put');
    expect(c.node(18).seen.at(-1)?.kind).toBe('put');
    // The hint is remembered: the next call goes straight to 18.
    const before = c.node(16).seen.length;
    await backend.get('t', enc('k'));
    expect(c.node(16).seen.length).toBe(before);
  });

  it('without a hint, probes the voters until one leads', async () => {
    backend = await startBackend();
    await backend.createTable('t', 'btree');
    c.node(16).leaderOf.delete(1);
    c.node(17).leaderOf.add(1);
    await backend.put('t', enc('k'), enc('v'), w());
    expect(dec((await backend.get('t', enc('k')))!.value)).toBe('v');
  });

  it('retries a write whose answer was lost with the SAME request id, and it is applied once', async () => {
    backend = await startBackend();
    await backend.createTable('t', 'btree');
    c.node(16).loseAnswers = 2;
    const id = { clientId: 'rm-x', n: 42 };
    const seq = await backend.put('t', enc('k'), enc('v'), w(id));
    const puts = c.node(16).seen.filter((s) => s.kind === 'put');
    expect(puts.length).toBe(3);
    expect(new Set(puts.map((p) => p.request))).toEqual(new Set([`${rpcClientId('rm-x')}:43`]));
    expect(toHex((await backend.get('t', enc('k')))!.seq)).toBe(toHex(seq));
  });

  it('answers OUTCOME_UNKNOWN when a write may have been delivered and no answer came', async () => {
    backend = await startBackend(400);
    await backend.createTable('t', 'btree');
    c.node(16).blackholeWrites = true;
    const e = await rejection(backend.put('t', enc('k'), enc('v'), w()));
    expect(e.code).toBe('OUTCOME_UNKNOWN');
    expect(e.status).toBe(504);
  });

  it('answers 503 UNAVAILABLE with Retry-After when the group has no leader (before the deadline)', async () => {
    // The deadline is far; the 503 comes after limits.rmNoLeaderWaitMs (3 s), well within the test timeout.
    backend = await startBackend(120_000);
    await backend.createTable('t', 'btree');
    c.node(16).leaderOf.delete(1);
    const e = await rejection(backend.put('t', enc('k'), enc('v'), w()));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.detail?.retryAfterSeconds).toBeGreaterThan(0);
    // Reads too, and nothing was written.
    expect((await rejection(backend.get('t', enc('k')))).code).toBe('UNAVAILABLE');
    expect(c.data.size).toBe(0);
  }, 20_000);

  it('refreshes the catalog on STALE_SHARD and retries at the new epoch', async () => {
    backend = await startBackend();
    await backend.createTable('t', 'btree');
    const shard = c.mm.tables[0]!.shards[0]!;
    c.mm.tables[0]!.shards[0] = { ...shard, epoch: 2 };
    c.mm.bump();
    c.node(16).epochMin = 2;
    await backend.put('t', enc('k'), enc('v'), w());
    const puts = c.node(16).seen.filter((s) => s.kind === 'put');
    expect(puts.at(-1)?.target.epoch).toBe(2);
  });

  it('scans across shards of two groups in key order with a next cursor', async () => {
    c.mm.group(2, [17], 17);
    c.node(17).leaderOf.add(2);
    c.mm.tables.push({
      id: 9,
      name: 's',
      engine: 'btree',
      shards: [
        { shard: 2, start: enc('m'), end: new Uint8Array(), epoch: 1, group: c.mm.groups[1]!.id },
        { shard: 1, start: new Uint8Array(), end: enc('m'), epoch: 1, group: c.mm.groups[0]!.id },
      ],
    });
    c.mm.bump();
    backend = await startBackend();
    const keys = ['a', 'c', 'k', 'm', 'q', 'z'];
    for (const k of [...keys].reverse()) await backend.put('s', enc(k), enc(`v${k}`), w());
    expect(c.node(17).seen.filter((s) => s.kind === 'put').length).toBe(3);
    const all: string[] = [];
    let start: Uint8Array = new Uint8Array();
    for (let pages = 0; pages < 10; pages++) {
      const page = await backend.scan('s', { start, end: null, limit: 2, bytesMax: 1 << 20 });
      all.push(...page.items.map((i) => dec(i.key)));
      if (page.next === null) break;
      start = page.next;
    }
    expect(all).toEqual(keys);
    const bounded = await backend.scan('s', {
      start: enc('b'),
      end: enc('r'),
      limit: 100,
      bytesMax: 1 << 20,
    });
    expect(bounded.items.map((i) => dec(i.key))).toEqual(['c', 'k', 'm', 'q']);
    expect(bounded.next).toBeNull();
  });

  it('keeps routing while the MM is down, and reports unhealthy', async () => {
    backend = await startBackend();
    await backend.createTable('t', 'btree');
    await backend.put('t', enc('k'), enc('v1'), w());
    await c.mm.t.close();
    await backend.put('t', enc('k'), enc('v2'), w());
    expect(dec((await backend.get('t', enc('k')))!.value)).toBe('v2');
    for (let i = 0; i < 100 && (await backend.health()).ok; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await backend.health()).ok).toBe(false);
  }, 20_000);

  it('two request managers side by side: tables, data and request ids are shared', async () => {
    backend = await startBackend();
    const other = await startBackend(3_000, 21);
    try {
      await backend.createTable('t', 'btree');
      // B learns the new table on its first miss (no wait for its long poll).
      const id = { clientId: 'tok1.app', n: 7 };
      const seq = await backend.put('t', enc('k'), enc('v'), w(id));
      expect(dec((await other.get('t', enc('k')))!.value)).toBe('v');
      // The client retries the same write through B: the first outcome, not a second write.
      expect(toHex(await other.put('t', enc('k'), enc('v'), w(id)))).toBe(toHex(seq));
      expect(toHex((await other.get('t', enc('k')))!.seq)).toBe(toHex(seq));
    } finally {
      await other.close();
    }
  });

  it('tokens: created through the MM, verified from memory, revoked', async () => {
    backend = await startBackend();
    const hash = 'ab'.repeat(32);
    const stored = await backend.createToken({
      id: 'x',
      hash,
      role: 'read-only',
      table: null,
      createdAt: '',
    });
    expect(stored?.id).toBe('0000000000000001');
    const callsBefore = c.mm.calls.filter((x) => x === 'tokens').length;
    expect((await backend.verifyToken(hash))?.role).toBe('read-only');
    expect(c.mm.calls.filter((x) => x === 'tokens').length).toBe(callsBefore);
    expect((await backend.listTokens()).map((t) => t.id)).toEqual(['0000000000000001']);
    await backend.revokeToken('0000000000000001');
    expect(await backend.verifyToken(hash)).toBeNull();
    expect((await rejection(backend.revokeToken('0000000000000001'))).code).toBe('TOKEN_NOT_FOUND');
  });
});
