/**
 * The catalog as the MM group's replicated state machine (the host's StateMachine over Catalog).
 *
 * Log entries of kind 'command' carry either a catalog command (command codec v1, JSON, first byte
 * '{') or a whole backup file (magic "TSRCATBK": mm.restore), which replaces the catalog. A restore
 * never lowers the catalog version nor any next-id counter, so ids stay never-reused and followers
 * of the version see the change.
 *
 * Durability: the catalog lives in memory; checkpoint() writes it to `file` atomically (temp file,
 * fsync, rename, fsync of the directory) together with the applied position, so a restart is the
 * file plus a replay of the log after it. The host compacts the log only below a durable checkpoint.
 *
 * Checkpoint file format, version 1 (big-endian), 48-byte header then the catalog snapshot v1:
 *   0 magic "TSRCATSM" | 8 u16 version 1 | 10 u16 reserved 0 | 12 u32 payload length |
 *   16 u64 applied index | 24 16-byte highest seq | 40 u32 CRC-32 of the payload |
 *   44 u32 CRC-32 of bytes 0..43 | 48 payload (snapshot v1, snapshot.ts)
 * The same bytes are the chunks of a snapshot sent to a follower.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Entry, SnapshotMeta } from '../consensus/types.js';
import type { AppliedPosition, StateMachine } from '../host/types.js';
import { fsFailure } from '../lib/disk.js';
import { assert } from '../lib/assert.js';
import { crc32 } from '../lib/bytes.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import { logIndex, type Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { ZERO_SEQ } from '../sequencer/index.js';
import { Catalog } from './catalog.js';
import { decodeCommand } from './command-codec.js';
import { emptyState } from './state.js';
import type { CatalogState, CommandResult } from './types.js';

export const checkpointFormatVersion = 1;
const magic = Buffer.from('TSRCATSM', 'latin1');
const backupMagic = Buffer.from('TSRCATBK', 'latin1');
const headerBytes = 48;

/** What applying one entry answers its proposer. null: a noop/config entry or a skipped replay. */
export type CatalogApplyResult =
  | { kind: 'command'; result: CommandResult }
  | { kind: 'restore'; ok: true; version: number }
  | { kind: 'restore'; ok: false; code: 'CORRUPTION' | 'BAD_REQUEST'; message: string }
  | null;

export function encodeCheckpoint(index: number, seq: Seq, snapshot: Uint8Array): Uint8Array {
  assert(seq.length === 16, 'seq is 16 bytes');
  const b = Buffer.alloc(headerBytes + snapshot.length);
  magic.copy(b, 0);
  b.writeUInt16BE(checkpointFormatVersion, 8);
  b.writeUInt16BE(0, 10);
  b.writeUInt32BE(snapshot.length, 12);
  b.writeBigUInt64BE(BigInt(index), 16);
  b.set(seq, 24);
  b.writeUInt32BE(crc32(snapshot), 40);
  b.writeUInt32BE(crc32(b.subarray(0, 44)), 44);
  b.set(snapshot, headerBytes);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function decodeCheckpoint(bytes: Uint8Array): { index: number; seq: Seq; catalog: Catalog } {
  const corrupt = (why: string): never => {
    throw new TesseraError('CORRUPTION', `catalog checkpoint: ${why}`);
  };
  if (bytes.length < headerBytes) corrupt('truncated header');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!b.subarray(0, 8).equals(magic)) corrupt('bad magic');
  if (b.readUInt32BE(44) !== crc32(b.subarray(0, 44))) corrupt('header CRC');
  if (b.readUInt16BE(8) !== checkpointFormatVersion || b.readUInt16BE(10) !== 0) corrupt('version');
  const len = b.readUInt32BE(12);
  if (b.length !== headerBytes + len) corrupt('length');
  const payload = b.subarray(headerBytes);
  if (crc32(payload) !== b.readUInt32BE(40)) corrupt('payload CRC');
  const index = Number(b.readBigUInt64BE(16));
  const seq = new Uint8Array(b.subarray(24, 40)) as Seq;
  return { index, seq, catalog: Catalog.restore(payload) };
}

export function isBackupEntry(data: Uint8Array): boolean {
  return data.length >= 8 && Buffer.from(data.buffer, data.byteOffset, 8).equals(backupMagic);
}

/**
 * Writes `data` to `file` atomically: temp file, fsync, rename, fsync of the directory. A failed
 * file operation is DISK_FULL / UNAVAILABLE (fsFailure): the host then logs a failed checkpoint
 * and goes on, where a plain error would end the process. The temp file of a failed write goes.
 */
export async function writeFileAtomic(file: string, data: Uint8Array): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeAtomically(file, tmp, data);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw fsFailure(e, `writing ${path.basename(file)}`);
  }
}

async function writeAtomically(file: string, tmp: string, data: Uint8Array): Promise<void> {
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Replaces `old` by a restored catalog: version and next ids never go down (never-reused ids). */
export function mergeRestored(old: Readonly<CatalogState>, restored: Catalog): Catalog {
  const s = restored.state as CatalogState;
  s.version = Math.max(s.version, old.version) + 1;
  for (const k of ['node', 'group', 'table', 'shard', 'token'] as const)
    s.next[k] = Math.max(s.next[k], old.next[k]);
  return new Catalog(s);
}

type VersionListener = (version: number) => void;

export class CatalogStateMachine implements StateMachine<CatalogApplyResult> {
  catalog: Catalog;
  private applied: AppliedPosition;
  private durable: AppliedPosition;
  private readonly listeners = new Set<VersionListener>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    catalog: Catalog,
    pos: AppliedPosition,
  ) {
    this.catalog = catalog;
    this.applied = pos;
    this.durable = pos;
  }

  /** Opens from `file` (the last checkpoint) or starts an empty catalog (node ids from 16). */
  static async open(file: string): Promise<CatalogStateMachine> {
    let bytes: Uint8Array | null = null;
    try {
      bytes = new Uint8Array(await fs.readFile(file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (bytes === null) {
      const empty = new Catalog(emptyState(limits.mmNodeIdMax + 1));
      return new CatalogStateMachine(file, empty, { index: logIndex(0), seq: ZERO_SEQ });
    }
    const c = decodeCheckpoint(bytes);
    return new CatalogStateMachine(file, c.catalog, { index: logIndex(c.index), seq: c.seq });
  }

  get appliedIndex(): number {
    return this.applied.index;
  }

  get durableIndex(): number {
    return this.durable.index;
  }

  /** Called after every catalog version change (long polls wait on it). */
  onVersion(listener: VersionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async appliedPosition(): Promise<AppliedPosition> {
    return this.durable;
  }

  async apply(entries: readonly Entry[]): Promise<readonly CatalogApplyResult[]> {
    const before = this.catalog.version;
    const out: CatalogApplyResult[] = [];
    for (const e of entries) {
      if (e.index <= this.applied.index) {
        out.push(null);
        continue;
      }
      assert(e.index === this.applied.index + 1, `catalog sm: gap before entry ${e.index}`);
      out.push(e.kind === 'command' ? this.applyCommand(e.data) : null);
      this.applied = { index: e.index, seq: e.seq };
    }
    if (this.catalog.version !== before) for (const l of this.listeners) l(this.catalog.version);
    return out;
  }

  private applyCommand(data: Uint8Array): CatalogApplyResult {
    if (isBackupEntry(data)) {
      try {
        this.catalog = mergeRestored(this.catalog.state, Catalog.restoreBackup(data));
        return { kind: 'restore', ok: true, version: this.catalog.version };
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        return { kind: 'restore', ok: false, code: 'CORRUPTION', message: e.message };
      }
    }
    let command: ReturnType<typeof decodeCommand>;
    try {
      command = decodeCommand(data);
    } catch (e) {
      if (!isTesseraError(e)) throw e;
      // The same bytes are refused identically on every replica.
      return {
        kind: 'command',
        result: { ok: false, version: this.catalog.version, code: 'BAD_REQUEST', message: e.message },
      };
    }
    return { kind: 'command', result: this.catalog.apply(command) };
  }

  async checkpoint(): Promise<AppliedPosition> {
    // One writer at a time; each write takes the state as of its start.
    const run = this.writing.then(async () => {
      const pos = this.applied;
      if (pos.index === this.durable.index) return;
      await writeFileAtomic(this.file, encodeCheckpoint(pos.index, pos.seq, this.catalog.snapshot()));
      this.durable = pos;
    });
    this.writing = run.catch(() => undefined);
    await run;
    return this.durable;
  }

  async snapshot(meta: SnapshotMeta): Promise<AsyncIterable<Uint8Array>> {
    assert(meta.index === this.applied.index, `snapshot at ${meta.index}, applied ${this.applied.index}`);
    const bytes = encodeCheckpoint(this.applied.index, this.applied.seq, this.catalog.snapshot());
    const chunk = limits.snapshotChunkBytes;
    return (async function* () {
      for (let o = 0; o < bytes.length; o += chunk)
        yield bytes.subarray(o, Math.min(bytes.length, o + chunk));
    })();
  }

  async install(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const c of chunks) {
      total += c.length;
      if (total > limits.catalogSnapshotBytesMax + headerBytes) {
        throw new TesseraError('CORRUPTION', 'catalog snapshot larger than catalogSnapshotBytesMax');
      }
      parts.push(c);
    }
    const bytes = new Uint8Array(Buffer.concat(parts));
    const c = decodeCheckpoint(bytes);
    assert(c.index === meta.index, `catalog snapshot at ${c.index}, meta says ${meta.index}`);
    await this.writing;
    await writeFileAtomic(this.file, bytes);
    this.catalog = c.catalog;
    this.applied = { index: meta.index, seq: meta.highestSeq };
    this.durable = this.applied;
    for (const l of this.listeners) l(this.catalog.version);
  }

  async close(): Promise<void> {
    await this.writing;
  }

  async destroy(): Promise<void> {
    await this.writing;
    await fs.rm(this.file, { force: true });
    this.catalog = new Catalog(emptyState(limits.mmNodeIdMax + 1));
    this.applied = { index: logIndex(0), seq: ZERO_SEQ };
    this.durable = this.applied;
  }
}
