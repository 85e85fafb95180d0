/** Request parsing and response formatting shared by the HTTP API handlers. */
import { TesseraError } from '../lib/errors.js';
import type { Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { keyToJson, percentDecodeBytes } from '../lib/urlbytes.js';
import type { ClusterView, ShardView, TableDescription, WriteCondition } from './backend.js';
import { groupStatsJson, nodeStatsJson } from './cluster-stats.js';

export type Headers = Record<string, string | string[] | undefined>;

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

const jsonType = 'application/json; charset=utf-8';

export function json(status: number, value: unknown, headers: Record<string, string> = {}): ApiResponse {
  return { status, headers: { 'content-type': jsonType, ...headers }, body: JSON.stringify(value) };
}

/** The JSON error response of a TesseraError (with Allow / Retry-After where they help). */
export function errorResponse(e: TesseraError): ApiResponse {
  const headers: Record<string, string> = {};
  const allow = e.detail?.allow;
  if (e.code === 'METHOD_NOT_ALLOWED' && Array.isArray(allow)) headers.allow = allow.join(', ');
  if (e.status === 503 || e.status === 429) {
    const after = e.detail?.retryAfterSeconds;
    headers['retry-after'] = String(typeof after === 'number' ? after : limits.httpRetryAfterSeconds);
  }
  const body = { error: { code: e.code, message: e.message } };
  const hint = e.detail?.leaderHint;
  if (hint !== undefined) Object.assign(body.error, { leader_hint: hint });
  return json(e.status, body, headers);
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) throw new TesseraError('BAD_REQUEST', `header ${name} given more than once`);
  return v;
}

const tableNameRe = /^[A-Za-z0-9_.-]{1,64}$/;

/** A table name from its percent-encoded path segment: 1-64 of [A-Za-z0-9_.-], not "." or "..". */
export function tableName(segment: string): string {
  const bytes = percentDecodeBytes(segment, 'table name');
  const name = Buffer.from(bytes).toString('latin1');
  if (!tableNameRe.test(name) || name === '.' || name === '..')
    throw new TesseraError('INVALID_TABLE_NAME', 'table names are 1-64 characters of [A-Za-z0-9_.-]');
  return name;
}

export function checkTableName(name: unknown): string {
  if (typeof name !== 'string' || !tableNameRe.test(name) || name === '.' || name === '..')
    throw new TesseraError('INVALID_TABLE_NAME', 'table names are 1-64 characters of [A-Za-z0-9_.-]');
  return name;
}

/** A key from its percent-encoded path segment: 1..keyBytesMax raw bytes. */
export function itemKey(segment: string): Uint8Array {
  const key = percentDecodeBytes(segment, 'key');
  if (key.length === 0) throw new TesseraError('KEY_EMPTY', 'a key must be at least 1 byte long');
  if (key.length > limits.keyBytesMax)
    throw new TesseraError(
      'KEY_TOO_LARGE',
      `a key is at most ${limits.keyBytesMax} bytes, got ${key.length}`,
    );
  return key;
}

export function seqHex(seq: Seq): string {
  return Buffer.from(seq.buffer, seq.byteOffset, seq.byteLength).toString('hex');
}

const seqRe = /^[0-9a-f]{32}$/;

export function parseSeq(s: string): Seq {
  if (!seqRe.test(s)) throw new TesseraError('INVALID_SEQ', 'a seq is 32 lowercase hex characters');
  return new Uint8Array(Buffer.from(s, 'hex')) as Seq;
}

/** An entity tag `"<seq>"` (quotes optional, weak tags refused). */
function parseEtag(v: string): Seq {
  const t = v.trim();
  const m = /^"([^"]*)"$/.exec(t);
  return parseSeq(m === null ? t : (m[1] as string));
}

/** The write condition of If-Match / If-None-Match. */
export function writeCondition(headers: Headers, allowNoneMatch: boolean): WriteCondition {
  const ifMatch = header(headers, 'if-match');
  const ifNoneMatch = header(headers, 'if-none-match');
  if (ifMatch !== undefined && ifNoneMatch !== undefined)
    throw new TesseraError('BAD_REQUEST', 'give If-Match or If-None-Match, not both');
  if (ifMatch !== undefined) {
    if (ifMatch.trim() === '*' || ifMatch.includes(','))
      throw new TesseraError('BAD_REQUEST', 'If-Match takes exactly one "<seq>"');
    return { kind: 'ifMatch', seq: parseEtag(ifMatch) };
  }
  if (ifNoneMatch !== undefined) {
    if (!allowNoneMatch || ifNoneMatch.trim() !== '*')
      throw new TesseraError('BAD_REQUEST', 'If-None-Match on a write must be *, and only on put');
    return { kind: 'ifNoneMatch' };
  }
  return { kind: 'none' };
}

/** For GET: the seq tags of a header (`*` as null), or undefined when absent. */
export function readCondition(
  headers: Headers,
  name: 'if-match' | 'if-none-match',
): (Seq | null)[] | undefined {
  const v = header(headers, name);
  if (v === undefined) return undefined;
  return v.split(',').map((t) => (t.trim() === '*' ? null : parseEtag(t)));
}

export function parseJsonObject(body: Uint8Array, allowEmpty: boolean): Record<string, unknown> {
  if (body.length === 0) {
    if (allowEmpty) return {};
    throw new TesseraError('BAD_REQUEST', 'a JSON body is required');
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new TesseraError('BAD_REQUEST', 'the body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new TesseraError('BAD_REQUEST', 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

export function onlyFields(obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k)) throw new TesseraError('BAD_REQUEST', `unknown field ${JSON.stringify(k)}`);
}

/** Raw query parameters (percent-decoding is left to the caller: values may be bytes). */
export function queryParams(query: string, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (!allowed.includes(name)) throw new TesseraError('BAD_REQUEST', `unknown query parameter ${name}`);
    if (out.has(name)) throw new TesseraError('BAD_REQUEST', `query parameter ${name} given twice`);
    out.set(name, value);
  }
  return out;
}

function boundJson(prefix: string, b: Uint8Array): Record<string, string> {
  const { text, b64 } = keyToJson(b);
  return { [prefix]: text, [`${prefix}_b64`]: b64 };
}

export function shardJson(s: ShardView): Record<string, unknown> {
  return { ...boundJson('start', s.start), ...boundJson('end', s.end), group: s.group, epoch: s.epoch };
}

export function tableJson(t: TableDescription): Record<string, unknown> {
  return { name: t.name, engine: t.engine, shards: t.shards.map(shardJson) };
}

export function clusterJson(c: ClusterView, visible: (table: string) => boolean): Record<string, unknown> {
  return {
    metadata: { leader: c.metadata.leader, members: c.metadata.members },
    nodes: c.nodes.map((n) => ({
      id: n.id,
      role: n.role,
      addr: n.addr,
      pid: n.pid,
      state: n.state,
      heartbeat_age_ms: n.heartbeatAgeMs,
      ...nodeStatsJson(n.metrics),
    })),
    groups: c.groups.map((g) => ({
      id: g.id,
      members: g.members,
      leader: g.leader,
      term: g.term,
      ...groupStatsJson(g.replicas),
    })),
    tables: c.tables.filter((t) => visible(t.name)).map(tableJson),
  };
}
