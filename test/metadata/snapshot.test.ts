import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, nodeId, shardId, tableId, term } from '../../src/lib/ids.js';
import { backupHeaderBytes, decodeBackup } from '../../src/metadata/backup.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { decodeCommand, encodeCommand } from '../../src/metadata/command-codec.js';
import { checkInvariants } from '../../src/metadata/state.js';
import type { CatalogCommand } from '../../src/metadata/types.js';
import { cluster, ok } from './helpers.js';

const hex = (c: string): string => c.repeat(64);

/** A catalog that went through every kind of command. */
function busyCatalog(): Catalog {
  const { c, nodes, groups } = cluster(8, 2);
  ok(c, { type: 'addSpare', node: nodes[6]! });
  ok(c, { type: 'addSpare', node: nodes[7]! });
  ok(c, { type: 'setGroupLeader', group: groups[0]!, leader: nodes[0]!, term: term(4) });
  ok(c, { type: 'addLearner', group: groups[0]!, node: nodes[6]!, replaces: nodes[1]! });
  const { shard } = ok(c, { type: 'createTable', name: 'Stocks', engine: 'lsm', atMs: 10 });
  ok(c, { type: 'splitShard', shard, key: new Uint8Array([0x00, 0xff, 0x80]), targetGroup: groups[1]! });
  ok(c, { type: 'createTable', name: 'gone', engine: 'btree', atMs: 11 });
  ok(c, { type: 'dropTable', name: 'gone', atMs: 12 });
  ok(c, { type: 'createTable', name: 'half', engine: 'btree', atMs: 13 });
  ok(c, { type: 'dropTable', name: 'half', atMs: 14 });
  ok(c, { type: 'finishDropTable', table: tableId(3) });
  ok(c, { type: 'createToken', secretHash: hex('e'), readOnly: false, table: null, atMs: 15 });
  ok(c, { type: 'createToken', secretHash: hex('f'), readOnly: true, table: 'Stocks', atMs: 16 });
  ok(c, { type: 'revokeToken', token: 1 });
  ok(c, { type: 'markNode', node: nodes[5]!, state: 'down' });
  return c;
}

function expectCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isTesseraError(caught) ? caught.code : caught).toBe(code);
}

describe('snapshot', () => {
  it('round-trips: restore(snapshot) has the same state, bytes, indexes and behaviour', () => {
    const c = busyCatalog();
    const bytes = c.snapshot();
    const r = Catalog.restore(bytes);
    expect(Buffer.from(r.snapshot()).equals(Buffer.from(bytes))).toBe(true);
    expect(r.version).toBe(c.version);
    expect(r.state).toEqual(c.state);
    expect(r.tableByName('Stocks')?.id).toBe(1);
    expect(r.routing().tables.get('Stocks')?.shards).toHaveLength(2);
    // Both go on identically.
    const next: CatalogCommand[] = [
      { type: 'createTable', name: 'gone', engine: 'lsm', atMs: 20 },
      {
        type: 'registerNode',
        nodeKey: 'n1',
        address: 'x:1',
        role: 'storage',
        capacity: { replicasMax: 1, diskBytes: 1 },
        atMs: 21,
      },
      { type: 'createTable', name: 'Stocks', engine: 'lsm', atMs: 22 },
    ];
    for (const cmd of next) expect(r.apply(cmd)).toEqual(c.apply(cmd));
    expect(Buffer.from(r.snapshot()).equals(Buffer.from(c.snapshot()))).toBe(true);
  });

  it('is versioned JSON with shard bounds in hex', () => {
    const doc = JSON.parse(Buffer.from(busyCatalog().snapshot()).toString('utf8'));
    expect(doc.format).toBe('tessera-catalog');
    expect(doc.formatVersion).toBe(1);
    expect(doc.shards.map((s: { start: string; end: string }) => [s.start, s.end])).toEqual([
      ['', '00ff80'],
      ['00ff80', ''],
      ['', ''], // the dropping table's shard stays until finishDropTable
    ]);
  });

  it.each([
    ['not JSON', (d: string) => d.slice(0, -1)],
    ['another format version', (d: string) => d.replace('"formatVersion":1', '"formatVersion":2')],
    ['another format', (d: string) => d.replace('tessera-catalog', 'etcd')],
    ['a bad hex bound', (d: string) => d.replace('"00ff80"', '"0g"')],
    ['a shard gap (invariant)', (d: string) => d.replace('"start":"00ff80"', '"start":"00ff81"')],
    ['a dangling leader', (d: string) => d.replace('"leader":1', '"leader":99')],
    ['a node in the pool with the wrong state', (d: string) => d.replace('"spares":[8]', '"spares":[6,8]')],
    [
      'a duplicate table name',
      (d: string) =>
        d.replace(
          '"name":"gone","engine":"btree","state":"dropping"',
          '"name":"Stocks","engine":"btree","state":"active"',
        ),
    ],
  ])('refuses %s with CORRUPTION', (_name, mutate) => {
    const text = Buffer.from(busyCatalog().snapshot()).toString('utf8');
    const bad = mutate(text);
    expect(bad).not.toBe(text);
    expectCode(() => Catalog.restore(new TextEncoder().encode(bad)), 'CORRUPTION');
  });
});

describe('backup file', () => {
  it('round-trips through the backup format, keeping catalog version and time', () => {
    const c = busyCatalog();
    const file = c.backup(1_700_000_000_000);
    const b = decodeBackup(file);
    expect(b.catalogVersion).toBe(c.version);
    expect(b.createdAtMs).toBe(1_700_000_000_000);
    expect(Buffer.from(file.subarray(0, 8)).toString()).toBe('TSRCATBK');
    const r = Catalog.restoreBackup(file);
    expect(Buffer.from(r.snapshot()).equals(Buffer.from(c.snapshot()))).toBe(true);
  });

  it('detects every single-byte corruption of the header and of sampled payload bytes', () => {
    const file = busyCatalog().backup(5);
    const positions = [...Array(backupHeaderBytes).keys()];
    for (let i = backupHeaderBytes; i < file.length; i += 97) positions.push(i);
    positions.push(file.length - 1);
    for (const i of positions) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const bad = new Uint8Array(file);
        bad[i]! ^= flip;
        expectCode(() => Catalog.restoreBackup(bad), 'CORRUPTION');
      }
    }
  });

  it('detects truncation, trailing bytes and an empty file', () => {
    const file = busyCatalog().backup(5);
    for (const bad of [file.subarray(0, file.length - 1), file.subarray(0, 39), new Uint8Array(0)]) {
      expectCode(() => Catalog.restoreBackup(bad), 'CORRUPTION');
    }
    const longer = new Uint8Array(file.length + 1);
    longer.set(file);
    expectCode(() => Catalog.restoreBackup(longer), 'CORRUPTION');
  });
});

describe('command codec', () => {
  it('round-trips a split key of any bytes', () => {
    const cmd: CatalogCommand = {
      type: 'splitShard',
      shard: shardId(3),
      key: new Uint8Array([0, 255, 10]),
      targetGroup: groupId(2),
    };
    expect(decodeCommand(encodeCommand(cmd))).toEqual(cmd);
  });

  it.each([
    ['not JSON', '{'],
    ['another version', '{"v":2,"c":{"type":"addSpare","node":1}}'],
    ['no command', '{"v":1}'],
    ['an unknown type', '{"v":1,"c":{"type":"format","node":1}}'],
    ['a bad split key', '{"v":1,"c":{"type":"splitShard","shard":1,"keyHex":"zz","targetGroup":1}}'],
  ])('refuses %s with CORRUPTION', (_name, text) => {
    expectCode(() => decodeCommand(new TextEncoder().encode(text)), 'CORRUPTION');
  });
});

// ---- property: replaying the same command list gives the same state and snapshot bytes ----

const small = (n: number) => fc.integer({ min: 0, max: n });
const nodeArb = fc.integer({ min: 1, max: 10 }).map(nodeId);
const groupArb = fc.integer({ min: 1, max: 3 }).map(groupId);
const nameArb = fc.constantFrom('a', 'b', 'c', 'bad name');
const keyArb = fc.uint8Array({ minLength: 1, maxLength: 2 });

const commandArb: fc.Arbitrary<CatalogCommand> = fc.oneof(
  fc.record({
    type: fc.constant('registerNode' as const),
    nodeKey: fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'),
    address: fc.constantFrom('h:1', 'h:2'),
    role: fc.constantFrom('storage' as const, 'storage' as const, 'metadata' as const),
    capacity: fc.record({ replicasMax: small(3), diskBytes: small(3) }),
    atMs: small(1000),
  }),
  fc.record({
    type: fc.constant('markNode' as const),
    node: nodeArb,
    state: fc.constantFrom('up' as const, 'down' as const, 'removed' as const),
  }),
  fc.record({ type: fc.constant('addSpare' as const), node: nodeArb }),
  fc.record({ type: fc.constant('takeSpare' as const), node: fc.option(nodeArb, { nil: undefined }) }),
  fc.record({
    type: fc.constant('createGroup' as const),
    members: fc.oneof(
      fc.uniqueArray(nodeArb, { minLength: 3, maxLength: 3 }),
      fc.uniqueArray(nodeArb, { minLength: 1, maxLength: 2 }),
    ),
    atMs: small(9),
  }),
  fc.record({
    type: fc.constant('setGroupLeader' as const),
    group: groupArb,
    leader: fc.option(nodeArb, { nil: null }),
    term: small(5).map(term),
  }),
  fc.record({
    type: fc.constant('addLearner' as const),
    group: groupArb,
    node: nodeArb,
    replaces: fc.option(nodeArb, { nil: null }),
  }),
  fc.record({ type: fc.constant('promote' as const), group: groupArb, node: nodeArb }),
  // Targeted: replacement steps that usually apply.
  fc.record({
    type: fc.constant('addLearner' as const),
    group: fc.constantFrom(1, 2).map(groupId),
    node: fc.constantFrom(7, 8, 9).map(nodeId),
    replaces: fc.option(fc.integer({ min: 1, max: 6 }).map(nodeId), { nil: null, freq: 3 }),
  }),
  fc.record({
    type: fc.constant('promote' as const),
    group: fc.constantFrom(1, 2).map(groupId),
    node: fc.constantFrom(7, 8, 9).map(nodeId),
  }),
  fc.record({ type: fc.constant('removeMember' as const), group: groupArb, node: nodeArb }),
  fc.record({
    type: fc.constant('createTable' as const),
    name: nameArb,
    engine: fc.constantFrom('btree' as const, 'lsm' as const),
    atMs: small(9),
  }),
  fc.record({ type: fc.constant('dropTable' as const), name: nameArb, atMs: small(9) }),
  fc.record({
    type: fc.constant('finishDropTable' as const),
    table: fc.integer({ min: 1, max: 3 }).map(tableId),
  }),
  fc.record({
    type: fc.constant('splitShard' as const),
    shard: fc.integer({ min: 1, max: 3 }).map(shardId),
    key: keyArb,
    targetGroup: groupArb,
  }),
  fc.record({
    type: fc.constant('moveShard' as const),
    shard: fc.integer({ min: 1, max: 3 }).map(shardId),
    targetGroup: groupArb,
  }),
  fc.record({
    type: fc.constant('createToken' as const),
    secretHash: fc.constantFrom(hex('1'), hex('2')),
    readOnly: fc.boolean(),
    table: fc.constantFrom(null, 'a'),
    atMs: small(9),
  }),
  fc.record({ type: fc.constant('revokeToken' as const), token: small(3) }),
);

/** Every run starts from a few nodes and a group, so that most commands have something to act on. */
const prelude: CatalogCommand[] = [
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => ({
    type: 'registerNode' as const,
    nodeKey: `k${i}`,
    address: 'h:1',
    role: 'storage' as const,
    capacity: { replicasMax: 1, diskBytes: 1 },
    atMs: 0,
  })),
  { type: 'createGroup', members: [nodeId(1), nodeId(2), nodeId(3)], atMs: 0 },
  { type: 'createGroup', members: [nodeId(4), nodeId(5), nodeId(6)], atMs: 0 },
  { type: 'createTable', name: 'a', engine: 'btree', atMs: 0 },
  { type: 'addSpare', node: nodeId(7) },
];

describe('determinism (property)', () => {
  it('the same commands give the same results, state and snapshot bytes; refusals change nothing', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 120 }), (random) => {
        const commands = [...prelude, ...random];
        const a = new Catalog();
        const b = new Catalog();
        let before = a.snapshot();
        for (const cmd of commands) {
          const ra = a.apply(cmd);
          // The other replica gets the command through the log codec.
          expect(b.apply(decodeCommand(encodeCommand(cmd)))).toEqual(ra);
          checkInvariants(a.state as never);
          const after = a.snapshot();
          const same = Buffer.from(after).equals(Buffer.from(before));
          // The snapshot (and version) moves exactly when the command changed something.
          expect(same).toBe(!ra.ok || !ra.changed);
          before = after;
        }
        expect(Buffer.from(b.snapshot()).equals(Buffer.from(a.snapshot()))).toBe(true);
        // A replica restored mid-way agrees too.
        const r = Catalog.restore(a.snapshot());
        expect(r.state).toEqual(a.state);
      }),
      { numRuns: 300, seed: 4242 },
    );
  });
});
