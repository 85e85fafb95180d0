import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyspaceId } from '../../src/engine/types.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, type LogIndex, type Seq, type Term } from '../../src/lib/ids.js';
import { type LogIo, nodeIo, openLog } from '../../src/log/index.js';
import { compareSeq, makeSeq, seqToHex } from '../../src/sequencer/index.js';
import { encodeCommand } from '../../src/storage/command.js';
import { LOCAL_GROUP, LocalStore } from '../../src/storage/local-store.js';
import { lmdbCommitFailure } from '../engine/helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const k = (s: string): Uint8Array => new TextEncoder().encode(s);
const txt = (b: Uint8Array | undefined): string | undefined => (b ? new TextDecoder().decode(b) : undefined);

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isTesseraError(e) ? e.code : String(e);
  }
}

describe.each(['btree', 'lsm'] as const)('LocalStore on %s', (engine) => {
  it('put / get / delete / scan with seqs, and the errors of each', async () => {
    const store = await LocalStore.open(tempDir());
    await store.createTable('t', engine);
    const a = await store.put('t', k('a'), k('1'));
    const b = await store.put('t', k('b'), k('2'));
    const a2 = await store.put('t', k('a'), k('3'));
    expect(compareSeq(b.seq, a.seq)).toBeGreaterThan(0);
    expect(compareSeq(a2.seq, b.seq)).toBeGreaterThan(0);
    const got = await store.get('t', k('a'));
    expect(txt(got?.value)).toBe('3');
    expect(seqToHex(got!.seq)).toBe(seqToHex(a2.seq));
    await store.put('t', k('c'), k('4'));
    await store.put('t', Uint8Array.of(0xff), k('5'));
    const rows = await store.scan('t', { start: k('b') });
    expect(rows.map((r) => txt(r.key))).toEqual(['b', 'c', '\ufffd']);
    expect((await store.scan('t', { prefix: k('a') })).length).toBe(1);
    const d = await store.delete('t', k('a'));
    expect(compareSeq(d.seq, a2.seq)).toBeGreaterThan(0);
    expect(await store.get('t', k('a'))).toBeUndefined();
    expect(await codeOf(store.delete('t', k('a')))).toBe('KEY_NOT_FOUND');
    expect(await codeOf(store.delete('t', k('zz')))).toBe('KEY_NOT_FOUND');
    expect(await codeOf(store.get('nope', k('a')))).toBe('TABLE_NOT_FOUND');
    expect(await codeOf(store.put('nope', k('a'), k('1')))).toBe('TABLE_NOT_FOUND');
    expect(await codeOf(store.createTable('t', engine))).toBe('TABLE_EXISTS');
    expect(await codeOf(store.createTable('bad name', engine))).toBe('INVALID_TABLE_NAME');
    expect(await codeOf(store.put('t', new Uint8Array(0), k('1')))).toBe('KEY_EMPTY');
    expect(await codeOf(store.put('t', new Uint8Array(1025), k('1')))).toBe('KEY_TOO_LARGE');
    expect(await codeOf(store.put('t', k('v'), new Uint8Array(1024 * 1024 + 1)))).toBe('VALUE_TOO_LARGE');
    await store.put('t', new Uint8Array(1024).fill(7), new Uint8Array(1024 * 1024).fill(9)); // both at the limit
    expect((await store.get('t', new Uint8Array(1024).fill(7)))?.value.length).toBe(1024 * 1024);
    await store.close();
  });

  it('keeps everything across a reopen, and seqs keep increasing', async () => {
    const dir = tempDir();
    const store = await LocalStore.open(dir);
    await store.createTable('t', engine);
    const last = await store.put('t', k('x'), k('1'));
    await store.close();
    const again = await LocalStore.open(dir);
    expect(again.listTables()).toEqual([{ name: 't', keyspace: 1, engine }]);
    expect(txt((await again.get('t', k('x')))?.value)).toBe('1');
    const next = await again.put('t', k('y'), k('2'));
    expect(compareSeq(next.seq, last.seq)).toBeGreaterThan(0);
    await again.close();
  });

  it('drop table removes its data; a new table of the same name starts empty', async () => {
    const store = await LocalStore.open(tempDir());
    await store.createTable('t', engine);
    for (let i = 0; i < 100; i++) await store.put('t', k(`k${i}`), k('v'));
    await store.dropTable('t');
    expect(await codeOf(store.get('t', k('k1')))).toBe('TABLE_NOT_FOUND');
    expect(await codeOf(store.dropTable('t'))).toBe('TABLE_NOT_FOUND');
    const t2 = await store.createTable('t', engine);
    expect(t2.keyspace).toBe(2);
    expect(await store.scan('t')).toEqual([]);
    await store.close();
  });

  it('concurrent writers: every put is acknowledged with a distinct seq, all in order of the log', async () => {
    const store = await LocalStore.open(tempDir());
    await store.createTable('t', engine);
    const acks = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => store.put('t', k(`k${i % 300}`), k(`${i}`))),
    );
    const hex = new Set(acks.map((a) => seqToHex(a.seq)));
    expect(hex.size).toBe(1000);
    for (let i = 700; i < 1000; i++) {
      const got = await store.get('t', k(`k${i % 300}`));
      expect(txt(got?.value)).toBe(`${i}`); // proposals are sequenced in call order
    }
    await store.close();
  });
});

describe('LocalStore recovery', () => {
  it('replays log entries the engines have not applied', async () => {
    const dir = tempDir();
    const store = await LocalStore.open(dir);
    const t = await store.createTable('t', 'lsm');
    const u = await store.createTable('u', 'btree');
    await store.put('t', k('a'), k('old'));
    await store.close();
    // A crash after the log fsync and before the apply: the entries are in the log only.
    const log = await openLog(path.join(dir, 'log'));
    const last = log.groupState(LOCAL_GROUP)!.lastIndex;
    const future = BigInt(Date.now() + 1000) * 1_000_000n; // a seq ahead of the wall clock
    const seq = (n: number): Seq => makeSeq(future, n, 1);
    const entry = (i: number, payload: Uint8Array) =>
      ({
        kind: 'entry',
        group: LOCAL_GROUP,
        term: 1 as Term,
        index: (last + i) as LogIndex,
        payload,
      }) as const;
    await log.append([
      entry(1, encodeCommand({ op: 'put', keyspace: t.keyspace, seq: seq(1), key: k('a'), value: k('new') })),
      entry(2, encodeCommand({ op: 'put', keyspace: u.keyspace, seq: seq(2), key: k('b'), value: k('bee') })),
      entry(3, encodeCommand({ op: 'delete', keyspace: t.keyspace, seq: seq(3), key: k('zz') })),
      entry(
        4,
        encodeCommand({ op: 'put', keyspace: 99 as KeyspaceId, seq: seq(4), key: k('c'), value: k('x') }),
      ),
    ]);
    await log.close();
    const again = await LocalStore.open(dir);
    expect(again.replayed).toBe(4);
    expect(txt((await again.get('t', k('a')))?.value)).toBe('new');
    expect(txt((await again.get('u', k('b')))?.value)).toBe('bee');
    const next = await again.put('t', k('d'), k('1'));
    expect(compareSeq(next.seq, seq(4))).toBeGreaterThan(0); // the sequencer observed the replayed seqs
    await again.close();
    const third = await LocalStore.open(dir);
    expect(third.replayed).toBe(0); // close checkpointed
    await third.close();
  });

  it('checkpoints release the log so old segments are deleted', async () => {
    const dir = tempDir();
    const store = await LocalStore.open(dir, {
      log: { segmentBytesMax: 64 * 1024, recordBytesMax: 16 * 1024 },
      checkpointEntries: 500,
    });
    await store.createTable('t', 'lsm');
    for (let r = 0; r < 10; r++) {
      await Promise.all(
        Array.from({ length: 300 }, (_, i) => store.put('t', k(`k${i}`), new Uint8Array(100))),
      );
    }
    await store.checkpoint();
    expect(store.stats().segments).toBeLessThanOrEqual(2); // ~8 segments were written
    expect(store.stats().appliedIndex).toBe(3001);
    await store.close();
    expect(groupId(1)).toBe(LOCAL_GROUP);
  });

  it('a full disk refuses writes with DISK_FULL, keeps serving reads, and recovers when space returns', async () => {
    const dir = tempDir();
    const full = { on: false };
    const io: LogIo = {
      ...nodeIo,
      write: async (fd, data, pos) => {
        if (full.on) {
          await nodeIo.write(fd, data.subarray(0, data.length >> 1), pos); // a torn partial write
          throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        }
        return nodeIo.write(fd, data, pos);
      },
    };
    const store = await LocalStore.open(dir, { log: { io } });
    await store.createTable('t', 'btree');
    await store.put('t', k('a'), k('1'));
    full.on = true;
    const results = await Promise.allSettled([
      store.put('t', k('a'), k('2')),
      store.put('t', k('b'), k('3')),
      store.delete('t', k('a')),
    ]);
    for (const r of results)
      expect(r.status === 'rejected' && isTesseraError(r.reason, 'DISK_FULL')).toBe(true);
    expect(txt((await store.get('t', k('a')))?.value)).toBe('1');
    expect(await store.get('t', k('b'))).toBeUndefined();
    full.on = false;
    await store.put('t', k('b'), k('4'));
    await store.close();
    const again = await LocalStore.open(dir);
    expect(txt((await again.get('t', k('a')))?.value)).toBe('1');
    expect(txt((await again.get('t', k('b')))?.value)).toBe('4');
    await again.close();
  });
});

/** The store's btree engine's next commits fail as lmdb-js reports a full disk (nothing written). */
function failNextBtreeCommit(store: LocalStore): void {
  const db = (store as unknown as { engines: { btree: { db: { ifVersion: (...a: unknown[]) => unknown } } } })
    .engines.btree.db;
  db.ifVersion = () => lmdbCommitFailure('MDB_ENOSPC: No space left on device', 28);
}

describe('LocalStore when an index engine fails', () => {
  it('close() still closes the log and both engines when its checkpoint fails, and throws the failure', async () => {
    const dir = tempDir();
    const store = await LocalStore.open(dir);
    await store.createTable('t', 'btree');
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.put('t', k(`a${i}`), k(`v${i}`))));
    failNextBtreeCommit(store);
    expect(await codeOf(store.close())).toBe('DISK_FULL');
    const inside = store as unknown as {
      log: { closed: boolean };
      engines: Record<string, { state: string }>;
    };
    expect(inside.log.closed).toBe(true);
    expect(inside.engines.btree!.state).not.toBe('open');
    expect(inside.engines.lsm!.state).toBe('closed');
    const again = await LocalStore.open(dir);
    for (let i = 0; i < 100; i++) expect(txt((await again.get('t', k(`a${i}`)))?.value)).toBe(`v${i}`);
    await again.close();
  });

  it("refuses writes with the engine's DISK_FULL, answers the logged ones OUTCOME_UNKNOWN, serves reads, and a reopen applies them all", async () => {
    const dir = tempDir();
    const store = await LocalStore.open(dir);
    await store.createTable('t', 'btree');
    const acked = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.put('t', k(`a${i}`), k(`v${i}`))),
    );
    expect(acked.length).toBe(200);
    failNextBtreeCommit(store);
    expect(await codeOf(store.checkpoint())).toBe('DISK_FULL'); // the memtable's flush
    // Logged before the store saw the failure: durable, not applied, not refused either.
    expect(await codeOf(store.put('t', k('late'), k('x')))).toBe('OUTCOME_UNKNOWN');
    // From now on refused before the log.
    expect(await codeOf(store.put('t', k('refused'), k('y')))).toBe('DISK_FULL');
    expect(await codeOf(store.delete('t', k('a1')))).toBe('DISK_FULL');
    expect(txt((await store.get('t', k('a7')))?.value)).toBe('v7');
    await store.close();

    const again = await LocalStore.open(dir);
    for (let i = 0; i < 200; i++) expect(txt((await again.get('t', k(`a${i}`)))?.value)).toBe(`v${i}`);
    expect(txt((await again.get('t', k('late')))?.value)).toBe('x');
    expect(await again.get('t', k('refused'))).toBeUndefined();
    await again.put('t', k('after'), k('z'));
    expect(txt((await again.get('t', k('after')))?.value)).toBe('z');
    await again.close();
  });
});
