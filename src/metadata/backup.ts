/**
 * Backup file format for `tessera metadata backup FILE` / `restore FILE`, version 1. A fixed
 * 40-byte header, then the catalog snapshot (snapshot.ts) as the payload. Big-endian integers.
 *
 *   off size field
 *    0   8   magic "TSRCATBK"
 *    8   2   backup format version (1)
 *   10   2   reserved, 0
 *   12   4   payload length in bytes
 *   16   8   catalog version of the snapshot
 *   24   8   createdAtMs (wall time, given by the caller)
 *   32   4   CRC-32 of the payload
 *   36   4   CRC-32 of bytes 0..35
 *   40   -   payload: catalog snapshot bytes
 *
 * decodeBackup refuses anything that does not check out (magic, version, lengths, both CRCs,
 * trailing bytes) with CORRUPTION; the payload is then decoded and checked by decodeSnapshot.
 */
import { assert } from '../lib/assert.js';
import { crc32 } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

export const backupMagic = 'TSRCATBK';
export const backupFormatVersion = 1;
export const backupHeaderBytes = 40;

export interface BackupContents {
  readonly catalogVersion: number;
  readonly createdAtMs: number;
  readonly snapshot: Uint8Array;
}

export function encodeBackup(b: BackupContents): Uint8Array {
  assert(b.snapshot.length <= limits.catalogSnapshotBytesMax, 'snapshot too large for a backup');
  assert(Number.isSafeInteger(b.catalogVersion) && b.catalogVersion >= 0, 'catalog version');
  assert(Number.isSafeInteger(b.createdAtMs) && b.createdAtMs >= 0, 'createdAtMs');
  const out = new Uint8Array(backupHeaderBytes + b.snapshot.length);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(backupMagic), 0);
  view.setUint16(8, backupFormatVersion);
  view.setUint16(10, 0);
  view.setUint32(12, b.snapshot.length);
  view.setBigUint64(16, BigInt(b.catalogVersion));
  view.setBigUint64(24, BigInt(b.createdAtMs));
  view.setUint32(32, crc32(b.snapshot));
  view.setUint32(36, crc32(out.subarray(0, 36)));
  out.set(b.snapshot, backupHeaderBytes);
  return out;
}

function corrupt(message: string): never {
  throw new TesseraError('CORRUPTION', `catalog backup: ${message}`);
}

export function decodeBackup(bytes: Uint8Array): BackupContents {
  if (bytes.length < backupHeaderBytes) corrupt(`too short (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== backupMagic) corrupt('not a Tessera catalog backup (bad magic)');
  if (view.getUint32(36) !== crc32(bytes.subarray(0, 36))) corrupt('header checksum mismatch');
  const version = view.getUint16(8);
  if (version !== backupFormatVersion) corrupt(`unsupported backup format version ${version}`);
  if (view.getUint16(10) !== 0) corrupt('reserved field is not zero');
  const length = view.getUint32(12);
  if (length > limits.catalogSnapshotBytesMax) corrupt('payload too large');
  if (bytes.length !== backupHeaderBytes + length) {
    corrupt(
      `length mismatch: header says ${length} payload bytes, file has ${bytes.length - backupHeaderBytes}`,
    );
  }
  const catalogVersion = view.getBigUint64(16);
  const createdAtMs = view.getBigUint64(24);
  if (catalogVersion > BigInt(Number.MAX_SAFE_INTEGER) || createdAtMs > BigInt(Number.MAX_SAFE_INTEGER)) {
    corrupt('header integers out of range');
  }
  const snapshot = bytes.slice(backupHeaderBytes);
  if (view.getUint32(32) !== crc32(snapshot)) corrupt('payload checksum mismatch');
  return { catalogVersion: Number(catalogVersion), createdAtMs: Number(createdAtMs), snapshot };
}
