/** File-system figures. */
import { statfs } from 'node:fs/promises';

/** Bytes free for unprivileged writers on `dir`'s file system (Infinity if it cannot be read). */
export async function freeBytes(dir: string): Promise<number> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
