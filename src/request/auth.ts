/**
 * Bearer tokens. A token is `tess_` + 43 base64url characters (32 random bytes); the catalog keeps
 * only its SHA-256 (TokenRecord.hash), its public id, its role and its optional table scope.
 *   admin       everything: tables (create/drop), tokens, metadata backup/restore, data
 *   read-write  read and write items, list/describe tables, cluster view
 *   read-only   read items, scan, list/describe tables, cluster view
 * A token with a table scope sees and touches only that table.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TesseraError } from '../lib/errors.js';
import type { TokenRecord, TokenRole } from './backend.js';

/** What a route needs: public (no token), read, write or admin. */
export type Access = 'public' | 'read' | 'write' | 'admin';

export interface Principal {
  id: string;
  role: TokenRole;
  table: string | null;
}

const tokenRe = /^tess_[A-Za-z0-9_-]{43}$/;
export const tokenIdRe = /^[0-9a-f]{16}$/;

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A fresh token: the secret (shown once) and the record to store. */
export function newToken(
  role: TokenRole,
  table: string | null,
  now: Date = new Date(),
): { secret: string; record: TokenRecord } {
  const secret = `tess_${randomBytes(32).toString('base64url')}`;
  const record: TokenRecord = {
    id: randomBytes(8).toString('hex'),
    hash: hashToken(secret),
    role,
    table,
    createdAt: now.toISOString(),
  };
  return { secret, record };
}

/** The token of an `Authorization: Bearer <token>` header; UNAUTHORIZED when absent or malformed. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined) throw new TesseraError('UNAUTHORIZED', 'missing Authorization: Bearer <token>');
  const m = /^Bearer +(\S+) *$/i.exec(header);
  if (m === null || m[1] === undefined)
    throw new TesseraError('UNAUTHORIZED', 'expected Authorization: Bearer <token>');
  if (!tokenRe.test(m[1])) throw new TesseraError('UNAUTHORIZED', 'invalid token');
  return m[1];
}

/** FORBIDDEN unless the principal may do `access` on `table` (null: not about one table). */
export function authorize(p: Principal, access: Access, table: string | null): void {
  if (access === 'public' || p.role === 'admin') return;
  if (access === 'admin') throw new TesseraError('FORBIDDEN', 'this operation needs an admin token');
  if (access === 'write' && p.role === 'read-only')
    throw new TesseraError('FORBIDDEN', 'this token is read-only');
  if (p.table !== null && table !== null && p.table !== table)
    throw new TesseraError('FORBIDDEN', `this token is limited to table ${p.table}`);
}

/** Whether a principal may see a table in listings (scoped tokens see only their table). */
export function canSeeTable(p: Principal | null, table: string): boolean {
  return p === null || p.table === null || p.role === 'admin' || p.table === table;
}
