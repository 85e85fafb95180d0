import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KeyspaceId } from '../../src/engine/types.js';
import type { Seq } from '../../src/lib/ids.js';
import { type MemRecord, Memtable, memId } from '../../src/storage/memtable.js';

const rec = (keyspace: number, key: Uint8Array): MemRecord => ({
  type: 'put',
  engine: 'btree',
  keyspace: keyspace as KeyspaceId,
  key,
  value: key,
  seq: new Uint8Array(16) as Seq,
  tombstone: false,
});

describe('Memtable.lookup (hash filter before memId)', () => {
  it('finds every key set in the active and the flushing generation, and nothing else', () => {
    const write = fc.record({
      ks: fc.integer({ min: 1, max: 3 }),
      key: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    });
    fc.assert(
      fc.property(
        fc.array(write, { maxLength: 60 }),
        fc.array(write, { maxLength: 60 }),
        fc.array(write),
        (gen1, gen2, probes) => {
          const m = new Memtable();
          let index = 0;
          for (const w of gen1) m.set(memId(w.ks, w.key), rec(w.ks, w.key), ++index);
          m.freeze();
          for (const w of gen2) m.set(memId(w.ks, w.key), rec(w.ks, w.key), ++index);
          for (const w of [...gen1, ...gen2, ...probes]) {
            expect(m.lookup(w.ks, w.key)).toBe(m.get(memId(w.ks, w.key)));
          }
          for (const w of [...gen1, ...gen2]) expect(m.lookup(w.ks, w.key)).toBeDefined();
          m.flushed();
          for (const w of gen2) expect(m.lookup(w.ks, w.key)).toBeDefined();
          for (const w of [...gen1, ...probes]) expect(m.lookup(w.ks, w.key)).toBe(m.get(memId(w.ks, w.key)));
        },
      ),
    );
  });
});
