/**
 * The engines' input checks (keys, values, seqs, keyspaces, groups, writes, meta records), the
 * mapping of disk-full failures to DISK_FULL, and the ENGINE mark of an instance's directory.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { formatVersion, seqBytes, tombstoneBit } from './keys.js';
import type { EngineKind, EngineWrite, KeyspaceId, MetaWrite } from './types.js';
import { keyspaceIdMax } from './types.js';

export function checkKey(key: Uint8Array): void {
  assert(key instanceof Uint8Array, 'key must be a Uint8Array');
  if (key.length === 0) throw new TesseraError('KEY_EMPTY', 'a key must be at least 1 byte long');
  if (key.length > limits.keyBytesMax) {
    throw new TesseraError('KEY_TOO_LARGE', `key is ${key.length} bytes; at most ${limits.keyBytesMax}`);
  }
}

export function checkValue(value: Uint8Array): void {
  assert(value instanceof Uint8Array, 'value must be a Uint8Array');
  if (value.length > limits.valueBytesMax) {
    throw new TesseraError(
      'VALUE_TOO_LARGE',
      `value is ${value.length} bytes; at most ${limits.valueBytesMax}`,
    );
  }
}

export function checkSeq(seq: Seq): void {
  assert(seq instanceof Uint8Array && seq.length === seqBytes, 'a seq is 16 bytes');
  assert(((seq[0] as number) & tombstoneBit) === 0, 'a seq has its top bit clear');
}

export function checkKeyspace(ks: KeyspaceId): void {
  assert(Number.isInteger(ks) && ks >= 0 && ks <= keyspaceIdMax, `bad keyspace ${ks}`);
}

export function checkGroup(group: GroupId): void {
  assert(Number.isInteger(group) && group >= 0 && group <= 0xffff_ffff, `bad group ${group}`);
}

/** Maps "disk full" failures of either library to DISK_FULL; everything else passes through. */
export function mapIoError(e: unknown): unknown {
  const msg = e instanceof Error ? `${e.message} ${(e as { code?: string }).code ?? ''}` : String(e);
  if (/ENOSPC|No space left|MDB_MAP_FULL|disk full/i.test(msg)) {
    return new TesseraError(
      'DISK_FULL',
      msg.startsWith('index engine') ? msg.trim() : `index engine: ${msg}`,
    );
  }
  return e;
}

/**
 * Marks `dir` as holding an instance of `kind` (file ENGINE: "tessera-<kind> v<format>"), or checks
 * the mark: opening a directory of the other kind (or a newer format) is refused, never reformatted.
 */
export async function claimDir(dir: string, kind: EngineKind): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'ENGINE');
  const want = `tessera-${kind} v${formatVersion}\n`;
  const have = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (have === undefined) await writeFile(path, want, { flag: 'wx' });
  else if (have !== want) {
    throw new TesseraError('CORRUPTION', `${dir} holds "${have.trim()}", not "${want.trim()}"`);
  }
}

export function checkWrite(w: EngineWrite): void {
  checkKeyspace(w.keyspace);
  checkKey(w.key);
  checkSeq(w.seq);
  if (w.type === 'put') checkValue(w.value);
  else assert(w.type === 'delete', 'write type');
}

export function checkMeta(m: MetaWrite): void {
  assert(m.key.length >= 1 && m.key.length <= limits.engineMetaKeyBytesMax, 'bad meta key');
  assert(m.value === undefined || m.value.length <= limits.engineMetaValueBytesMax, 'meta value too large');
}
