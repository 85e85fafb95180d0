/**
 * The file operations the log uses, behind an interface so tests can inject faults (ENOSPC, lost
 * fsyncs). The default implementation wraps node:fs callbacks (cheaper than fs/promises FileHandles).
 */
import fs from 'node:fs';

export interface LogIo {
  openForAppend(path: string, create: boolean): Promise<number>;
  /** Writes all of `data` at `position`. */
  write(fd: number, data: Buffer, position: number): Promise<void>;
  /** Reads up to `length` bytes at `position`; returns the bytes read. */
  read(fd: number, length: number, position: number): Promise<Buffer>;
  fdatasync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  close(fd: number): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdirp(dir: string): Promise<void>;
  unlink(path: string): Promise<void>;
  fsyncDir(dir: string): Promise<void>;
}

function cb<T>(run: (done: (err: NodeJS.ErrnoException | null, v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => run((err, v) => (err ? reject(err) : resolve(v))));
}

/**
 * Synchronous: a write lands in the page cache (the fdatasync that follows is what waits for the
 * disk, in the thread pool), and a thread-pool round trip per batch cost more than the copy.
 */
async function writeAll(fd: number, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done, position + done);
  }
}

async function readUpTo(fd: number, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = await cb<number>((d) => fs.read(fd, buf, done, length - done, position + done, d));
    if (n === 0) break;
    done += n;
  }
  return done === length ? buf : buf.subarray(0, done);
}

export const nodeIo: LogIo = {
  openForAppend: (path, create) => cb<number>((d) => fs.open(path, create ? 'wx+' : 'r+', 0o644, d)),
  write: writeAll,
  read: readUpTo,
  fdatasync: (fd) => cb<void>((d) => fs.fdatasync(fd, (e) => d(e, undefined))),
  ftruncate: (fd, length) => cb<void>((d) => fs.ftruncate(fd, length, (e) => d(e, undefined))),
  close: (fd) => cb<void>((d) => fs.close(fd, (e) => d(e, undefined))),
  readdir: (dir) => fs.promises.readdir(dir),
  mkdirp: async (dir) => {
    await fs.promises.mkdir(dir, { recursive: true });
  },
  unlink: (path) => fs.promises.unlink(path),
  fsyncDir: async (dir) => {
    const fd = await cb<number>((d) => fs.open(dir, 'r', d));
    try {
      await cb<void>((d) => fs.fsync(fd, (e) => d(e, undefined)));
    } finally {
      await cb<void>((d) => fs.close(fd, (e) => d(e, undefined)));
    }
  },
};
