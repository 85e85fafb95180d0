import { describe, expect, it } from 'vitest';
import { groupId, shardId, tableId } from '../../src/lib/ids.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { routeKey } from '../../src/metadata/routing.js';
import { cluster, ok, refused } from './helpers.js';

const hash = (c: string): string => c.repeat(64);
const b = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('createTable', () => {
  it('allocates the table id and ONE shard covering the whole key range at epoch 1', () => {
    const { c, groups } = cluster(3, 1);
    const v = ok(c, { type: 'createTable', name: 'Stocks', engine: 'lsm', atMs: 42 });
    expect(v).toEqual({ table: 1, shard: 1, group: groups[0] });
    expect(c.tableByName('Stocks')).toEqual({
      id: 1,
      name: 'Stocks',
      engine: 'lsm',
      state: 'active',
      createdAtMs: 42,
      droppedAtMs: null,
    });
    expect(c.shardsOf(tableId(1))).toEqual([
      { id: 1, table: 1, start: new Uint8Array(0), end: new Uint8Array(0), group: groups[0], epoch: 1 },
    ]);
  });

  it('places each new table on the group with the fewest shards (lowest id on a tie)', () => {
    const { c, groups } = cluster(9, 3);
    const placed = ['a', 'b', 'c', 'd', 'e'].map(
      (name) => ok(c, { type: 'createTable', name, engine: 'btree', atMs: 1 }).group,
    );
    expect(placed).toEqual([groups[0], groups[1], groups[2], groups[0], groups[1]]);
    ok(c, { type: 'dropTable', name: 'a', atMs: 2 });
    expect(ok(c, { type: 'createTable', name: 'f', engine: 'btree', atMs: 3 }).group).toBe(groups[0]);
  });

  it.each(['', 'a'.repeat(65), 'has space', 'slash/no', 'é', 'a\u0000b'])('refuses the name %j', (name) => {
    const { c } = cluster(3, 1);
    refused(c, { type: 'createTable', name, engine: 'btree', atMs: 1 }, 'INVALID_TABLE_NAME');
  });

  it.each(['a', 'a'.repeat(64), 'A-z_0.9', '...'])('accepts the name %j', (name) => {
    const { c } = cluster(3, 1);
    expect(c.apply({ type: 'createTable', name, engine: 'btree', atMs: 1 }).ok).toBe(true);
  });

  it('refuses a bad engine, an existing name, and a cluster without groups', () => {
    const { c } = cluster(3, 1);
    refused(c, { type: 'createTable', name: 't', engine: 'heap' as never, atMs: 1 }, 'INVALID_ENGINE');
    ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    refused(c, { type: 'createTable', name: 't', engine: 'lsm', atMs: 1 }, 'TABLE_EXISTS');
    refused(new Catalog(), { type: 'createTable', name: 't', engine: 'lsm', atMs: 1 }, 'UNAVAILABLE');
  });
});

describe('dropTable', () => {
  it('goes active -> dropping (name free at once) -> dropped (shards gone, id never reused)', () => {
    const { c, groups } = cluster(3, 1);
    const { table } = ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    expect(ok(c, { type: 'dropTable', name: 't', atMs: 5 })).toEqual({ table, groups: [groups[0]] });
    expect(c.state.tables.get(table)).toMatchObject({ state: 'dropping', droppedAtMs: 5 });
    expect(c.tableByName('t')).toBeUndefined();
    expect(c.shardsOf(table)).toHaveLength(1);
    refused(c, { type: 'dropTable', name: 't', atMs: 6 }, 'TABLE_NOT_FOUND');
    const again = ok(c, { type: 'createTable', name: 't', engine: 'lsm', atMs: 7 });
    expect(again.table).not.toBe(table);
    ok(c, { type: 'finishDropTable', table });
    expect(c.apply({ type: 'finishDropTable', table })).toMatchObject({ ok: true, changed: false });
    expect(c.state.tables.get(table)?.state).toBe('dropped');
    expect(c.shardsOf(table)).toEqual([]);
    expect(c.listTables().map((t) => [t.name, t.engine])).toEqual([['t', 'lsm']]);
  });

  it('finishDropTable refuses an active table and an unknown one', () => {
    const { c } = cluster(3, 1);
    const { table } = ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    refused(c, { type: 'finishDropTable', table }, 'BAD_REQUEST');
    refused(c, { type: 'finishDropTable', table: tableId(99) }, 'TABLE_NOT_FOUND');
  });
});

describe('splitShard and moveShard (range shards: a split is an addition)', () => {
  it('splits [start,end) at a key into two shards at a new epoch and routes keys to them', () => {
    const { c, groups } = cluster(6, 2);
    const { table, shard } = ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    const s1 = ok(c, { type: 'splitShard', shard, key: b('m'), targetGroup: groups[1]! });
    expect(s1).toEqual({ left: shard, right: 2, epoch: 2 });
    const s2 = ok(c, { type: 'splitShard', shard, key: b('f'), targetGroup: groups[0]! });
    expect(s2.epoch).toBe(3);
    const shards = c.shardsOf(table);
    expect(
      shards.map((s) => [Buffer.from(s.start).toString(), Buffer.from(s.end).toString(), s.group, s.epoch]),
    ).toEqual([
      ['', 'f', groups[0], 3],
      ['f', 'm', groups[0], 3],
      ['m', '', groups[1], 2],
    ]);
    const route = c.routing().tables.get('t')!;
    expect(routeKey(route, b('a')).shard).toBe(shard);
    expect(routeKey(route, b('f')).shard).toBe(s2.right);
    expect(routeKey(route, b('lzz')).shard).toBe(s2.right);
    expect(routeKey(route, b('m')).shard).toBe(2);
    expect(routeKey(route, new Uint8Array([0xff, 0xff])).group.id).toBe(groups[1]);
  });

  it('refuses split keys not strictly inside the shard, and unknown shards or groups', () => {
    const { c, groups } = cluster(3, 1);
    const { shard } = ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    ok(c, { type: 'splitShard', shard, key: b('m'), targetGroup: groups[0]! });
    for (const key of [b('m'), b('z'), new Uint8Array(0), new Uint8Array(1025)]) {
      refused(c, { type: 'splitShard', shard, key, targetGroup: groups[0]! }, 'BAD_REQUEST');
    }
    refused(
      c,
      { type: 'splitShard', shard: shardId(9), key: b('a'), targetGroup: groups[0]! },
      'SHARD_NOT_FOUND',
    );
    refused(c, { type: 'splitShard', shard, key: b('a'), targetGroup: groupId(9) }, 'GROUP_NOT_FOUND');
  });

  it('moveShard changes the owner at a new epoch; moving to the same group is a no-op', () => {
    const { c, groups } = cluster(6, 2);
    const { shard } = ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    expect(c.apply({ type: 'moveShard', shard, targetGroup: groups[0]! })).toMatchObject({ changed: false });
    expect(ok(c, { type: 'moveShard', shard, targetGroup: groups[1]! })).toEqual({ shard, epoch: 2 });
    expect(c.routing().tables.get('t')?.shards[0]?.group.id).toBe(groups[1]);
    ok(c, { type: 'dropTable', name: 't', atMs: 2 });
    refused(c, { type: 'moveShard', shard, targetGroup: groups[0]! }, 'TABLE_NOT_FOUND');
  });
});

describe('tokens', () => {
  it('creates tokens with a hashed secret, idempotent on retry, and revokes them', () => {
    const { c } = cluster(3, 1);
    const cmd = { type: 'createToken' as const, secretHash: hash('a'), readOnly: true, table: 'T', atMs: 3 };
    expect(ok(c, cmd).token).toBe(1);
    expect(c.apply(cmd)).toMatchObject({ ok: true, changed: false, value: { token: 1 } });
    expect(c.tokenByHash(hash('a'))).toEqual({
      id: 1,
      secretHash: hash('a'),
      readOnly: true,
      table: 'T',
      createdAtMs: 3,
      admin: false,
    });
    refused(c, { ...cmd, readOnly: false }, 'BAD_REQUEST');
    refused(c, { ...cmd, secretHash: hash('z'), admin: true }, 'BAD_REQUEST');
    expect(ok(c, { ...cmd, secretHash: hash('b'), table: null }).token).toBe(2);
    ok(c, { type: 'revokeToken', token: 1 });
    expect(c.tokenByHash(hash('a'))).toBeUndefined();
    refused(c, { type: 'revokeToken', token: 1 }, 'TOKEN_NOT_FOUND');
    expect(ok(c, cmd).token).toBe(3);
  });

  it.each([
    ['a plain secret', { secretHash: 'secret' }, 'BAD_REQUEST'],
    ['upper-case hex', { secretHash: 'A'.repeat(64) }, 'BAD_REQUEST'],
    ['a bad table name', { table: 'no space' }, 'INVALID_TABLE_NAME'],
    ['a non-boolean flag', { readOnly: 'yes' }, 'BAD_REQUEST'],
  ] as const)('refuses %s', (_n, patch, code) => {
    const { c } = cluster(3, 1);
    refused(
      c,
      {
        type: 'createToken',
        secretHash: hash('c'),
        readOnly: false,
        table: null,
        atMs: 1,
        ...patch,
      } as never,
      code,
    );
  });
});

describe('version and routing view', () => {
  it('grows by one per change, not on refusals or no-ops; the routing view is cached per version', () => {
    const { c, nodes, groups } = cluster(3, 1);
    const v0 = c.version;
    expect(v0).toBe(4);
    const view0 = c.routing();
    expect(c.routing()).toBe(view0);
    c.apply({ type: 'createTable', name: 'bad name', engine: 'btree', atMs: 1 });
    c.apply({ type: 'markNode', node: nodes[0]!, state: 'up' });
    expect(c.version).toBe(v0);
    expect(c.routing()).toBe(view0);
    ok(c, { type: 'createTable', name: 't', engine: 'btree', atMs: 1 });
    ok(c, { type: 'setGroupLeader', group: groups[0]!, leader: nodes[2]!, term: 7 as never });
    expect(c.version).toBe(v0 + 2);
    const view = c.routing();
    expect(view).not.toBe(view0);
    expect(view.version).toBe(v0 + 2);
    const shard = view.tables.get('t')!.shards[0]!;
    expect(shard.epoch).toBe(1);
    expect(shard.group).toMatchObject({ id: groups[0], leader: nodes[2], term: 7, voters: nodes });
    expect(shard.group.leaderAddress).toBe(c.node(nodes[2]!)!.address);
  });

  it('unknown commands are refused with BAD_REQUEST', () => {
    const c = new Catalog();
    expect(c.apply({ type: 'nope' } as never)).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
  });
});
