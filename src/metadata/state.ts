/**
 * Catalog state helpers: the empty state, lookups that fail with stable codes, input checks, and the
 * invariants that every reachable state satisfies (checked after restore and by the tests).
 */
import { assert } from '../lib/assert.js';
import { compareBytes } from '../lib/bytes.js';
import { type ErrorCode, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId, ShardId, TableId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type {
  CatalogState,
  GroupRecord,
  Member,
  NodeRecord,
  ShardRecord,
  TableRecord,
  TokenId,
  TokenRecord,
} from './types.js';

/** `firstNodeId`: the first id registration gives (the MM passes limits.mmNodeIdMax + 1). */
export function emptyState(firstNodeId = 1): CatalogState {
  assert(Number.isInteger(firstNodeId) && firstNodeId >= 1, 'firstNodeId');
  return {
    version: 0,
    next: { node: firstNodeId, group: 1, table: 1, shard: 1, token: 1 },
    nodes: new Map(),
    groups: new Map(),
    tables: new Map(),
    shards: new Map(),
    tokens: new Map(),
    spares: [],
    nodeKeys: new Map(),
    tableNames: new Map(),
    tableShards: new Map(),
    groupLoad: new Map(),
  };
}

/** Rebuilds the derived indexes from the records (after restore; and to check them). */
export function rebuildIndexes(s: CatalogState): void {
  s.nodeKeys = new Map();
  s.tableNames = new Map();
  s.tableShards = new Map();
  s.groupLoad = new Map();
  for (const n of s.nodes.values()) s.nodeKeys.set(n.key, n.id);
  for (const t of s.tables.values()) {
    if (t.state === 'active') s.tableNames.set(t.name, t.id);
    if (t.state !== 'dropped') s.tableShards.set(t.id, []);
  }
  for (const id of [...s.groups.keys()].sort((a, b) => a - b)) s.groupLoad.set(id, 0);
  for (const sh of [...s.shards.values()].sort((a, b) => a.id - b.id)) {
    s.tableShards.get(sh.table)?.push(sh.id);
    if (s.tables.get(sh.table)?.state === 'active') addLoad(s, sh.group, 1);
  }
}

export function addLoad(s: CatalogState, group: GroupId, delta: number): void {
  const n = (s.groupLoad.get(group) ?? 0) + delta;
  assert(n >= 0, `group ${group} load below zero`);
  s.groupLoad.set(group, n);
}

export function fail(code: ErrorCode, message: string): never {
  throw new TesseraError(code, message);
}

export function check(condition: boolean, code: ErrorCode, message: string): asserts condition {
  if (!condition) fail(code, message);
}

export function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

export function isTimeMs(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export function getNode(s: CatalogState, id: NodeId): NodeRecord {
  return s.nodes.get(id) ?? fail('NODE_NOT_FOUND', `no node ${id}`);
}

export function getGroup(s: CatalogState, id: GroupId): GroupRecord {
  return s.groups.get(id) ?? fail('GROUP_NOT_FOUND', `no group ${id}`);
}

export function getShard(s: CatalogState, id: ShardId): ShardRecord {
  return s.shards.get(id) ?? fail('SHARD_NOT_FOUND', `no shard ${id}`);
}

export function getTable(s: CatalogState, id: TableId): TableRecord {
  return s.tables.get(id) ?? fail('TABLE_NOT_FOUND', `no table with id ${id}`);
}

export function getToken(s: CatalogState, id: TokenId): TokenRecord {
  return s.tokens.get(id) ?? fail('TOKEN_NOT_FOUND', `no token ${id}`);
}

export function memberOf(g: GroupRecord, node: NodeId): Member | undefined {
  return g.members.find((m) => m.node === node);
}

export function voters(g: GroupRecord): NodeId[] {
  return g.members.filter((m) => m.role === 'voter').map((m) => m.node);
}

/** Groups in which the node is a member (voter or learner), by id. */
export function groupsOfNode(s: CatalogState, node: NodeId): GroupId[] {
  const out: GroupId[] = [];
  for (const g of s.groups.values()) if (memberOf(g, node)) out.push(g.id);
  return out;
}

export function insertSorted(list: NodeId[], id: NodeId): void {
  let i = 0;
  while (i < list.length && list[i]! < id) i++;
  if (list[i] !== id) list.splice(i, 0, id);
}

export function removeFrom(list: NodeId[], id: NodeId): void {
  const i = list.indexOf(id);
  if (i >= 0) list.splice(i, 1);
}

export const tableNamePattern = /^[A-Za-z0-9_.-]{1,64}$/;

export function isValidTableName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= limits.tableNameLengthMax && tableNamePattern.test(name);
}

/** Shards of a table sorted by start bound (empty start first). */
export function shardsOfTable(s: CatalogState, table: TableId): ShardRecord[] {
  const out: ShardRecord[] = [];
  for (const id of s.tableShards.get(table) ?? []) {
    const sh = s.shards.get(id);
    assert(sh !== undefined && sh.table === table, `shard index of table ${table}`);
    out.push(sh);
  }
  return out.sort((a, b) => compareBytes(a.start, b.start));
}

/**
 * Every invariant a reachable state satisfies. Assertions: a violation is a bug (or, after restore,
 * the caller maps it to CORRUPTION).
 */
export function checkInvariants(s: CatalogState): void {
  assert(Number.isSafeInteger(s.version) && s.version >= 0, 'version');
  for (const [id, n] of s.nodes) {
    assert(n.id === id && id > 0 && id < s.next.node, `node id ${id}`);
    assert(s.nodeKeys.get(n.key) === id, `node key of ${id}`);
    assert((n.state === 'spare') === s.spares.includes(id), `spare pool and state of node ${id}`);
  }
  assert(s.nodeKeys.size === s.nodes.size, 'node keys');
  for (let i = 1; i < s.spares.length; i++) assert(s.spares[i - 1]! < s.spares[i]!, 'spares sorted');
  for (const [id, g] of s.groups) checkGroup(s, id, g);
  const activeNames = new Map<string, TableId>();
  for (const [id, t] of s.tables) {
    assert(t.id === id && id > 0 && id < s.next.table, `table id ${id}`);
    if (t.state === 'active') {
      assert(!activeNames.has(t.name), `two active tables named ${t.name}`);
      activeNames.set(t.name, id);
    }
    if (t.state !== 'dropped') checkShardCover(s, id);
  }
  assert(activeNames.size === s.tableNames.size, 'table name index size');
  for (const [name, id] of activeNames) assert(s.tableNames.get(name) === id, `table name index ${name}`);
  for (const [id, sh] of s.shards) {
    assert(sh.id === id && id > 0 && id < s.next.shard, `shard id ${id}`);
    const t = s.tables.get(sh.table);
    assert(t !== undefined && t.state !== 'dropped', `shard ${id} of a live table`);
    assert(s.groups.has(sh.group), `shard ${id} on a known group`);
    assert(Number.isSafeInteger(sh.epoch) && sh.epoch >= 1, `shard ${id} epoch`);
  }
  for (const [id, t] of s.tokens) assert(t.id === id && id > 0 && id < s.next.token, `token id ${id}`);
  checkIndexes(s);
}

/** The derived indexes agree with the records (recomputed from scratch). */
function checkIndexes(s: CatalogState): void {
  const fresh = { ...s } as CatalogState;
  rebuildIndexes(fresh);
  assert(fresh.groupLoad.size === s.groupLoad.size, 'group load index size');
  for (const [g, n] of fresh.groupLoad) assert(s.groupLoad.get(g) === n, `group ${g} load index`);
  assert(fresh.tableShards.size === s.tableShards.size, 'table shard index size');
  for (const [t, ids] of fresh.tableShards) {
    const have = [...(s.tableShards.get(t) ?? [])].sort((a, b) => a - b);
    assert(have.length === ids.length && have.every((id, i) => id === ids[i]), `table ${t} shard index`);
  }
}

function checkGroup(s: CatalogState, id: GroupId, g: GroupRecord): void {
  assert(g.id === id && id > 0 && id < s.next.group, `group id ${id}`);
  assert(voters(g).length >= 1, `group ${id} has a voter`);
  for (let i = 0; i < g.members.length; i++) {
    const m = g.members[i]!;
    assert(i === 0 || g.members[i - 1]!.node < m.node, `group ${id} members sorted and unique`);
    const n = s.nodes.get(m.node);
    assert(n !== undefined && n.state !== 'spare' && n.state !== 'removed', `member ${m.node} of ${id}`);
    assert(m.replaces === null || memberOf(g, m.replaces) !== undefined, `replaces in group ${id}`);
  }
  assert(g.leader === null || memberOf(g, g.leader)?.role === 'voter', `leader of group ${id} is a voter`);
}

/** The shards of a live table tile the whole key space: "" .. "" without gaps or overlaps. */
function checkShardCover(s: CatalogState, table: TableId): void {
  const shards = shardsOfTable(s, table);
  assert(shards.length >= 1, `table ${table} has shards`);
  let expected: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < shards.length; i++) {
    const sh = shards[i]!;
    assert(compareBytes(sh.start, expected) === 0, `table ${table} shards are contiguous`);
    const last = i === shards.length - 1;
    assert(last === (sh.end.length === 0), `table ${table}: only the last shard is unbounded`);
    if (!last) assert(compareBytes(sh.start, sh.end) < 0, `shard ${sh.id} range is not empty`);
    expected = sh.end;
  }
}
