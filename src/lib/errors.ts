/**
 * Operating errors with stable codes (fastify / undici style). Users match on `code`, never on the
 * message. Every code is registered here with its HTTP status and documented in docs/errors.md; a
 * test checks that the two agree. Programmer errors are assertions (assert.ts), never these.
 */

export const errorCodes = {
  // 400 bad input
  BAD_REQUEST: { status: 400, summary: 'The request is malformed (bad JSON, bad header, bad parameter).' },
  INVALID_TABLE_NAME: { status: 400, summary: 'Table names are 1-64 characters of [A-Za-z0-9_.-].' },
  INVALID_ENGINE: { status: 400, summary: 'The engine must be "btree" or "lsm".' },
  KEY_EMPTY: { status: 400, summary: 'A key must be at least 1 byte long.' },
  INVALID_SEQ: { status: 400, summary: 'A sequence id is 32 lowercase hex characters.' },
  // 401 / 403
  UNAUTHORIZED: { status: 401, summary: 'No bearer token, or the token is not valid.' },
  FORBIDDEN: { status: 403, summary: 'The token does not allow this operation or table.' },
  BAD_REQUEST_MANAGER: {
    status: 403,
    summary:
      'A storage node refused a request manager that is not a member or whose view of the shard is stale.',
  },
  // 404
  NOT_FOUND: { status: 404, summary: 'No such route.' },
  TABLE_NOT_FOUND: { status: 404, summary: 'The table does not exist.' },
  KEY_NOT_FOUND: { status: 404, summary: 'The key does not exist in the table.' },
  TOKEN_NOT_FOUND: { status: 404, summary: 'No token with this id.' },
  NODE_NOT_FOUND: { status: 404, summary: 'No node with this id in the catalog.' },
  GROUP_NOT_FOUND: { status: 404, summary: 'No replication group with this id in the catalog.' },
  SHARD_NOT_FOUND: { status: 404, summary: 'No shard with this id in the catalog.' },
  // 405
  METHOD_NOT_ALLOWED: { status: 405, summary: 'The route does not accept this HTTP method.' },
  // 409
  TABLE_EXISTS: { status: 409, summary: 'A table with this name already exists.' },
  NODE_REMOVED: { status: 409, summary: 'The node was removed from the cluster; its id is never reused.' },
  STALE_TERM: { status: 409, summary: 'The term is below the one the catalog already holds for the group.' },
  MEMBERSHIP_CONFLICT: {
    status: 409,
    summary: 'The membership change does not fit the group or node as it is now.',
  },
  // 412
  CONDITION_FAILED: { status: 412, summary: 'If-Match / If-None-Match did not hold; nothing was written.' },
  // 413
  KEY_TOO_LARGE: { status: 413, summary: 'A key is at most 1,024 bytes.' },
  VALUE_TOO_LARGE: { status: 413, summary: 'A value is at most 1 MiB (1,048,576 bytes).' },
  BODY_TOO_LARGE: { status: 413, summary: 'The request body exceeds its limit.' },
  RECORD_TOO_LARGE: { status: 413, summary: 'A log record exceeds the record size limit.' },
  FRAME_TOO_LARGE: { status: 413, summary: 'A network frame exceeds the frame size limit.' },
  // 408 / 431: the HTTP server refused a request it could not parse in time or in size
  REQUEST_TIMEOUT: { status: 408, summary: 'The client did not send the whole request in time.' },
  HEADERS_TOO_LARGE: { status: 431, summary: 'The request headers are too large or too many.' },
  // 429 / 503 / 504 / 507
  TOO_MANY_REQUESTS: { status: 429, summary: 'Too many requests in flight; retry after a short pause.' },
  SEND_QUEUE_FULL: {
    status: 503,
    summary: 'The send queue to a cluster member is full; retry after it drains.',
  },
  NOT_LEADER: {
    status: 503,
    summary: 'This replica is not the leader of its group (a leader hint may follow).',
  },
  STALE_SHARD: {
    status: 503,
    summary: 'The shard epoch in the request is not the current one; refresh the catalog.',
  },
  NO_SPARE_NODE: { status: 503, summary: 'The free pool has no spare node.' },
  UNAVAILABLE: {
    status: 503,
    summary: 'The service cannot serve this request now (no leader, no quorum, shutting down).',
  },
  TIMEOUT: {
    status: 503,
    summary: 'The request did not complete before its deadline; a read can be retried.',
  },
  OUTCOME_UNKNOWN: {
    status: 504,
    summary: 'A write may or may not have been applied; read the key to learn.',
  },
  DISK_FULL: { status: 507, summary: 'The disk is full: writes are refused, reads are still served.' },
  // 500: corrupt data on disk or a bug; never silently ignored
  CORRUPTION: { status: 500, summary: 'Stored data failed a checksum or format check.' },
  INTERNAL: { status: 500, summary: 'An unexpected internal error.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof errorCodes;

export class TesseraError extends Error {
  override name = 'TesseraError';
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra machine-readable detail (e.g. a leader hint), safe to show to clients. */
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.status = errorCodes[code].status;
    this.detail = detail;
  }

  toJSON(): { error: { code: ErrorCode; message: string } & Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...(this.detail ?? {}) } };
  }
}

export function isTesseraError(e: unknown, code?: ErrorCode): e is TesseraError {
  return e instanceof TesseraError && (code === undefined || e.code === code);
}
