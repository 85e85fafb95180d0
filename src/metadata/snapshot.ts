/**
 * Catalog snapshot format, version 1: UTF-8 JSON, keys in a fixed order and every list sorted by id,
 * so equal states give equal bytes. Byte strings (shard bounds) are lowercase hex. Not on the hot
 * path: it favours being readable and checkable over being small.
 *
 *   {"format":"tessera-catalog","formatVersion":1,"version":N,"next":{...},
 *    "nodes":[...],"spares":[...],"groups":[...],"tables":[...],"shards":[...],"tokens":[...]}
 *
 * decodeSnapshot checks the shape and every invariant; anything wrong is CORRUPTION.
 */
import { AssertionError } from '../lib/assert.js';
import { fromHex, toHex } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId, ShardId, TableId, Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { checkInvariants, emptyState, isTimeMs, isU32, rebuildIndexes } from './state.js';
import type {
  CatalogState,
  GroupRecord,
  Member,
  NodeRecord,
  ShardRecord,
  TableRecord,
  TokenRecord,
} from './types.js';

export const snapshotFormat = 'tessera-catalog';
export const snapshotFormatVersion = 1;

const byId = <T extends { id: number }>(m: Map<unknown, T>): T[] =>
  [...m.values()].sort((a, b) => a.id - b.id);

export function encodeSnapshot(s: CatalogState): Uint8Array {
  const doc = {
    format: snapshotFormat,
    formatVersion: snapshotFormatVersion,
    version: s.version,
    next: {
      node: s.next.node,
      group: s.next.group,
      table: s.next.table,
      shard: s.next.shard,
      token: s.next.token,
    },
    nodes: byId(s.nodes).map((n) => ({
      id: n.id,
      key: n.key,
      address: n.address,
      role: n.role,
      capacity: { replicasMax: n.capacity.replicasMax, diskBytes: n.capacity.diskBytes },
      state: n.state,
      registeredAtMs: n.registeredAtMs,
    })),
    spares: [...s.spares],
    groups: byId(s.groups).map((g) => ({
      id: g.id,
      members: g.members.map((m) => ({ node: m.node, role: m.role, replaces: m.replaces })),
      leader: g.leader,
      term: g.term,
      createdAtMs: g.createdAtMs,
    })),
    tables: byId(s.tables).map((t) => ({
      id: t.id,
      name: t.name,
      engine: t.engine,
      state: t.state,
      createdAtMs: t.createdAtMs,
      droppedAtMs: t.droppedAtMs,
    })),
    shards: byId(s.shards).map((sh) => ({
      id: sh.id,
      table: sh.table,
      start: toHex(sh.start),
      end: toHex(sh.end),
      group: sh.group,
      epoch: sh.epoch,
    })),
    tokens: byId(s.tokens).map((t) => ({
      id: t.id,
      secretHash: t.secretHash,
      readOnly: t.readOnly,
      table: t.table,
      createdAtMs: t.createdAtMs,
      // Written only when true, so catalogs without admin tokens keep their v1 bytes.
      ...(t.admin ? { admin: true } : {}),
    })),
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

function corrupt(message: string): never {
  throw new TesseraError('CORRUPTION', `catalog snapshot: ${message}`);
}

function need(ok: boolean, what: string): asserts ok {
  if (!ok) corrupt(`bad ${what}`);
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isHex = (v: unknown): v is string => isStr(v) && /^(?:[0-9a-f]{2})*$/.test(v);
const oneOf = (v: unknown, values: readonly string[]): boolean => isStr(v) && values.includes(v);
const idOrNull = (v: unknown): boolean => v === null || isU32(v);

function list(doc: Json, key: string): Json[] {
  const v = doc[key];
  need(Array.isArray(v) && v.every(isObj), key);
  return v as Json[];
}

function readNode(o: Json): NodeRecord {
  const cap = o.capacity;
  need(isU32(o.id) && isStr(o.key) && isStr(o.address) && isTimeMs(o.registeredAtMs), 'node');
  need(oneOf(o.role, ['storage', 'metadata', 'request']), 'node role');
  need(oneOf(o.state, ['up', 'down', 'spare', 'removed']), 'node state');
  need(isObj(cap) && isU32(cap.replicasMax) && isTimeMs(cap.diskBytes), 'node capacity');
  return {
    id: o.id as NodeId,
    key: o.key,
    address: o.address,
    role: o.role as NodeRecord['role'],
    capacity: { replicasMax: cap.replicasMax, diskBytes: cap.diskBytes },
    state: o.state as NodeRecord['state'],
    registeredAtMs: o.registeredAtMs,
  };
}

function readMember(o: unknown): Member {
  need(isObj(o) && isU32(o.node) && oneOf(o.role, ['voter', 'learner']) && idOrNull(o.replaces), 'member');
  return { node: o.node as NodeId, role: o.role as Member['role'], replaces: o.replaces as NodeId | null };
}

function readGroup(o: Json): GroupRecord {
  need(isU32(o.id) && Array.isArray(o.members) && idOrNull(o.leader), 'group');
  need(isTimeMs(o.term) && isTimeMs(o.createdAtMs), 'group term');
  return {
    id: o.id as GroupId,
    members: o.members.map(readMember),
    leader: o.leader as NodeId | null,
    term: o.term as Term,
    createdAtMs: o.createdAtMs,
  };
}

function readTable(o: Json): TableRecord {
  need(isU32(o.id) && isStr(o.name) && oneOf(o.engine, ['btree', 'lsm']), 'table');
  need(oneOf(o.state, ['active', 'dropping', 'dropped']), 'table state');
  need(isTimeMs(o.createdAtMs) && (o.droppedAtMs === null || isTimeMs(o.droppedAtMs)), 'table times');
  return {
    id: o.id as TableId,
    name: o.name,
    engine: o.engine as TableRecord['engine'],
    state: o.state as TableRecord['state'],
    createdAtMs: o.createdAtMs,
    droppedAtMs: o.droppedAtMs as number | null,
  };
}

function readShard(o: Json): ShardRecord {
  need(isU32(o.id) && isU32(o.table) && isU32(o.group) && isTimeMs(o.epoch), 'shard');
  need(isHex(o.start) && isHex(o.end), 'shard bounds');
  return {
    id: o.id as ShardId,
    table: o.table as TableId,
    start: fromHex(o.start),
    end: fromHex(o.end),
    group: o.group as GroupId,
    epoch: o.epoch,
  };
}

function readToken(o: Json): TokenRecord {
  need(isU32(o.id) && isStr(o.secretHash) && typeof o.readOnly === 'boolean', 'token');
  need((o.table === null || isStr(o.table)) && isTimeMs(o.createdAtMs), 'token fields');
  need(o.admin === undefined || o.admin === true, 'token admin flag');
  return {
    id: o.id,
    secretHash: o.secretHash,
    readOnly: o.readOnly,
    table: o.table as string | null,
    createdAtMs: o.createdAtMs,
    admin: o.admin === true,
  };
}

function parse(bytes: Uint8Array): Json {
  if (bytes.length > limits.catalogSnapshotBytesMax) corrupt('too large');
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    corrupt('not UTF-8 JSON');
  }
  need(isObj(doc) && doc.format === snapshotFormat, 'format');
  if (doc.formatVersion !== snapshotFormatVersion)
    corrupt(`unsupported format version ${String(doc.formatVersion)}`);
  return doc;
}

function putAll<K, V extends { id: K }>(map: Map<K, V>, items: V[], what: string): void {
  for (const v of items) {
    need(!map.has(v.id), `duplicate ${what} ${String(v.id)}`);
    map.set(v.id, v);
  }
}

export function decodeSnapshot(bytes: Uint8Array): CatalogState {
  const doc = parse(bytes);
  const s = emptyState();
  const next = doc.next;
  need(isTimeMs(doc.version) && isObj(next), 'header');
  for (const k of ['node', 'group', 'table', 'shard', 'token'] as const) {
    need(isTimeMs(next[k]) && (next[k] as number) >= 1, `next.${k}`);
    s.next[k] = next[k] as number;
  }
  s.version = doc.version;
  putAll(s.nodes, list(doc, 'nodes').map(readNode), 'node');
  putAll(s.groups, list(doc, 'groups').map(readGroup), 'group');
  putAll(s.tables, list(doc, 'tables').map(readTable), 'table');
  putAll(s.shards, list(doc, 'shards').map(readShard), 'shard');
  putAll(s.tokens, list(doc, 'tokens').map(readToken), 'token');
  need(Array.isArray(doc.spares) && doc.spares.every(isU32), 'spares');
  s.spares = doc.spares as NodeId[];
  rebuildIndexes(s);
  try {
    checkInvariants(s);
  } catch (e) {
    if (e instanceof AssertionError) corrupt(`invariant: ${e.message}`);
    throw e;
  }
  return s;
}
