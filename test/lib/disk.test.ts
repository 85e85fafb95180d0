import { closeSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { freeBytes, fsFailure } from '../../src/lib/disk.js';
import { isTesseraError } from '../../src/lib/errors.js';

function thrown(f: () => void): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

describe('fsFailure', () => {
  it('a real ENOSPC (a write to /dev/full) is DISK_FULL, with what failed in the message', () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const e = fsFailure(
        thrown(() => writeSync(fd, 'x')),
        'writing group descriptor 3',
      );
      expect(isTesseraError(e, 'DISK_FULL')).toBe(true);
      expect((e as Error).message).toMatch(/^writing group descriptor 3: ENOSPC/);
    } finally {
      closeSync(fd);
    }
  });

  it('another errno (EISDIR) is UNAVAILABLE; an error without one (a bug) passes through', () => {
    const e = fsFailure(
      thrown(() => openSync(tmpdir(), 'w')),
      'x',
    );
    expect(isTesseraError(e, 'UNAVAILABLE')).toBe(true);
    const bug = new TypeError('not a file error');
    expect(fsFailure(bug, 'x')).toBe(bug);
  });
});

describe('freeBytes', () => {
  it("reads the file system's free space, Infinity for a path that does not exist", async () => {
    const free = await freeBytes(tmpdir());
    expect(free).toBeGreaterThan(0);
    expect(Number.isFinite(free)).toBe(true);
    expect(await freeBytes('/no/such/dir/here')).toBe(Number.POSITIVE_INFINITY);
  });
});
