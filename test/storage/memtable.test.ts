import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KeyspaceId } from '../../src/engine/types.js';
import type { Seq } from '../../src/lib/ids.js';
import { type MemRecord, Memtable, memId, RecordTable } from '../../src/storage/memtable.js';

const rec = (keyspace: number, key: Uint8Array, tag = 0): MemRecord => ({
  type: 'put',
  engine: 'btree',
  keyspace: keyspace as KeyspaceId,
  key,
  value: Uint8Array.of(tag),
  seq: new Uint8Array(16) as Seq,
  tombstone: false,
});

const write = fc.record({
  ks: fc.integer({ min: 1, max: 3 }),
  key: fc.uint8Array({ minLength: 1, maxLength: 3 }),
});

describe('RecordTable', () => {
  it('behaves like a map keyed by (keyspace, key bytes), through growth and replacement', () => {
    fc.assert(
      fc.property(
        fc.array(write, { maxLength: 3000 }),
        fc.array(write, { maxLength: 200 }),
        (writes, probes) => {
          const t = new RecordTable();
          const model = new Map<string, MemRecord>();
          writes.forEach((w, i) => {
            // A fresh copy of the key bytes: equal keys must match by content, not identity.
            const r = rec(w.ks, Uint8Array.from(w.key), i & 0xff);
            t.set(r);
            model.set(memId(w.ks, w.key), r);
          });
          expect(t.size).toBe(model.size);
          for (const w of [...writes, ...probes])
            expect(t.get(w.ks, w.key)).toBe(model.get(memId(w.ks, w.key)));
          // values(): every live record once, in the order its key was first set.
          const firstSeen = [...new Map(writes.map((w) => [memId(w.ks, w.key), 0])).keys()];
          expect(t.values()).toEqual(firstSeen.map((id) => model.get(id)));
          const without = t.without(2);
          for (const [id, r] of model)
            expect(without.get(r.keyspace, r.key)).toBe(id.startsWith('2:') ? undefined : r);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps every record through many growths (50,000 writes, 2-byte keys, 3 keyspaces)', () => {
    const t = new RecordTable();
    const model = new Map<string, MemRecord>();
    let x = 7;
    for (let i = 0; i < 50_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const ks = 1 + (x % 3);
      const key = Uint8Array.of((x >>> 8) & 0xff, (x >>> 16) & 0xff);
      const r = rec(ks, key, i & 0xff);
      t.set(r);
      model.set(memId(ks, key), r);
    }
    expect(model.size).toBeGreaterThan(60_000 / 2);
    expect(t.size).toBe(model.size);
    for (const r of model.values()) expect(t.get(r.keyspace, Uint8Array.from(r.key))).toBe(r);
    expect(t.get(4, Uint8Array.of(1, 2))).toBeUndefined();
  });
});

describe('Memtable', () => {
  it('finds every key set in the active and the flushing generation (newest first), and nothing else', () => {
    fc.assert(
      fc.property(
        fc.array(write, { maxLength: 600 }),
        fc.array(write, { maxLength: 600 }),
        fc.array(write),
        (gen1, gen2, probes) => {
          const m = new Memtable();
          const old = new Map<string, MemRecord>();
          const young = new Map<string, MemRecord>();
          let index = 0;
          for (const w of gen1) {
            const r = rec(w.ks, w.key, 1);
            m.set(r, ++index);
            old.set(memId(w.ks, w.key), r);
          }
          expect(m.freeze()).toEqual([...old.values()]);
          for (const w of gen2) {
            const r = rec(w.ks, w.key, 2);
            m.set(r, ++index);
            young.set(memId(w.ks, w.key), r);
          }
          expect(m.size).toBe(old.size + young.size);
          expect(m.activeLast).toBe(index);
          for (const w of [...gen1, ...gen2, ...probes]) {
            const id = memId(w.ks, w.key);
            expect(m.lookup(w.ks, w.key)).toBe(young.get(id) ?? old.get(id));
          }
          m.dropKeyspace(1);
          for (const w of [...gen1, ...gen2]) {
            const id = memId(w.ks, w.key);
            expect(m.lookup(w.ks, w.key)).toBe(w.ks === 1 ? undefined : (young.get(id) ?? old.get(id)));
          }
          m.flushed();
          for (const w of [...gen1, ...gen2, ...probes]) {
            expect(m.lookup(w.ks, w.key)).toBe(w.ks === 1 ? undefined : young.get(memId(w.ks, w.key)));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
