/**
 * The routing view request managers route from: table name -> shards (sorted by start) -> group ->
 * leader (+ address), term, and the shard epoch to send with each request. Built in one pass over the
 * catalog (O(nodes + groups + tables + shards)) and cached per catalog version by Catalog.routing();
 * routeKey() is a binary search over a table's shards.
 */
import { assert } from '../lib/assert.js';
import { compareBytes } from '../lib/bytes.js';
import type { GroupId, NodeId, ShardId, TableId, Term } from '../lib/ids.js';
import { voters } from './state.js';
import type { CatalogState, Engine } from './types.js';

export interface RouteGroup {
  readonly id: GroupId;
  readonly leader: NodeId | null;
  /** Address of the leader (host:port), or null when there is no known leader. */
  readonly leaderAddress: string | null;
  readonly term: Term;
  /** Voters, by id: where to try when the leader is unknown (they answer NOT_LEADER with a hint). */
  readonly voters: readonly NodeId[];
}

export interface RouteShard {
  readonly shard: ShardId;
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly epoch: number;
  readonly group: RouteGroup;
}

export interface RouteTable {
  readonly id: TableId;
  readonly name: string;
  readonly engine: Engine;
  /** Sorted by start; they tile the key space. */
  readonly shards: readonly RouteShard[];
}

export interface RoutingView {
  readonly version: number;
  /** Active tables only. */
  readonly tables: ReadonlyMap<string, RouteTable>;
  readonly groups: ReadonlyMap<GroupId, RouteGroup>;
  readonly nodeAddresses: ReadonlyMap<NodeId, string>;
}

export function buildRoutingView(s: CatalogState): RoutingView {
  const nodeAddresses = new Map<NodeId, string>();
  for (const n of s.nodes.values()) if (n.state !== 'removed') nodeAddresses.set(n.id, n.address);
  const groups = new Map<GroupId, RouteGroup>();
  for (const g of s.groups.values()) {
    const leaderAddress = g.leader === null ? null : (nodeAddresses.get(g.leader) ?? null);
    groups.set(g.id, { id: g.id, leader: g.leader, leaderAddress, term: g.term, voters: voters(g) });
  }
  const shardsByTable = new Map<TableId, RouteShard[]>();
  for (const sh of s.shards.values()) {
    const group = groups.get(sh.group);
    assert(group !== undefined, `shard ${sh.id} on unknown group ${sh.group}`);
    const route = { shard: sh.id, start: sh.start, end: sh.end, epoch: sh.epoch, group };
    const list = shardsByTable.get(sh.table);
    if (list === undefined) shardsByTable.set(sh.table, [route]);
    else list.push(route);
  }
  const tables = new Map<string, RouteTable>();
  for (const [name, id] of [...s.tableNames].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const t = s.tables.get(id);
    assert(t !== undefined && t.state === 'active', `name index points at table ${id}`);
    const shards = (shardsByTable.get(id) ?? []).sort((a, b) => compareBytes(a.start, b.start));
    tables.set(name, { id, name, engine: t.engine, shards });
  }
  return { version: s.version, tables, groups, nodeAddresses };
}

/** The shard of `table` whose [start, end) holds `key`. */
export function routeKey(table: RouteTable, key: Uint8Array): RouteShard {
  const shards = table.shards;
  assert(shards.length > 0, `table ${table.name} has no shards`);
  // The last shard whose start <= key.
  let lo = 0;
  let hi = shards.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (compareBytes(shards[mid]!.start, key) <= 0) lo = mid;
    else hi = mid - 1;
  }
  const found = shards[lo]!;
  assert(found.end.length === 0 || compareBytes(key, found.end) < 0, 'shards tile the key space');
  return found;
}
