/**
 * The replicated state machine's memtable (src/storage/kv-memtable.ts through KvStateMachine):
 * reads, conditions and retries see unflushed writes; the durable position is the engines'; a
 * crash with an unflushed memtable replays to the same state; snapshots and drops see it too.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Entry } from '../../src/consensus/types.js';
import { type Engine, type EngineKind, keyspaceId } from '../../src/engine/types.js';
import { groupId, logIndex, type ShardId, shardId, type TableId, tableId, term } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import type { Command, Condition } from '../../src/statemachine/command.js';
import { encodeCommand } from '../../src/statemachine/command.js';
import { encodeCatalogEntry, KvStateMachine, type NodeEngines } from '../../src/storage/kv-sm.js';
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

const at = (index: number, data: Uint8Array): Entry => ({
  index: logIndex(index),
  term: term(1),
  kind: 'command',
  seq: seqAt(index),
  data,
});

const assign = (shard: ShardId, table: TableId, engine: EngineKind): Uint8Array =>
  encodeCatalogEntry({
    type: 'assignShard',
    shard,
    table,
    engine,
    start: new Uint8Array(0),
    end: new Uint8Array(0),
    epoch: 1,
    catalogVersion: 5,
  });

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

/** What the state machine answers for a shard (memtable over engine), tombstones included. */
async function contents(sm: KvStateMachine, shard: ShardId, limit = 10_000): Promise<string[]> {
  const s = sm.registered(shard);
  if (s === undefined) return [];
  const rows = await sm.engineOf(s).scan(s.keyspace, { includeTombstones: true, limit });
  return rows.map((r) => `${dec(r.key)}=${r.tombstone ? '<del>' : dec(r.value)}@${hex(r.seq)}`);
}

describe('KvStateMachine memtable', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());
  const openPair = async (dirs?: [string, string]): Promise<NodeEngines> =>
    new Map<EngineKind, Engine>([
      ['btree', await scratch.open('btree', dirs?.[0])],
      ['lsm', await scratch.open('lsm', dirs?.[1])],
    ]);

  /** Shards S1 (btree) and S2 (lsm); entries 3..8 flushed, 9..14 only in the memtable. */
  async function twoPhase(engines: NodeEngines) {
    const sm = await KvStateMachine.open(g1, engines);
    const log: Entry[] = [at(1, assign(S1, T1, 'btree')), at(2, assign(S2, T2, 'lsm'))];
    await sm.apply(log);
    const flushed = [
      at(3, cmd(sm, S1, 'put', 'a', 'A1', [7n, 1])),
      at(4, cmd(sm, S1, 'put', 'b', 'B1', [7n, 2])),
      at(5, cmd(sm, S1, 'put', 'c', 'C1', [7n, 3])),
      at(6, cmd(sm, S2, 'put', 'x', 'X1', [7n, 4])),
      at(7, cmd(sm, S1, 'put', 'd', 'D1', [7n, 5])),
      at(8, cmd(sm, S2, 'put', 'y', 'Y1', [7n, 6])),
    ];
    await sm.apply(flushed);
    await sm.flush();
    const held = [
      at(9, cmd(sm, S1, 'put', 'b', 'B2', [8n, 1], { type: 'ifMatch', seq: seqAt(4) })),
      at(10, cmd(sm, S1, 'delete', 'c', '', [8n, 2])),
      at(11, cmd(sm, S1, 'put', 'bb', 'BB', [8n, 3], { type: 'ifNoneMatch' })),
      at(12, cmd(sm, S1, 'put', 'a', 'A2', [8n, 4], { type: 'ifMatch', seq: seqAt(9) })), // fails
      at(13, cmd(sm, S2, 'delete', 'x', '', [8n, 5])),
      at(14, cmd(sm, S1, 'put', 'b', 'B9', [8n, 1])), // retry of (8, 1): answered from dedup
    ];
    const results = await sm.apply(held);
    log.push(...flushed, ...held);
    return { sm, log, results };
  }

  it('conditions, deletes, retries, gets and scans see unflushed writes; the position is the engines', async () => {
    const engines = await openPair();
    const { sm, results } = await twoPhase(engines);
    expect(results).toEqual([
      { ok: true, seq: seqAt(9) },
      { ok: true, seq: seqAt(10) },
      { ok: true, seq: seqAt(11) },
      { ok: false, error: 'CONDITION_FAILED', currentSeq: seqAt(3) },
      { ok: true, seq: seqAt(13) },
      { ok: true, seq: seqAt(9) },
    ]);
    expect(sm.memtableSize().records).toBeGreaterThan(0);
    expect(await sm.appliedPosition()).toEqual({ index: 8, seq: seqAt(8) });
    const s1 = sm.shard(S1);
    if (s1 === undefined) throw new Error('no S1');
    const view = sm.engineOf(s1);
    expect(dec((await view.get(s1.keyspace, enc('b')))?.value ?? enc('-'))).toBe('B2');
    expect((await view.get(s1.keyspace, enc('c')))?.tombstone).toBe(true);
    expect(view.getSync(s1.keyspace, enc('bb'))?.seq).toEqual(seqAt(11));
    const many = await view.getMany([
      { keyspace: s1.keyspace, key: enc('a') },
      { keyspace: s1.keyspace, key: enc('b') },
      { keyspace: s1.keyspace, key: enc('zz') },
    ]);
    expect(many.map((r) => (r === undefined ? null : dec(r.value)))).toEqual(['A1', 'B2', null]);
    // The engine itself still has the flushed state only.
    const base = engines.get('btree') as Engine;
    expect(dec((await base.get(s1.keyspace, enc('b')))?.value ?? enc('-'))).toBe('B1');
    const expected = [
      `a=A1@${hex(seqAt(3))}`,
      `b=B2@${hex(seqAt(9))}`,
      `bb=BB@${hex(seqAt(11))}`,
      `c=<del>@${hex(seqAt(10))}`,
      `d=D1@${hex(seqAt(7))}`,
    ];
    expect(await contents(sm, S1)).toEqual(expected);
    // Limited pages merge in key order; without tombstones the deleted key is skipped.
    for (let limit = 1; limit <= 5; limit++)
      expect(await contents(sm, S1, limit)).toEqual(expected.slice(0, limit));
    const live = await view.scan(s1.keyspace, { limit: 3 });
    expect(live.map((r) => dec(r.key))).toEqual(['a', 'b', 'bb']);
    const ranged = await view.scan(s1.keyspace, { start: enc('b'), end: enc('d') });
    expect(ranged.map((r) => dec(r.key))).toEqual(['b', 'bb']);
    await sm.flush();
    expect(sm.memtableSize()).toEqual({ bytes: 0, records: 0 });
    expect(await sm.appliedPosition()).toEqual({ index: 14, seq: seqAt(14) });
    expect(await contents(sm, S1)).toEqual(expected);
  });

  it('a crash with an unflushed memtable: reopen over the engines and replay the log to the same state', async () => {
    const dirs: [string, string] = [await scratch.dir(), await scratch.dir()];
    const engines = await openPair(dirs);
    const { sm, log } = await twoPhase(engines);
    const before = [await contents(sm, S1), await contents(sm, S2)];
    await sm.checkpoint(); // flushes: the engines reach 14 ...
    const more = [
      at(15, cmd(sm, S1, 'put', 'e', 'E1', [9n, 1])),
      at(16, cmd(sm, S1, 'delete', 'a', '', [9n, 2])),
      at(17, cmd(sm, S2, 'put', 'y', 'Y2', [9n, 3], { type: 'ifMatch', seq: seqAt(8) })),
    ];
    const first = await sm.apply(more); // ... and these stay in the memtable when the node dies
    log.push(...more);
    const after = [await contents(sm, S1), await contents(sm, S2)];
    expect(after).not.toEqual(before);
    for (const e of engines.values()) await e.close(); // the crash: the memtable is lost

    const again = await openPair(dirs);
    const sm2 = await KvStateMachine.open(g1, again);
    expect((await sm2.appliedPosition()).index).toBe(14);
    const replay = await sm2.apply(log);
    expect(replay.slice(0, 14).every((r) => r === undefined)).toBe(true);
    expect(replay.slice(14)).toEqual(first);
    expect([await contents(sm2, S1), await contents(sm2, S2)]).toEqual(after);
    // The dedup table came back too: a retry of (9, 3) answers its first outcome.
    const retry = await sm2.apply([at(18, cmd(sm2, S2, 'put', 'y', 'zzz', [9n, 3]))]);
    expect(retry).toEqual([{ ok: true, seq: seqAt(17) }]);
    await sm2.close();
    expect(sm2.memtableSize().records).toBe(0);
  });

  it('a snapshot taken with an unflushed memtable installs to the same state elsewhere', async () => {
    const { sm } = await twoPhase(await openPair());
    expect(sm.memtableSize().records).toBeGreaterThan(0);
    const meta = {
      index: logIndex(14),
      term: term(1),
      membership: { voters: [], learners: [] },
      highestSeq: seqAt(14),
    };
    const snap = await sm.snapshot(meta);
    await sm.apply([at(15, cmd(sm, S1, 'put', 'late', 'L', [9n, 1]))]); // not in the snapshot
    const other = await KvStateMachine.open(g1, await openPair());
    await other.apply([at(1, assign(shardId(99), T1, 'btree')), at(2, assign(S1, T1, 'btree'))]);
    await other.apply([at(3, cmd(other, S1, 'put', 'stale', 'S', [5n, 1]))]); // held, then replaced
    expect(other.memtableSize().records).toBeGreaterThan(0);
    await other.install(meta, snap);
    expect(other.memtableSize()).toEqual({ bytes: 0, records: 0 });
    expect(await other.appliedPosition()).toEqual({ index: 14, seq: seqAt(14) });
    const s1 = (await contents(sm, S1)).filter((r) => !r.startsWith('late='));
    expect(await contents(other, S1)).toEqual(s1);
    expect(await contents(other, S2)).toEqual(await contents(sm, S2));
    const r = await other.apply([at(15, cmd(other, S1, 'put', 'b', 'zzz', [8n, 1]))]);
    expect(r).toEqual([{ ok: true, seq: seqAt(9) }]); // the dedup table came along
  });

  it('dropTable clears the table from the memtable and the engine; the other table is kept', async () => {
    const engines = await openPair();
    const { sm } = await twoPhase(engines);
    const s1 = sm.registered(S1);
    if (s1 === undefined) throw new Error('no S1');
    const drop = encodeCatalogEntry({ type: 'dropTable', table: T1 });
    const r = await sm.apply([at(15, drop), at(16, cmd(sm, S2, 'put', 'z', 'Z', [9n, 1]))]);
    expect(r[0]).toEqual({ ok: true, seq: seqAt(15) });
    expect(await contents(sm, S1)).toEqual([]);
    expect(await sm.engineOf(s1).get(s1.keyspace, enc('bb'))).toBeUndefined();
    expect(await (engines.get('btree') as Engine).scan(keyspaceId(S1), { includeTombstones: true })).toEqual(
      [],
    );
    expect(await contents(sm, S2)).toEqual([
      `x=<del>@${hex(seqAt(13))}`,
      `y=Y1@${hex(seqAt(8))}`,
      `z=Z@${hex(seqAt(16))}`,
    ]);
    // The drop flushed what came before it: the engines are at least past 14.
    expect((await sm.appliedPosition()).index).toBeGreaterThanOrEqual(14);
    await sm.flush();
    const reopened = await KvStateMachine.open(g1, engines);
    expect(reopened.shard(S1)).toBeUndefined();
    expect(await contents(reopened, S2)).toEqual(await contents(sm, S2));
  });

  it('a flush writes every write of a generation in order: the engine ends with the newest of each key', async () => {
    const engines = await openPair();
    const sm = await KvStateMachine.open(groupId(5), engines);
    await sm.apply([at(1, assign(S1, T1, 'btree')), at(2, assign(S2, T2, 'lsm'))]);
    // Overwrites, a delete then a put again, a put then a delete, in both instances.
    const ops: [ShardId, 'put' | 'delete', string, string][] = [];
    for (let r = 0; r < 30; r++) for (const sh of [S1, S2]) ops.push([sh, 'put', `k${r % 7}`, `v${r}`]);
    ops.push([S1, 'delete', 'k1', ''], [S1, 'put', 'k1', 'back'], [S2, 'delete', 'k2', '']);
    await sm.apply(ops.map(([sh, op, k, v], i) => at(3 + i, cmd(sm, sh, op, k, v, [7n, i + 1]))));
    const want = { [S1]: await contents(sm, S1), [S2]: await contents(sm, S2) };
    expect(want[S1]).toContain(`k1=back@${hex(seqAt(3 + ops.length - 2))}`);
    expect(want[S2]).toContain(`k2=<del>@${hex(seqAt(3 + ops.length - 1))}`);
    await sm.flush();
    expect(sm.memtableSize().records).toBe(0);
    // What the engines themselves hold now equals what the memtable answered.
    for (const [sh, kind] of [
      [S1, 'btree'],
      [S2, 'lsm'],
    ] as const) {
      const rows = await (engines.get(kind) as Engine).scan(keyspaceId(sh), { includeTombstones: true });
      expect(rows.map((r) => `${dec(r.key)}=${r.tombstone ? '<del>' : dec(r.value)}@${hex(r.seq)}`)).toEqual(
        want[sh],
      );
    }
    expect((await sm.appliedPosition()).index).toBe(2 + ops.length);
  });

  it('past the flush threshold the memtable flushes in the background', async () => {
    const engines = await openPair();
    const sm = await KvStateMachine.open(groupId(3), engines);
    await sm.apply([at(1, assign(S2, T2, 'lsm'))]);
    const n = limits.kvMemtableFlushRecords;
    const entries = Array.from({ length: n }, (_, i) =>
      at(2 + i, cmd(sm, S2, 'put', `k${String(i).padStart(6, '0')}`, 'v', [1n, i + 1])),
    );
    await sm.apply(entries);
    // No flush() call: the apply started one past the threshold.
    await vi.waitFor(
      async () => {
        expect((await sm.appliedPosition()).index).toBe(n + 1);
        expect(sm.memtableSize().records).toBe(0);
      },
      { timeout: 20_000, interval: 20 },
    );
    const s2 = sm.shard(S2);
    if (s2 === undefined) throw new Error('no S2');
    const rows = await (engines.get('lsm') as Engine).scan(s2.keyspace, { limit: n + 10 });
    expect(rows.length).toBe(n);
  });
});

/** The engine, with its applyBatch held until `open()` (or failed by `fail()`). */
function gated(engine: Engine) {
  let release: (() => void) | undefined;
  let gate = new Promise<void>((r) => {
    release = r;
  });
  let failure: Error | undefined;
  let calls = 0;
  const view = new Proxy(engine, {
    get(target, prop, receiver) {
      // Both write paths: the memtable flushes its packed batch (applyPacked) or, after a
      // keyspace drop, the newest record per key (applyBatch).
      if (prop !== 'applyBatch' && prop !== 'applyPacked') {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      }
      const write = (Reflect.get(target, prop, receiver) as (...a: unknown[]) => Promise<unknown>).bind(
        target,
      );
      return async (...args: unknown[]) => {
        calls++;
        await gate;
        if (failure !== undefined) throw failure;
        return write(...args);
      };
    },
  });
  return {
    view,
    calls: () => calls,
    open: () => release?.(),
    fail: (e: Error) => {
      failure = e;
      release?.();
    },
    close: () => {
      gate = new Promise<void>((r) => {
        release = r;
      });
    },
  };
}

/** Lets pending promise callbacks and I/O callbacks run. */
const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('KvStateMachine memtable: back-pressure and flush failures', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  async function gatedSm() {
    const lsm = gated(await scratch.open('lsm'));
    const engines = new Map<EngineKind, Engine>([
      ['btree', await scratch.open('btree')],
      ['lsm', lsm.view],
    ]);
    const sm = await KvStateMachine.open(groupId(4), engines);
    lsm.open();
    await sm.apply([at(1, assign(S2, T2, 'lsm'))]);
    await sm.flush();
    lsm.close();
    return { sm, lsm };
  }

  const big = 'v'.repeat(64 * 1024);
  const puts = (sm: KvStateMachine, from: number, n: number, client: bigint) =>
    Array.from({ length: n }, (_, i) =>
      at(from + i, cmd(sm, S2, 'put', `k${from + i}`, big, [client, i + 1])),
    );

  it('above kvMemtableBytesMax an apply waits for the flush', async () => {
    const { sm, lsm } = await gatedSm();
    const n = Math.ceil(limits.kvMemtableBytesMax / big.length) + 1;
    await sm.apply(puts(sm, 2, n, 1n)); // held; its background flush is stuck at the gate
    expect(sm.memtableSize().bytes).toBeGreaterThanOrEqual(limits.kvMemtableBytesMax);
    let done = false;
    const second = sm.apply(puts(sm, 2 + n, 4, 2n)).then(() => {
      done = true;
    });
    await turns();
    expect(done).toBe(false); // back-pressure: waiting for the engine
    expect((await sm.appliedPosition()).index).toBe(1);
    lsm.open();
    await second;
    expect((await sm.appliedPosition()).index).toBeGreaterThanOrEqual(n + 1);
    expect(sm.memtableSize().bytes).toBeLessThan(limits.kvMemtableBytesMax);
    await sm.flush();
    expect((await sm.appliedPosition()).index).toBe(n + 5);
  });

  it('a failed flush is sticky: later applies, flushes and checkpoints reject; reads still see the data', async () => {
    const { sm, lsm } = await gatedSm();
    await sm.apply(puts(sm, 2, 3, 1n));
    const flushing = sm.flush();
    await turns();
    lsm.fail(new Error('disk on fire'));
    await expect(flushing).rejects.toThrow('disk on fire');
    await expect(sm.apply(puts(sm, 5, 1, 2n))).rejects.toThrow('disk on fire');
    await expect(sm.checkpoint()).rejects.toThrow('disk on fire');
    expect((await sm.appliedPosition()).index).toBe(1); // the engine never got them
    const s2 = sm.shard(S2);
    if (s2 === undefined) throw new Error('no S2');
    expect((await sm.engineOf(s2).get(s2.keyspace, enc('k3')))?.value.length).toBe(big.length);
    await sm.close(); // does not raise it again
  });
});
