/**
 * Wire views of the catalog for the MM's RPC answers (rpc.ts): the routing view, one table, the
 * cluster view, a node's assignments, tokens. Pure functions of the catalog state (plus what the MM
 * leader knows in memory: pids and heartbeat ages).
 */
import type { NodeId } from '../lib/ids.js';
import { nodeId } from '../lib/ids.js';
import type { Catalog } from './catalog.js';
import type {
  Assignment,
  ClusterNodeWire,
  ClusterResponse,
  GroupWire,
  NodeWire,
  RoutingWire,
  TableWire,
  TokenRole,
  TokenWire,
} from './rpc.js';
import type { CatalogState, GroupRecord, TableRecord, TokenRecord } from './types.js';

export function tableWire(c: Catalog, t: TableRecord): TableWire {
  const shards = c.shardsOf(t.id).map((sh) => ({
    shard: sh.id as number,
    start: sh.start,
    end: sh.end,
    epoch: sh.epoch,
    group: sh.group,
  }));
  shards.sort((a, b) => Buffer.compare(a.start, b.start));
  return { id: t.id, name: t.name, engine: t.engine, shards };
}

export function groupWire(g: GroupRecord): GroupWire {
  return {
    id: g.id,
    voters: g.members.filter((m) => m.role === 'voter').map((m) => m.node),
    learners: g.members.filter((m) => m.role === 'learner').map((m) => m.node),
    leader: g.leader ?? nodeId(0),
    term: g.term,
  };
}

function nodesWire(s: Readonly<CatalogState>): NodeWire[] {
  return [...s.nodes.values()]
    .sort((a, b) => a.id - b.id)
    .map((n) => ({ id: n.id, role: n.role, address: n.address, state: n.state }));
}

export function routingWire(c: Catalog): RoutingWire {
  const s = c.state;
  return {
    tables: c.listTables().map((t) => tableWire(c, t)),
    groups: [...s.groups.values()].sort((a, b) => a.id - b.id).map(groupWire),
    nodes: nodesWire(s),
  };
}

/** Every group `node` is a member of, with the addresses of the members. */
export function assignmentsOf(c: Catalog, node: NodeId): Assignment[] {
  const out: Assignment[] = [];
  for (const gid of c.groupsOfNode(node)) {
    const g = c.group(gid);
    if (g === undefined) continue;
    const w = groupWire(g);
    out.push({
      group: g.id,
      membership: { voters: w.voters, learners: w.learners },
      addresses: g.members.map((m) => ({ node: m.node, address: c.node(m.node)?.address ?? '' })),
      mode: 'directed',
      leader: w.leader,
      term: w.term,
    });
  }
  return out;
}

export interface LiveFacts {
  /** MM leader (0 = unknown) and members. */
  mmLeader: NodeId;
  mmMembers: ReadonlyMap<NodeId, string>;
  /** MM members this node currently reaches (and itself). */
  mmUp: (id: NodeId) => boolean;
  pid: (id: NodeId) => number | null;
  heartbeatAgeMs: (id: NodeId) => number | null;
  selfPid: number;
  selfId: NodeId;
}

export function clusterWire(c: Catalog, f: LiveFacts): ClusterResponse {
  const s = c.state;
  const mm: ClusterNodeWire[] = [...f.mmMembers].map(([id, addr]) => ({
    id,
    role: 'metadata',
    addr,
    pid: id === f.selfId ? f.selfPid : null,
    state: f.mmUp(id) ? 'up' : 'down',
    heartbeatAgeMs: null,
  }));
  const others: ClusterNodeWire[] = [...s.nodes.values()]
    .filter((n) => n.state !== 'removed')
    .map((n) => ({
      id: n.id,
      role: n.role,
      addr: n.address,
      pid: f.pid(n.id),
      state: n.state,
      heartbeatAgeMs: f.heartbeatAgeMs(n.id),
    }));
  return {
    metadata: { leader: f.mmLeader, members: [...f.mmMembers.keys()].sort((a, b) => a - b) },
    nodes: [...mm, ...others].sort((a, b) => a.id - b.id),
    groups: [...s.groups.values()].sort((a, b) => a.id - b.id).map(groupWire),
    tables: c.listTables().map((t) => tableWire(c, t)),
    version: c.version,
  };
}

export function tokenRole(t: TokenRecord): TokenRole {
  return t.admin ? 'admin' : t.readOnly ? 'read-only' : 'read-write';
}

export function tokenWire(t: TokenRecord): TokenWire {
  return { id: t.id, hash: t.secretHash, role: tokenRole(t), table: t.table, createdAtMs: t.createdAtMs };
}
