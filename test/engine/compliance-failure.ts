/**
 * A failed data batch, part of the engine compliance suite: the group's batches issued behind it
 * (a replay keeps several in flight) must not be written, or their applied position would cover
 * the failed batch's entries and recovery would skip them.
 */
import { expect, it } from 'vitest';
import { type Engine, type EngineKind, keyspaceId } from '../../src/engine/index.js';
import { PackedWrites } from '../../src/engine/packed.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, logIndex } from '../../src/lib/ids.js';
import { dec, put, type Scratch, seq } from './helpers.js';

const g = groupId(11);
const k = keyspaceId(5);

function packed(b: number, n: number): PackedWrites {
  return PackedWrites.of(
    Array.from({ length: n }, (_, i) => put(k, `b${b}-${i}`, `v${b}`, seq(b * 1000 + i))),
  );
}

async function batchesIn(e: Engine): Promise<number[]> {
  const rows = await e.scan(k, { limit: 100_000 });
  return [...new Set(rows.map((r) => Number(dec(r.key).slice(1).split('-')[0])))].sort((a, b) => a - b);
}

export function complianceWriteFailure(kind: EngineKind, scratch: Scratch): void {
  // 200 writes go through btree's queue-ahead path, 10 through its transaction path.
  for (const perBatch of [200, 10]) {
    it(`a failed data batch stops the instance's writes: the batches issued behind it are not written (${perBatch} writes each)`, async () => {
      const dir = await scratch.dir();
      let e = await scratch.open(kind, dir);
      const apply = (b: number): Promise<unknown> =>
        e.applyPacked(g, packed(b, perBatch), logIndex(b), seq(b * 1000 + perBatch)).then(
          () => 'ok',
          (err: unknown) => err,
        );
      expect(await apply(1)).toBe('ok');
      // Batch 2's write fails as a full disk would, nothing of it written; 3 and 4 are issued
      // right behind it, before anyone has seen the failure.
      const impl = e as unknown as Record<'_write' | '_writeAhead', (...a: unknown[]) => Promise<void>>;
      for (const name of ['_write', '_writeAhead'] as const) {
        const real = impl[name].bind(e);
        let calls = 0;
        impl[name] = (...a) => {
          if (++calls === 1) {
            return Promise.reject(
              Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }),
            );
          }
          return real(...a);
        };
      }
      const [second, third, fourth] = await Promise.all([apply(2), apply(3), apply(4)]);
      expect(isTesseraError(second) && second.code).toBe('DISK_FULL');
      for (const later of [third, fourth]) expect(later).toBeInstanceOf(Error);
      expect(await batchesIn(e)).toEqual([1]);
      expect((await e.getApplied(g))?.index).toBe(1);
      // Any later write is refused with the failure's code; reads go on.
      const refused = await e
        .applyBatch(g, [put(k, 'x', 'y', seq(9_999_999))], logIndex(5), seq(9_999_999))
        .then(
          () => 'ok',
          (err: unknown) => err,
        );
      expect(isTesseraError(refused) && refused.code).toBe('DISK_FULL');
      expect(dec((await e.get(k, new TextEncoder().encode('b1-0')))?.value ?? new Uint8Array())).toBe('v1');
      await e.close();
      // Reopened, it replays from batch 1's position.
      e = await scratch.open(kind, dir);
      expect((await e.getApplied(g))?.index).toBe(1);
      expect(await Promise.all([apply(2), apply(3), apply(4)])).toEqual(['ok', 'ok', 'ok']);
      expect(await batchesIn(e)).toEqual([1, 2, 3, 4]);
      await e.close();
    });
  }
}
