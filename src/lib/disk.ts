/** File-system figures. */
import { statfs } from 'node:fs/promises';
import { TesseraError } from './errors.js';

/** Bytes free for unprivileged writers on `dir`'s file system (Infinity if it cannot be read). */
export async function freeBytes(dir: string): Promise<number> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * A failed file operation as an operating error: ENOSPC / EDQUOT are DISK_FULL, any other errno
 * (EIO, EROFS, ...) UNAVAILABLE, with `what` and the code in the message. Anything that is not an
 * errno error (a bug) is returned as it is.
 */
export function fsFailure(e: unknown, what: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (!(e instanceof Error) || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new TesseraError(full ? 'DISK_FULL' : 'UNAVAILABLE', `${what}: ${e.message}`);
}
