/** Shared helpers for engine tests: temp dirs, seqs, writes. */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Engine,
  type EngineKind,
  type EngineWrite,
  type KeyspaceId,
  openEngine,
} from '../../src/engine/index.js';
import type { Seq } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
export const seq = (n: number, node = 1): Seq => makeSeq(BigInt(n), 0, node);

export const put = (
  keyspace: KeyspaceId,
  key: Uint8Array | string,
  value: Uint8Array | string,
  s: Seq,
): EngineWrite => ({
  type: 'put',
  keyspace,
  key: typeof key === 'string' ? enc(key) : key,
  value: typeof value === 'string' ? enc(value) : value,
  seq: s,
});

export const del = (keyspace: KeyspaceId, key: Uint8Array | string, s: Seq): EngineWrite => ({
  type: 'delete',
  keyspace,
  key: typeof key === 'string' ? enc(key) : key,
  seq: s,
});

/** Temp dirs and engines opened by a test file, removed by cleanup(). */
export class Scratch {
  private readonly dirs: string[] = [];
  private readonly engines: Engine[] = [];

  async dir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'tessera-engine-'));
    this.dirs.push(d);
    return d;
  }

  async open(kind: EngineKind, dir?: string): Promise<Engine> {
    const e = await openEngine(kind, dir ?? (await this.dir()));
    this.engines.push(e);
    return e;
  }

  async cleanup(): Promise<void> {
    for (const e of this.engines.splice(0)) await e.close();
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true });
  }
}

export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    const s = await stat(join(dir, name));
    total += s.isDirectory() ? await dirBytes(join(dir, name)) : s.size;
  }
  return total;
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

export async function* replay(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

/**
 * A failed commit as lmdb-js reports it: a rejection whose `commitError` promise rejects with the
 * LMDB or system error (`code` its errno). Nothing of the transaction is written.
 */
export function lmdbCommitFailure(message: string, code: number): Promise<never> {
  const commitError = Promise.reject(Object.assign(new Error(message), { code }));
  commitError.catch(() => undefined);
  return Promise.reject(
    Object.assign(new Error('Commit failed (see commitError for details)'), { commitError }),
  );
}
