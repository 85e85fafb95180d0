import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createClusterSecret,
  loadClusterSecret,
  loadOrCreateClusterSecret,
} from '../../src/transport/secret.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-secret-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster secret file', () => {
  it('is created with mode 0600, 32 random bytes, and loads back', () => {
    const path = join(dir, 'cluster.secret');
    const s = createClusterSecret(path);
    expect(s.length).toBe(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(Buffer.compare(loadClusterSecret(path), s)).toBe(0);
    expect(Buffer.compare(loadOrCreateClusterSecret(path), s)).toBe(0);
    expect(() => createClusterSecret(path)).toThrow(/EEXIST/);
    const other = createClusterSecret(join(dir, 'other.secret'));
    expect(Buffer.compare(other, s)).not.toBe(0);
  });

  it('refuses a file readable by others, or not in format v1', () => {
    const path = join(dir, 'open.secret');
    createClusterSecret(path);
    chmodSync(path, 0o644);
    expect(() => loadClusterSecret(path)).toThrowError(expect.objectContaining({ code: 'FORBIDDEN' }));
    const bad = join(dir, 'bad.secret');
    writeFileSync(bad, 'tessera-cluster-secret v2 00\n', { mode: 0o600 });
    expect(() => loadClusterSecret(bad)).toThrowError(expect.objectContaining({ code: 'CORRUPTION' }));
  });
});
