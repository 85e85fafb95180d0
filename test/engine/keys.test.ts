import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyspaceId } from '../../src/engine/index.js';
import {
  dataKey,
  decodeApplied,
  decodeRecord,
  encodeApplied,
  encodeRecord,
  keyspacePrefix,
  readVarint,
  splitDataKey,
  successor,
  writeVarint,
  varintLength,
} from '../../src/engine/keys.js';
import { AssertionError } from '../../src/lib/assert.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { logIndex } from '../../src/lib/ids.js';
import { dirBytes, put, Scratch, seq } from './helpers.js';
import { groupId } from '../../src/lib/ids.js';
import { afterAll } from 'vitest';
import { Prng } from '../../src/lib/prng.js';

describe('key layout', () => {
  it('varints round-trip at the byte boundaries', () => {
    for (const n of [0, 1, 127, 128, 16383, 16384, 2 ** 32 - 1, 2 ** 32]) {
      const out = new Uint8Array(varintLength(n));
      expect(writeVarint(out, 0, n)).toBe(out.length);
      expect(readVarint(out, 0)).toEqual({ value: n, next: out.length });
    }
    expect(keyspacePrefix(keyspaceId(0))).toEqual(Uint8Array.of(1));
    expect(keyspacePrefix(keyspaceId(126)).length).toBe(1);
    expect(keyspacePrefix(keyspaceId(127)).length).toBe(2);
  });

  it('keyspace ranges never overlap (the prefix is prefix-free) and keys round-trip', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_fffe }),
        fc.integer({ min: 0, max: 0xffff_fffe }),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        (a, b, key) => {
          fc.pre(a !== b);
          const pa = keyspacePrefix(keyspaceId(a));
          const pb = keyspacePrefix(keyspaceId(b));
          const k = dataKey(pa, key);
          const end = successor(pb);
          const inB = Buffer.compare(k, pb) >= 0 && (end === undefined || Buffer.compare(k, end) < 0);
          expect(inB).toBe(false);
          expect(splitDataKey(k)).toEqual({ keyspace: a, key });
        },
      ),
    );
  });

  it('successor is the smallest string above every extension', () => {
    expect(successor(Uint8Array.of(1, 2))).toEqual(Uint8Array.of(1, 3));
    expect(successor(Uint8Array.of(1, 0xff, 0xff))).toEqual(Uint8Array.of(2));
    expect(successor(Uint8Array.of(0xff, 0xff))).toBeUndefined();
    const b = Buffer.from([5, 0xff]);
    successor(b);
    expect([...b]).toEqual([5, 0xff]);
  });

  it('records keep the tombstone flag in the seq top bit and cost exactly 16 bytes', () => {
    const s = seq(123456789);
    const live = encodeRecord(s, Uint8Array.of(9, 9));
    expect(live.length).toBe(18);
    expect(decodeRecord(live)).toEqual({ seq: s, tombstone: false, value: Uint8Array.of(9, 9) });
    const dead = encodeRecord(s, undefined);
    expect(dead.length).toBe(16);
    expect((dead[0] as number) & 0x80).toBe(0x80);
    expect(decodeRecord(dead)).toEqual({ seq: s, tombstone: true, value: new Uint8Array(0) });
    expect(() => encodeRecord(Uint8Array.of(0x80, ...new Uint8Array(15)) as never, undefined)).toThrow(
      AssertionError,
    );
    const corrupt = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isTesseraError(e, 'CORRUPTION');
      }
      return false;
    };
    expect(corrupt(() => decodeRecord(new Uint8Array(5)))).toBe(true);
    expect(corrupt(() => decodeRecord(Uint8Array.of(...dead, 1)))).toBe(true);
  });

  it('the applied position round-trips', () => {
    const v = { index: logIndex(2 ** 40 + 3), seq: seq(77), installing: true };
    expect(decodeApplied(encodeApplied(v))).toEqual(v);
  });
});

/** 4,000 records of 1,000 random bytes in keyspace `ks` (4 batches), seqs and indexes above `from`. */
async function fillKeyspace(
  e: Awaited<ReturnType<Scratch['open']>>,
  ks: number,
  from: number,
): Promise<void> {
  const prng = new Prng(ks);
  for (let b = 0; b < 4; b++) {
    const writes = Array.from({ length: 1000 }, (_, i) =>
      put(
        keyspaceId(ks),
        `k${b}-${i}`,
        new Uint8Array(1000).map(() => prng.int(0, 255)),
        seq(from + b * 1000 + i + 1),
      ),
    );
    await e.applyBatch(groupId(1), writes, logIndex(from + b + 1), seq(from + 1));
  }
}

describe('dropKeyspace frees space (lsm)', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('the directory shrinks after dropping a large keyspace', async () => {
    const e = await scratch.open('lsm');
    await fillKeyspace(e, 1, 0);
    await e.compact();
    const before = await dirBytes(e.dir);
    expect(before).toBeGreaterThan(3_000_000);
    await e.dropKeyspace(keyspaceId(1));
    const after = await dirBytes(e.dir);
    expect(after).toBeLessThan(before / 4);
  });
});

describe('dropKeyspace frees space (btree)', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('LMDB reuses the dropped pages, and compact() gives them back to the file system', async () => {
    const e = await scratch.open('btree');
    await fillKeyspace(e, 1, 0);
    await e.compact();
    const before = await dirBytes(e.dir);
    expect(before).toBeGreaterThan(3_000_000);
    await e.dropKeyspace(keyspaceId(1));
    expect(await e.scan(keyspaceId(1), { includeTombstones: true })).toEqual([]);
    // As much data again in another keyspace: written into the freed pages, the file barely grows.
    await fillKeyspace(e, 2, 10_000);
    const reused = await dirBytes(e.dir);
    expect(reused).toBeLessThan(before * 1.5);
    await e.dropKeyspace(keyspaceId(2));
    await e.compact();
    expect(await dirBytes(e.dir)).toBeLessThan(before / 4);
  });
});
