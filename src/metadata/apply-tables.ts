/**
 * Catalog commands about data: tables, their range shards, and client tokens. Validate first,
 * mutate after (a refused command leaves the state untouched).
 */
import { compareBytes, copyBytes } from '../lib/bytes.js';
import type { GroupId } from '../lib/ids.js';
import { shardId, tableId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Applied } from './apply-cluster.js';
import {
  check,
  fail,
  getGroup,
  getShard,
  getTable,
  getToken,
  isTimeMs,
  isValidTableName,
  shardsOfTable,
} from './state.js';
import { addLoad } from './state.js';
import type { CatalogCommand, CatalogState, ShardRecord } from './types.js';

type Cmd<T extends CatalogCommand['type']> = Extract<CatalogCommand, { type: T }>;

const empty = new Uint8Array(0);

/** The group holding the fewest shards of live tables; ties go to the lowest group id. */
export function leastLoadedGroup(s: CatalogState): GroupId | undefined {
  const counts = s.groupLoad;
  let best: GroupId | undefined;
  let bestCount = Number.POSITIVE_INFINITY;
  for (const [id, n] of counts)
    if (n < bestCount || (n === bestCount && best !== undefined && id < best)) {
      best = id;
      bestCount = n;
    }
  return best;
}

/** Tables that are active or dropping. */
function liveTableCount(s: CatalogState): number {
  return s.tableShards.size;
}

/** Creates the table with ONE shard covering the whole key range, on the least loaded group. */
export function createTable(s: CatalogState, c: Cmd<'createTable'>): Applied<'createTable'> {
  check(isValidTableName(c.name), 'INVALID_TABLE_NAME', 'table names are 1-64 characters of [A-Za-z0-9_.-]');
  check(c.engine === 'btree' || c.engine === 'lsm', 'INVALID_ENGINE', 'the engine must be "btree" or "lsm"');
  check(isTimeMs(c.atMs), 'BAD_REQUEST', 'atMs must be a non-negative integer');
  check(!s.tableNames.has(c.name), 'TABLE_EXISTS', `table ${c.name} already exists`);
  check(
    liveTableCount(s) < limits.catalogTablesMax,
    'UNAVAILABLE',
    'the catalog holds its maximum of tables',
  );
  check(s.shards.size < limits.catalogShardsMax, 'UNAVAILABLE', 'the catalog holds its maximum of shards');
  const group = leastLoadedGroup(s) ?? fail('UNAVAILABLE', 'no replication group exists yet');
  check(s.next.table <= 0xffff_ffff && s.next.shard <= 0xffff_ffff, 'UNAVAILABLE', 'ids are exhausted');
  const table = tableId(s.next.table++);
  const shard = shardId(s.next.shard++);
  s.tables.set(table, {
    id: table,
    name: c.name,
    engine: c.engine,
    state: 'active',
    createdAtMs: c.atMs,
    droppedAtMs: null,
  });
  s.tableNames.set(c.name, table);
  s.shards.set(shard, { id: shard, table, start: empty, end: empty, group, epoch: 1 });
  s.tableShards.set(table, [shard]);
  addLoad(s, group, 1);
  return { changed: true, value: { table, shard, group } };
}

/**
 * Drop step 1: the table leaves the name index at once (the name can be reused: data is keyed by
 * table id) and goes to 'dropping'. The answer lists the owning groups, each of which must log the
 * drop (keyed by the table id) before finishDropTable.
 */
export function dropTable(s: CatalogState, c: Cmd<'dropTable'>): Applied<'dropTable'> {
  check(typeof c.name === 'string', 'INVALID_TABLE_NAME', 'a table name is a string');
  check(isTimeMs(c.atMs), 'BAD_REQUEST', 'atMs must be a non-negative integer');
  const id = s.tableNames.get(c.name) ?? fail('TABLE_NOT_FOUND', `no table ${c.name}`);
  const t = getTable(s, id);
  const shards = shardsOfTable(s, id);
  const groups = [...new Set(shards.map((sh) => sh.group))].sort((a, b) => a - b);
  for (const sh of shards) addLoad(s, sh.group, -1);
  t.state = 'dropping';
  t.droppedAtMs = c.atMs;
  s.tableNames.delete(c.name);
  return { changed: true, value: { table: id, groups } };
}

/** Drop step 2: every owning group has logged the drop; the shards go, a tombstone record stays. */
export function finishDropTable(s: CatalogState, c: Cmd<'finishDropTable'>): Applied<'finishDropTable'> {
  const t = getTable(s, c.table);
  if (t.state === 'dropped') return { changed: false, value: { table: t.id } };
  check(t.state === 'dropping', 'BAD_REQUEST', `table ${t.id} is active; drop it first`);
  for (const sh of shardsOfTable(s, t.id)) s.shards.delete(sh.id);
  s.tableShards.delete(t.id);
  t.state = 'dropped';
  return { changed: true, value: { table: t.id } };
}

function liveShard(s: CatalogState, id: ShardRecord['id']): ShardRecord {
  const sh = getShard(s, id);
  check(getTable(s, sh.table).state === 'active', 'TABLE_NOT_FOUND', `table of shard ${id} is being dropped`);
  return sh;
}

/**
 * Commits a split: [start, end) becomes [start, key) on its group and [key, end) on targetGroup,
 * both at a new epoch. Moving the data before this (snapshot + tail, dual reads) is the control
 * plane's job; this is the cutover's catalog change.
 */
export function splitShard(s: CatalogState, c: Cmd<'splitShard'>): Applied<'splitShard'> {
  const sh = liveShard(s, c.shard);
  getGroup(s, c.targetGroup);
  check(c.key instanceof Uint8Array, 'BAD_REQUEST', 'a split key is bytes');
  check(
    c.key.length >= 1 && c.key.length <= limits.keyBytesMax,
    'BAD_REQUEST',
    `a split key is 1-${limits.keyBytesMax} bytes`,
  );
  const inside =
    compareBytes(c.key, sh.start) > 0 && (sh.end.length === 0 || compareBytes(c.key, sh.end) < 0);
  check(inside, 'BAD_REQUEST', `the split key is not strictly inside shard ${sh.id}`);
  check(s.shards.size < limits.catalogShardsMax, 'UNAVAILABLE', 'the catalog holds its maximum of shards');
  check(s.next.shard <= 0xffff_ffff, 'UNAVAILABLE', 'shard ids are exhausted');
  const epoch = sh.epoch + 1;
  const right = shardId(s.next.shard++);
  const key = copyBytes(c.key);
  s.shards.set(sh.id, { ...sh, end: key, epoch });
  s.shards.set(right, { id: right, table: sh.table, start: key, end: sh.end, group: c.targetGroup, epoch });
  s.tableShards.get(sh.table)?.push(right);
  addLoad(s, c.targetGroup, 1);
  return { changed: true, value: { left: sh.id, right, epoch } };
}

/** Commits a migration's cutover: the shard now belongs to targetGroup at a new epoch. */
export function moveShard(s: CatalogState, c: Cmd<'moveShard'>): Applied<'moveShard'> {
  const sh = liveShard(s, c.shard);
  getGroup(s, c.targetGroup);
  if (sh.group === c.targetGroup) return { changed: false, value: { shard: sh.id, epoch: sh.epoch } };
  addLoad(s, sh.group, -1);
  addLoad(s, c.targetGroup, 1);
  sh.group = c.targetGroup;
  sh.epoch += 1;
  return { changed: true, value: { shard: sh.id, epoch: sh.epoch } };
}

const sha256Hex = /^[0-9a-f]{64}$/;

export function createToken(s: CatalogState, c: Cmd<'createToken'>): Applied<'createToken'> {
  check(
    typeof c.secretHash === 'string' && sha256Hex.test(c.secretHash),
    'BAD_REQUEST',
    'secretHash is sha256 hex',
  );
  check(typeof c.readOnly === 'boolean', 'BAD_REQUEST', 'readOnly is a boolean');
  const admin = c.admin === true;
  check(c.admin === undefined || typeof c.admin === 'boolean', 'BAD_REQUEST', 'admin is a boolean');
  check(
    !(admin && (c.readOnly || c.table !== null)),
    'BAD_REQUEST',
    'an admin token is read-write, all tables',
  );
  check(c.table === null || isValidTableName(c.table), 'INVALID_TABLE_NAME', 'bad table name for the token');
  check(isTimeMs(c.atMs), 'BAD_REQUEST', 'atMs must be a non-negative integer');
  for (const t of s.tokens.values()) {
    if (t.secretHash !== c.secretHash) continue;
    // A retry of the same creation answers the same id; another token with this secret is refused.
    const same = t.readOnly === c.readOnly && t.table === c.table && t.admin === admin;
    check(same, 'BAD_REQUEST', 'another token has this secret');
    return { changed: false, value: { token: t.id } };
  }
  check(s.tokens.size < limits.catalogTokensMax, 'UNAVAILABLE', 'the catalog holds its maximum of tokens');
  check(s.next.token <= 0xffff_ffff, 'UNAVAILABLE', 'token ids are exhausted');
  const id = s.next.token++;
  s.tokens.set(id, {
    id,
    secretHash: c.secretHash,
    readOnly: c.readOnly,
    table: c.table,
    createdAtMs: c.atMs,
    admin,
  });
  return { changed: true, value: { token: id } };
}

export function revokeToken(s: CatalogState, c: Cmd<'revokeToken'>): Applied<'revokeToken'> {
  const t = getToken(s, c.token);
  s.tokens.delete(t.id);
  return { changed: true, value: { token: t.id } };
}
