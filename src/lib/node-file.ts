/**
 * DIR/node.json, format version 1: a node's stable key (sent to the MM when it registers) and, once
 * registered, its never-reused node id. Written atomically (temp file + rename), mode 0600. Shared by
 * storage nodes and request managers.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TesseraError } from './errors.js';

export interface NodeFile {
  version: 1;
  node: number | null;
  key: string;
  /** Set when the MM said this node was removed: it never starts again under this id. */
  removed?: boolean;
}

/** Reads DIR/node.json, or creates it with a fresh key; CORRUPTION if it is not format v1. */
export function loadNodeFile(dir: string): NodeFile {
  const file = path.join(dir, 'node.json');
  if (existsSync(file)) {
    const j = JSON.parse(readFileSync(file, 'utf8')) as NodeFile;
    if (j.version !== 1 || typeof j.key !== 'string')
      throw new TesseraError('CORRUPTION', `${file}: not format v1`);
    return j;
  }
  const fresh: NodeFile = { version: 1, node: null, key: randomBytes(16).toString('hex') };
  saveNodeFile(dir, fresh);
  return fresh;
}

export function saveNodeFile(dir: string, f: NodeFile): void {
  const file = path.join(dir, 'node.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(f)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}
