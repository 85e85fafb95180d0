/** The handlers of the HTTP API routes: validate the body and query, call the backend, format. */
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { bytesEqual } from '../lib/bytes.js';
import { keyToJson, percentDecodeBytes, prefixEnd } from '../lib/urlbytes.js';
import { canSeeTable, newToken, type Principal, tokenIdRe } from './auth.js';
import {
  type Engine,
  engines,
  type RequestBackend,
  type RequestId,
  type ScanPage,
  type TokenRole,
  tokenRoles,
} from './backend.js';
import {
  type ApiResponse,
  checkTableName,
  clusterJson,
  type Headers,
  json,
  onlyFields,
  parseJsonObject,
  queryParams,
  readCondition,
  seqHex,
  tableJson,
  writeCondition,
} from './format.js';

export interface Ctx {
  backend: RequestBackend;
  principal: Principal | null;
  table: string;
  key: Uint8Array;
  tokenId: string;
  query: string;
  headers: Headers;
  requestId: () => RequestId;
}

export type Handler = (ctx: Ctx, body: Uint8Array) => Promise<ApiResponse>;

const quoted = (s: string): string => `"${s}"`;

export const health: Handler = async (ctx) => {
  const h = await ctx.backend.health();
  if (!h.ok) throw new TesseraError('UNAVAILABLE', h.reason ?? 'not ready');
  return json(200, { status: 'ok' });
};

export const listTables: Handler = async (ctx) => {
  const tables = await ctx.backend.listTables();
  const visible = tables.filter((t) => canSeeTable(ctx.principal, t.name));
  return json(200, { tables: visible.map((t) => ({ name: t.name, engine: t.engine })) });
};

export const createTable: Handler = async (ctx, body) => {
  const req = parseJsonObject(body, true);
  onlyFields(req, ['engine']);
  // Only a missing engine means the default: `"engine": null` is refused like any other bad value.
  const engine = req.engine === undefined ? 'btree' : req.engine;
  if (typeof engine !== 'string' || !engines.includes(engine as Engine))
    throw new TesseraError('INVALID_ENGINE', 'the engine must be "btree" or "lsm"');
  const t = await ctx.backend.createTable(ctx.table, engine as Engine);
  return json(201, tableJson(t), { location: `/v1/tables/${ctx.table}` });
};

export const describeTable: Handler = async (ctx) =>
  json(200, tableJson(await ctx.backend.describeTable(ctx.table)));

export const dropTable: Handler = async (ctx) => {
  await ctx.backend.dropTable(ctx.table);
  return json(200, { dropped: ctx.table });
};

export const putItem: Handler = async (ctx, body) => {
  if (body.length > limits.valueBytesMax)
    throw new TesseraError('VALUE_TOO_LARGE', `a value is at most ${limits.valueBytesMax} bytes`);
  const condition = writeCondition(ctx.headers, true);
  const seq = await ctx.backend.put(ctx.table, ctx.key, body, { condition, requestId: ctx.requestId() });
  const hex = seqHex(seq);
  return json(200, { seq: hex }, { etag: quoted(hex) });
};

export const getItem: Handler = async (ctx) => {
  const ifMatch = readCondition(ctx.headers, 'if-match');
  const ifNoneMatch = readCondition(ctx.headers, 'if-none-match');
  const item = await ctx.backend.get(ctx.table, ctx.key);
  const matches = (tags: (Uint8Array | null)[]): boolean =>
    item !== null && tags.some((t) => t === null || bytesEqual(t, item.seq));
  if (ifMatch !== undefined && !matches(ifMatch))
    throw new TesseraError('CONDITION_FAILED', 'If-Match did not hold');
  if (item === null) throw new TesseraError('KEY_NOT_FOUND', 'no such key');
  const hex = seqHex(item.seq);
  if (ifNoneMatch !== undefined && matches(ifNoneMatch))
    return { status: 304, headers: { etag: quoted(hex) }, body: '' } satisfies ApiResponse;
  const res: ApiResponse = {
    status: 200,
    headers: { 'content-type': 'application/octet-stream', etag: quoted(hex) },
    body: item.value,
  };
  return res;
};

export const deleteItem: Handler = async (ctx) => {
  const condition = writeCondition(ctx.headers, false);
  const seq = await ctx.backend.delete(ctx.table, ctx.key, { condition, requestId: ctx.requestId() });
  const hex = seqHex(seq);
  return json(200, { seq: hex }, { etag: quoted(hex) });
};

function scanLimit(s: string | undefined): number {
  if (s === undefined) return limits.scanLimitDefault;
  if (!/^[0-9]{1,6}$/.test(s) || Number(s) < 1 || Number(s) > limits.scanLimitMax)
    throw new TesseraError('BAD_REQUEST', `limit must be an integer from 1 to ${limits.scanLimitMax}`);
  return Number(s);
}

const maxBytes = (a: Uint8Array, b: Uint8Array): Uint8Array => (Buffer.compare(a, b) >= 0 ? a : b);

/** start/end/prefix folded into one range [start, end). */
function scanRange(q: Map<string, string>): { start: Uint8Array; end: Uint8Array | null } {
  const bound = (name: string): Uint8Array | undefined => {
    const v = q.get(name);
    return v === undefined ? undefined : percentDecodeBytes(v, name);
  };
  const prefix = bound('prefix') ?? new Uint8Array(0);
  let start = maxBytes(bound('start') ?? new Uint8Array(0), prefix);
  let end = bound('end') ?? null;
  if (end !== null && end.length === 0) end = null;
  const pEnd = prefix.length === 0 ? null : prefixEnd(prefix);
  if (pEnd !== null && (end === null || Buffer.compare(pEnd, end) < 0)) end = pEnd;
  if (end !== null && Buffer.compare(start, end) > 0) start = end;
  return { start, end };
}

export const scan: Handler = async (ctx) => {
  const q = queryParams(ctx.query, ['prefix', 'start', 'end', 'limit']);
  const limit = scanLimit(q.get('limit'));
  const { start, end } = scanRange(q);
  const empty = end !== null && Buffer.compare(start, end) >= 0;
  if (empty) await ctx.backend.describeTable(ctx.table); // still 404 for a missing table
  const page: ScanPage = empty
    ? { items: [], next: null }
    : await ctx.backend.scan(ctx.table, { start, end, limit, bytesMax: limits.scanBytesMax });
  const items = page.items.map((it) => {
    const k = keyToJson(it.key);
    return {
      key: k.text,
      key_b64: k.b64,
      value: Buffer.from(it.value).toString('base64'),
      seq: seqHex(it.seq),
    };
  });
  const next = page.next === null ? null : keyToJson(page.next);
  return json(200, { items, next: next?.text ?? null, next_b64: next?.b64 ?? null });
};

export const cluster: Handler = async (ctx) =>
  json(
    200,
    clusterJson(await ctx.backend.cluster(), (t) => canSeeTable(ctx.principal, t)),
  );

export const createToken: Handler = async (ctx, body) => {
  const req = parseJsonObject(body, true);
  onlyFields(req, ['role', 'table']);
  const role = req.role ?? 'read-write';
  if (typeof role !== 'string' || !tokenRoles.includes(role as TokenRole))
    throw new TesseraError('BAD_REQUEST', 'role must be "admin", "read-write" or "read-only"');
  const table = req.table === undefined || req.table === null ? null : checkTableName(req.table);
  const existing = await ctx.backend.listTokens();
  if (existing.length >= limits.tokenRecordsMax)
    throw new TesseraError('BAD_REQUEST', `at most ${limits.tokenRecordsMax} tokens; revoke some first`);
  const { secret, record: asked } = newToken(role as TokenRole, table);
  const record = (await ctx.backend.createToken(asked)) ?? asked;
  return json(201, { id: record.id, token: secret, role: record.role, table, created_at: record.createdAt });
};

export const listTokens: Handler = async (ctx) => {
  const tokens = await ctx.backend.listTokens();
  return json(200, {
    tokens: tokens.map((t) => ({ id: t.id, role: t.role, table: t.table, created_at: t.createdAt })),
  });
};

export const revokeToken: Handler = async (ctx) => {
  if (!tokenIdRe.test(ctx.tokenId)) throw new TesseraError('TOKEN_NOT_FOUND', 'no token with this id');
  await ctx.backend.revokeToken(ctx.tokenId);
  return json(200, { revoked: ctx.tokenId });
};

export const backupMetadata: Handler = async (ctx) => ({
  status: 200,
  headers: {
    'content-type': 'application/octet-stream',
    'content-disposition': 'attachment; filename="tessera-metadata.backup"',
  },
  body: await ctx.backend.backupMetadata(),
});

export const restoreMetadata: Handler = async (ctx, body) => {
  if (body.length === 0) throw new TesseraError('BAD_REQUEST', 'the body must be a metadata backup');
  await ctx.backend.restoreMetadata(body);
  return json(200, { restored: true, bytes: body.length });
};
