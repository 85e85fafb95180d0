/**
 * The cluster secret: 32 random bytes created once at bootstrap and shared by every member. Members
 * prove knowledge of it in the handshake (handshake.ts); it never travels on the wire.
 *
 * File format, version 1 (one line of text, mode 0600):
 *   tessera-cluster-secret v1 <64 lowercase hex characters>\n
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { TesseraError } from '../lib/errors.js';

export const clusterSecretBytes = 32;
const header = 'tessera-cluster-secret v1 ';

/** Creates a new secret file (fails if `path` exists) with mode 0600 and returns the secret. */
export function createClusterSecret(path: string): Uint8Array {
  const secret = new Uint8Array(randomBytes(clusterSecretBytes));
  writeFileSync(path, `${header}${Buffer.from(secret).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

/** Loads a secret file; refuses a file readable by group or others, or one not in format v1. */
export function loadClusterSecret(path: string): Uint8Array {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new TesseraError(
      'FORBIDDEN',
      `cluster secret ${path} has mode 0${mode.toString(8)}; it must be 0600 (chmod 600 ${path})`,
    );
  }
  const text = readFileSync(path, 'utf8');
  const m = /^tessera-cluster-secret v1 ([0-9a-f]{64})\n?$/.exec(text);
  if (m === null) throw new TesseraError('CORRUPTION', `cluster secret ${path} is not in format v1`);
  return new Uint8Array(Buffer.from(m[1] as string, 'hex'));
}

/** Loads the secret at `path`, creating it first if the file does not exist. */
export function loadOrCreateClusterSecret(path: string): Uint8Array {
  try {
    return createClusterSecret(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return loadClusterSecret(path);
  }
}
