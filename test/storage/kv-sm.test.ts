import { afterAll, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/consensus/types.js';
import { type Engine, type EngineKind, keyspaceId } from '../../src/engine/types.js';
import { groupId, logIndex, type ShardId, shardId, type TableId, tableId, term } from '../../src/lib/ids.js';
import type { Command, Condition } from '../../src/statemachine/command.js';
import { encodeCommand } from '../../src/statemachine/command.js';
import { encodeCatalogEntry, KvStateMachine, type NodeEngines } from '../../src/storage/kv-sm.js';
import type { CatalogEntry } from '../../src/storage/rpc.js';
import { Scratch } from '../engine/helpers.js';
import { hex, seqAt } from '../statemachine/helpers.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const none: Condition = { type: 'none' };
const g1 = groupId(1);
const T1 = tableId(1); // btree
const T2 = tableId(2); // lsm
const S1 = shardId(11);
const S2 = shardId(22);

function at(index: number, data: Uint8Array | 'noop'): Entry {
  return data === 'noop'
    ? { index: logIndex(index), term: term(1), kind: 'noop', seq: seqAt(index), data: new Uint8Array(0) }
    : { index: logIndex(index), term: term(1), kind: 'command', seq: seqAt(index), data };
}

const assign = (shard: ShardId, table: TableId, engine: EngineKind, epoch = 1): Uint8Array =>
  encodeCatalogEntry({
    type: 'assignShard',
    shard,
    table,
    engine,
    start: new Uint8Array(0),
    end: new Uint8Array(0),
    epoch,
    catalogVersion: 5,
  } satisfies CatalogEntry);

/** Builds a command against the state machine's registry, as the node does. */
function cmd(
  sm: KvStateMachine,
  shard: ShardId,
  op: 'put' | 'delete',
  key: string,
  value: string,
  req: [bigint, number],
  condition: Condition = none,
): Uint8Array {
  const s = sm.shard(shard);
  if (s === undefined) throw new Error('no shard');
  const base = {
    request: { client: req[0], number: req[1] },
    table: s.table,
    engine: s.engine,
    keyspace: s.keyspace,
    key: enc(key),
    condition,
  };
  const c: Command = op === 'put' ? { type: 'put', ...base, value: enc(value) } : { type: 'delete', ...base };
  return encodeCommand(c);
}

async function contents(sm: KvStateMachine, shard: ShardId): Promise<string[]> {
  const s = sm.shard(shard);
  if (s === undefined) return [];
  const rows = await sm.engineOf(s).scan(s.keyspace, { includeTombstones: true, limit: 10_000 });
  return rows.map((r) => `${dec(r.key)}=${r.tombstone ? '<del>' : dec(r.value)}@${hex(r.seq)}`);
}

describe('KvStateMachine over real engines', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());
  const openPair = async (dirs?: [string, string]): Promise<NodeEngines> =>
    new Map<EngineKind, Engine>([
      ['btree', await scratch.open('btree', dirs?.[0])],
      ['lsm', await scratch.open('lsm', dirs?.[1])],
    ]);

  /** A group with two shards (btree and lsm) and a few writes; returns the entries applied. */
  async function populated(engines: NodeEngines) {
    const sm = await KvStateMachine.open(g1, engines);
    const log: Entry[] = [at(1, 'noop'), at(2, assign(S1, T1, 'btree')), at(3, assign(S2, T2, 'lsm'))];
    expect(await sm.apply(log)).toEqual([
      undefined,
      { ok: true, seq: seqAt(2) },
      { ok: true, seq: seqAt(3) },
    ]);
    const more = [
      at(4, cmd(sm, S1, 'put', 'a', 'A1', [7n, 1])),
      at(5, cmd(sm, S2, 'put', 'x', 'X1', [7n, 2])),
      at(6, cmd(sm, S1, 'put', 'a', 'A2', [7n, 3], { type: 'ifMatch', seq: seqAt(4) })),
      at(7, cmd(sm, S1, 'put', 'a', 'A3', [7n, 4], { type: 'ifMatch', seq: seqAt(4) })),
      at(8, cmd(sm, S2, 'put', 'x', 'X2', [7n, 5], { type: 'ifNoneMatch' })),
      at(9, cmd(sm, S2, 'delete', 'y', '', [7n, 6])),
      at(10, cmd(sm, S1, 'put', 'a', 'A9', [7n, 3])), // retry of request 3: first outcome, no write
      at(11, cmd(sm, S2, 'delete', 'x', '', [8n, 1])),
    ];
    const results = await sm.apply(more);
    log.push(...more);
    return { sm, log, results };
  }

  it('applies assignShard, conditional writes, deletes and retries', async () => {
    const { sm, results } = await populated(await openPair());
    expect(results).toEqual([
      { ok: true, seq: seqAt(4) },
      { ok: true, seq: seqAt(5) },
      { ok: true, seq: seqAt(6) },
      { ok: false, error: 'CONDITION_FAILED', currentSeq: seqAt(6) },
      { ok: false, error: 'CONDITION_FAILED', currentSeq: seqAt(5) },
      { ok: false, error: 'KEY_NOT_FOUND' },
      { ok: true, seq: seqAt(6) },
      { ok: true, seq: seqAt(11) },
    ]);
    expect(await contents(sm, S1)).toEqual([`a=A2@${hex(seqAt(6))}`]);
    expect(await contents(sm, S2)).toEqual([`x=<del>@${hex(seqAt(11))}`]);
    expect(sm.shard(S1)?.engine).toBe('btree');
    expect(sm.shard(S2)?.engine).toBe('lsm');
    expect(sm.shard(S2)?.catalogVersion).toBe(5);
    // Everything is still in the memtable: the engines (the durable position) hold nothing yet.
    expect(await sm.appliedPosition()).toEqual({ index: 0, seq: new Uint8Array(16) });
    await sm.flush();
    expect(await sm.appliedPosition()).toEqual({ index: 11, seq: seqAt(11) });
  });

  it('a higher epoch replaces the assignment; a lower one is ignored', async () => {
    const sm = await KvStateMachine.open(groupId(2), await openPair());
    await sm.apply([at(1, assign(S1, T1, 'btree', 3)), at(2, assign(S1, T1, 'btree', 2))]);
    expect(sm.shard(S1)?.epoch).toBe(3);
    await sm.apply([at(3, assign(S1, T1, 'btree', 4))]);
    expect(sm.shard(S1)?.epoch).toBe(4);
  });

  it('dropTable deletes the data, and later writes to it answer TABLE_NOT_FOUND', async () => {
    const engines = await openPair();
    const { sm } = await populated(engines);
    const late = cmd(sm, S1, 'put', 'b', 'B', [9n, 1]); // built before the drop, applied after it
    const drop = encodeCatalogEntry({ type: 'dropTable', table: T1 });
    const r = await sm.apply([at(12, drop), at(13, late)]);
    expect(r[0]).toEqual({ ok: true, seq: seqAt(12) });
    expect(r[1]).toEqual({ ok: false, error: 'TABLE_NOT_FOUND' });
    expect(sm.shard(S1)).toBeUndefined();
    expect(sm.tableDropped(T1)).toBe(true);
    await sm.flush();
    const reopened = await KvStateMachine.open(g1, engines);
    expect((await reopened.appliedPosition()).index).toBe(13);
    expect(reopened.shard(S1)).toBeUndefined();
    const btree = engines.get('btree') as Engine;
    expect(await btree.scan(keyspaceId(S1), { includeTombstones: true })).toEqual([]);
    expect(await contents(sm, S2)).toEqual([`x=<del>@${hex(seqAt(11))}`]); // other table untouched
  });

  it('snapshot then install elsewhere gives the same data, registry and dedup table', async () => {
    const { sm } = await populated(await openPair());
    const snap = await sm.snapshot({
      index: logIndex(11),
      term: term(1),
      membership: { voters: [], learners: [] },
      highestSeq: seqAt(11),
    });
    // Writes after the snapshot started are not in it.
    await sm.apply([at(12, cmd(sm, S1, 'put', 'late', 'L', [9n, 1]))]);
    const other = await KvStateMachine.open(g1, await openPair());
    await other.apply([at(1, assign(shardId(99), T1, 'btree'))]); // stale state, replaced
    const meta = {
      index: logIndex(11),
      term: term(1),
      membership: { voters: [], learners: [] },
      highestSeq: seqAt(11),
    };
    await other.install(meta, snap);
    expect(await other.appliedPosition()).toEqual({ index: 11, seq: seqAt(11) });
    expect(await contents(other, S2)).toEqual(await contents(sm, S2));
    expect(await contents(other, S1)).toEqual([`a=A2@${hex(seqAt(6))}`]);
    expect(other.shard(shardId(99))).toBeUndefined();
    expect(other.shards().map((s) => s.shard)).toEqual([S1, S2]);
    // The dedup table came along: a retry of request (7, 3) answers its first outcome.
    const r = await other.apply([at(12, cmd(other, S1, 'put', 'a', 'zzz', [7n, 3]))]);
    expect(r[0]).toEqual({ ok: true, seq: seqAt(6) });
    expect(await contents(other, S1)).toEqual([`a=A2@${hex(seqAt(6))}`]);
  });

  it('restart: the applied position survives and a replay from the start changes nothing', async () => {
    const dirs: [string, string] = [await scratch.dir(), await scratch.dir()];
    const first = await openPair(dirs);
    const { sm, log } = await populated(first);
    await sm.checkpoint();
    const before = [await contents(sm, S1), await contents(sm, S2)];
    for (const e of first.values()) await e.close();

    const again = await openPair(dirs);
    const sm2 = await KvStateMachine.open(g1, again);
    expect(await sm2.appliedPosition()).toEqual({ index: 11, seq: seqAt(11) });
    expect(sm2.shards().map((s) => [s.shard, s.epoch])).toEqual([
      [S1, 1],
      [S2, 1],
    ]);
    const replay = await sm2.apply(log);
    expect(replay.every((r) => r === undefined)).toBe(true);
    expect([await contents(sm2, S1), await contents(sm2, S2)]).toEqual(before);
    const next = await sm2.apply([at(12, cmd(sm2, S2, 'put', 'x', 'X3', [8n, 2]))]);
    expect(next).toEqual([{ ok: true, seq: seqAt(12) }]);
  });

  it('destroy removes the group data and registry', async () => {
    const engines = await openPair();
    const { sm } = await populated(engines);
    await sm.destroy();
    const again = await KvStateMachine.open(g1, engines);
    expect(await again.appliedPosition()).toEqual({ index: 0, seq: new Uint8Array(16) });
    expect(again.shards()).toEqual([]);
    const lsm = engines.get('lsm') as Engine;
    expect(await lsm.scan(keyspaceId(S2), { includeTombstones: true })).toEqual([]);
  });
});
