/**
 * Replay of a log that the engines never saw: put-only chunks go straight into the engines, chunks
 * with deletes or catalog changes through the memtable; both must restore exactly what applying
 * the entries one by one gives (deletes of absent keys leave nothing, unknown tables are skipped).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyspaceId } from '../../src/engine/types.js';
import type { LogIndex, Seq, Term } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { openLog } from '../../src/log/index.js';
import { makeSeq, seqToHex } from '../../src/sequencer/index.js';
import { type Command, encodeCommand } from '../../src/storage/command.js';
import { LOCAL_GROUP, LocalStore } from '../../src/storage/local-store.js';

const dirs: string[] = [];
const chunkDefault = [limits.storeReplayChunkEntriesFirst, limits.storeReplayChunkEntriesMax] as const;
/** Replay chunks of `first` entries, doubling up to `most`. */
const setChunk = (first: number, most: number): void => {
  Object.assign(limits, { storeReplayChunkEntriesFirst: first, storeReplayChunkEntriesMax: most });
};
afterEach(() => {
  setChunk(...chunkDefault);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const key = (i: number): Uint8Array => new TextEncoder().encode(`k${i % 2500}`);
type Model = Map<string, { value: string | undefined; seq: string }>;

describe('LocalStore replay', () => {
  it.each([
    ['chunks of 2048', 2048],
    ['chunks growing from 300 to 2048 (deletes start and end inside chunks)', 300],
  ])(
    'restores puts, deletes and overwrites across direct and memtable chunks, both engines: %s',
    async (_, first) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-replay-'));
      dirs.push(dir);
      const store = await LocalStore.open(dir);
      const tb = await store.createTable('b', 'btree');
      const tl = await store.createTable('l', 'lsm');
      await store.close();

      // Small chunks: two put-only chunks back to back (the second is packed while the first is
      // written), a chunk with deletes (the memtable path), then put-only chunks with overwrites.
      const chunk = 2048;
      setChunk(first, chunk);
      const total = chunk * 5 + 600;
      const ts = (BigInt(Date.now()) + 86_400_000n) * 1_000_000n; // ahead of the tables' seqs
      const models: Record<number, Model> = { [tb.keyspace]: new Map(), [tl.keyspace]: new Map() };
      const log = await openLog(path.join(dir, 'log'));
      let index = log.groupState(LOCAL_GROUP)!.lastIndex + 1;
      for (let i = 0; i < total; i += 4096) {
        const records = [];
        for (let j = i; j < Math.min(total, i + 4096); j++) {
          const seq = makeSeq(ts, j, 1) as Seq;
          const c = commandAt(j, chunk, seq, [tb.keyspace, tl.keyspace]);
          applyToModel(models, c);
          records.push({
            kind: 'entry' as const,
            group: LOCAL_GROUP,
            term: 1 as Term,
            index: index++ as LogIndex,
            payload: encodeCommand(c),
          });
        }
        await log.append(records);
      }
      await log.close();

      // A clock far behind the log: the next seq must still come after every replayed one.
      const again = await LocalStore.open(dir, { clockNs: () => 0n });
      try {
        expect(again.replayed).toBe(total);
        for (const [name, ks] of [
          ['b', tb.keyspace],
          ['l', tl.keyspace],
        ] as const) {
          const model = models[ks]!;
          expect(model.size).toBeGreaterThan(100);
          let tombstones = 0;
          for (const [id, want] of model) {
            const r = await again.getRecord(name, new TextEncoder().encode(id));
            expect(r && seqToHex(r.seq)).toBe(want.seq);
            expect(r?.tombstone).toBe(want.value === undefined);
            if (want.value === undefined) tombstones++;
            else expect(Buffer.from(r!.value).toString()).toBe(want.value);
          }
          expect(tombstones).toBeGreaterThan(0);
          const live = await again.scan(name, { limit: 10_000 });
          expect(live.length).toBe([...model.values()].filter((m) => m.value !== undefined).length);
        }
        const after = await again.put('b', new TextEncoder().encode('after'), new TextEncoder().encode('x'));
        expect(seqToHex(after.seq) > seqToHex(makeSeq(ts, total - 1, 1))).toBe(true);
        // A key deleted while absent left nothing behind.
        expect(await again.getRecord('b', new TextEncoder().encode('never'))).toBeUndefined();
      } finally {
        await again.close();
      }
    },
  );
});

/** Entry j: puts everywhere, deletes (some of absent keys) in the third chunk, one unknown table. */
function commandAt(j: number, chunk: number, seq: Seq, ks: readonly KeyspaceId[]): Command {
  const keyspace = ks[j % 2]!;
  if (j === 7) return { op: 'put', keyspace: 999 as KeyspaceId, seq, key: key(j), value: key(j) };
  if (j >= 2 * chunk && j < 3 * chunk && j % 3 === 0) {
    const k = j % 9 === 0 ? new TextEncoder().encode('never') : key(j);
    return { op: 'delete', keyspace, seq, key: k };
  }
  const k = j >= 3 * chunk ? key(j % 1000) : key(j); // the tail leaves keys 1000.. as they were
  return { op: 'put', keyspace, seq, key: k, value: new TextEncoder().encode(`v${j}`) };
}

function applyToModel(models: Record<number, Model>, c: Command): void {
  if (c.op !== 'put' && c.op !== 'delete') return;
  const m = models[c.keyspace];
  if (!m) return; // unknown table: refused
  const id = Buffer.from(c.key).toString();
  if (c.op === 'put') m.set(id, { value: Buffer.from(c.value).toString(), seq: seqToHex(c.seq) });
  else if (m.get(id)?.value !== undefined) m.set(id, { value: undefined, seq: seqToHex(c.seq) });
}
