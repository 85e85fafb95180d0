/**
 * The catalog state machine adapter: apply (commands, restores, replays skipped), checkpoint file
 * format v1 (round trip, every header byte and truncation detected), snapshot/install, restore
 * keeping versions and next ids, and the MM RPC codec's validation.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/consensus/types.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { logIndex, type Seq, term } from '../../src/lib/ids.js';
import { limits } from '../../src/lib/limits.js';
import { Catalog } from '../../src/metadata/catalog.js';
import {
  CatalogStateMachine,
  decodeCheckpoint,
  encodeCheckpoint,
  writeFileAtomic,
} from '../../src/metadata/catalog-sm.js';
import { encodeCommand } from '../../src/metadata/command-codec.js';
import { decodeMmRequest, decodeMmResponse, encodeMm } from '../../src/metadata/rpc.js';
import type { CatalogCommand } from '../../src/metadata/types.js';
import { tempDirs } from '../support/tmp.js';

const tmp = tempDirs('tessera-catsm-');

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const seqOf = (i: number): Seq => {
  const b = new Uint8Array(16);
  b[15] = i;
  return b as Seq;
};
const entry = (index: number, data: Uint8Array, kind: Entry['kind'] = 'command'): Entry => ({
  index: logIndex(index),
  term: term(1),
  kind,
  seq: seqOf(index),
  data,
});
const cmd = (c: CatalogCommand): Uint8Array => encodeCommand(c);
const reg = (key: string, atMs = 1): CatalogCommand => ({
  type: 'registerNode',
  nodeKey: key,
  address: 'h:1',
  role: 'storage',
  capacity: { replicasMax: 10, diskBytes: 0 },
  atMs,
});

describe('catalog state machine', () => {
  it('applies commands in order, skips replayed entries, answers refusals, node ids from 16', async () => {
    const sm = await CatalogStateMachine.open(join(tmp(), 'c.ckpt'));
    const out = await sm.apply([
      entry(1, cmd(reg('a'))),
      entry(2, new Uint8Array(), 'noop'),
      entry(3, cmd({ type: 'dropTable', name: 'nope', atMs: 1 })),
      entry(4, new TextEncoder().encode('{"v":9}')),
    ]);
    expect(out[0]).toMatchObject({
      kind: 'command',
      result: { ok: true, value: { node: limits.mmNodeIdMax + 1 } },
    });
    expect(out[1]).toBeNull();
    expect(out[2]).toMatchObject({ kind: 'command', result: { ok: false, code: 'TABLE_NOT_FOUND' } });
    expect(out[3]).toMatchObject({ kind: 'command', result: { ok: false, code: 'BAD_REQUEST' } });
    expect(sm.appliedIndex).toBe(4);
    const again = await sm.apply([entry(3, cmd(reg('b')))]);
    expect(again).toEqual([null]);
    expect(sm.catalog.state.nodes.size).toBe(1);
  });

  it('checkpoint is durable and atomic; restart = checkpoint; only a durable index is reported', async () => {
    const file = join(tmp(), 'c.ckpt');
    const sm = await CatalogStateMachine.open(file);
    await sm.apply([entry(1, cmd(reg('a'))), entry(2, cmd(reg('b')))]);
    expect((await sm.appliedPosition()).index).toBe(0);
    expect((await sm.checkpoint()).index).toBe(2);
    await sm.apply([entry(3, cmd(reg('c')))]);
    const reopened = await CatalogStateMachine.open(file);
    expect((await reopened.appliedPosition()).index).toBe(2);
    expect(reopened.catalog.state.nodes.size).toBe(2);
    // Replay of the tail gives the same state.
    await reopened.apply([entry(3, cmd(reg('c')))]);
    expect(Buffer.from(reopened.catalog.snapshot()).equals(Buffer.from(sm.catalog.snapshot()))).toBe(true);
  });

  it('checkpoint format: round trip; every header byte, payload bytes and truncation are CORRUPTION', () => {
    const c = new Catalog();
    c.apply(reg('x'));
    const bytes = encodeCheckpoint(7, seqOf(7), c.snapshot());
    const back = decodeCheckpoint(bytes);
    expect(back.index).toBe(7);
    expect(back.seq).toEqual(seqOf(7));
    expect(Buffer.from(back.catalog.snapshot()).equals(Buffer.from(c.snapshot()))).toBe(true);
    const corrupt = (b: Uint8Array): boolean => {
      try {
        decodeCheckpoint(b);
        return false;
      } catch (e) {
        return isTesseraError(e, 'CORRUPTION');
      }
    };
    for (let i = 0; i < 48; i++) {
      const b = new Uint8Array(bytes);
      b[i] = (b[i] ?? 0) ^ 0x01;
      expect(corrupt(b), `header byte ${i}`).toBe(true);
    }
    for (let i = 48; i < bytes.length; i += 7) {
      const b = new Uint8Array(bytes);
      b[i] = (b[i] ?? 0) ^ 0x40;
      expect(corrupt(b), `payload byte ${i}`).toBe(true);
    }
    expect(corrupt(bytes.subarray(0, bytes.length - 1))).toBe(true);
    expect(corrupt(bytes.subarray(0, 20))).toBe(true);
  });

  it('refuses to open a corrupt checkpoint file', async () => {
    const file = join(tmp(), 'c.ckpt');
    const sm = await CatalogStateMachine.open(file);
    await sm.apply([entry(1, cmd(reg('a')))]);
    await sm.checkpoint();
    const b = readFileSync(file);
    b[60] = (b[60] ?? 0) ^ 0xff;
    writeFileSync(file, b);
    await expect(CatalogStateMachine.open(file)).rejects.toMatchObject({ code: 'CORRUPTION' });
  });

  it('snapshot then install on another replica gives the same catalog and position', async () => {
    const a = await CatalogStateMachine.open(join(tmp(), 'a.ckpt'));
    await a.apply([
      entry(1, cmd(reg('a'))),
      entry(
        2,
        cmd({
          type: 'createToken',
          secretHash: sha('t'),
          readOnly: false,
          table: null,
          admin: true,
          atMs: 3,
        }),
      ),
    ]);
    const meta = {
      index: logIndex(2),
      term: term(1),
      membership: { voters: [], learners: [] },
      highestSeq: seqOf(2),
    };
    const chunks = await a.snapshot(meta);
    const b = await CatalogStateMachine.open(join(tmp(), 'b.ckpt'));
    const versions: number[] = [];
    b.onVersion((v) => versions.push(v));
    await b.install(meta, chunks);
    expect((await b.appliedPosition()).index).toBe(2);
    expect(b.catalog.tokenByHash(sha('t'))?.admin).toBe(true);
    expect(Buffer.from(b.catalog.snapshot()).equals(Buffer.from(a.catalog.snapshot()))).toBe(true);
    expect(versions).toEqual([a.catalog.version]);
  });

  it('a backup entry restores the catalog; version and next ids never go down', async () => {
    const sm = await CatalogStateMachine.open(join(tmp(), 'c.ckpt'));
    await sm.apply([entry(1, cmd(reg('a')))]);
    const backup = sm.catalog.backup(5);
    await sm.apply([entry(2, cmd(reg('b'))), entry(3, cmd(reg('c')))]);
    const before = sm.catalog.version;
    const [r] = await sm.apply([entry(4, backup)]);
    expect(r).toMatchObject({ kind: 'restore', ok: true });
    expect(sm.catalog.version).toBeGreaterThan(before);
    expect(sm.catalog.state.nodes.size).toBe(1);
    const [next] = await sm.apply([entry(5, cmd(reg('d')))]);
    expect(next).toMatchObject({ result: { ok: true, value: { node: limits.mmNodeIdMax + 4 } } });
    const bad = new Uint8Array(backup);
    bad[45] = (bad[45] ?? 0) ^ 0xff;
    const [refused] = await sm.apply([entry(6, bad)]);
    expect(refused).toMatchObject({ kind: 'restore', ok: false, code: 'CORRUPTION' });
    expect(sm.catalog.state.nodes.size).toBe(2);
  });
});

describe('MM RPC codec v1', () => {
  it('round trips requests and responses and refuses malformed ones with BAD_REQUEST', () => {
    const hb = {
      node: 16,
      pid: 3,
      address: 'h:1',
      diskOk: true,
      replicas: [
        { group: 1, term: 2, role: 'leader', leader: 16, lastIndex: 5, lastTerm: 2, commit: 5, applied: 5 },
      ],
    };
    expect(decodeMmRequest('heartbeat', encodeMm(hb))).toEqual({ ...hb, stalled: false });
    expect(decodeMmResponse('catalog', encodeMm({ version: 3, view: null }))).toEqual({
      version: 3,
      view: null,
    });
    const bad = (call: Parameters<typeof decodeMmRequest>[0], payload: Uint8Array): string | undefined => {
      try {
        decodeMmRequest(call, payload);
        return undefined;
      } catch (e) {
        return isTesseraError(e) ? e.code : 'not a TesseraError';
      }
    };
    expect(bad('heartbeat', encodeMm({ ...hb, replicas: [{ group: -1 }] }))).toBe('BAD_REQUEST');
    expect(bad('heartbeat', encodeMm({ ...hb, diskOk: 'yes' }))).toBe('BAD_REQUEST');
    expect(
      bad(
        'register',
        encodeMm({
          role: 'metadata',
          nodeKey: 'k',
          address: 'a',
          pid: 1,
          capacity: { replicasMax: 1, diskBytes: 0 },
        }),
      ),
    ).toBe('BAD_REQUEST');
    expect(bad('tokens', encodeMm({ op: 'create', hash: 'short', role: 'admin', table: null }))).toBe(
      'BAD_REQUEST',
    );
    expect(bad('tokens', encodeMm({ op: 'explode' }))).toBe('BAD_REQUEST');
    expect(bad('catalog', new Uint8Array([0xc1]))).toBe('BAD_REQUEST');
    expect(bad('catalog', new Uint8Array([0x81, 0xa1, 0x76, 0x02]))).toBe('BAD_REQUEST'); // {v: 2}
  });
});

describe('writeFileAtomic', () => {
  it('a failed file operation is an operating error (UNAVAILABLE here, DISK_FULL for ENOSPC), not a crash', async () => {
    const e = await writeFileAtomic('/no/such/dir/catalog.ckpt', new Uint8Array(4)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isTesseraError(e, 'UNAVAILABLE')).toBe(true);
    expect((e as Error).message).toMatch(/^writing catalog\.ckpt: ENOENT/);
  });
});
