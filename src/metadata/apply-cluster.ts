/**
 * Catalog commands about the cluster's shape: nodes, the free pool, groups and their membership.
 * Each handler validates everything first and mutates only after, so a refused command leaves the
 * state untouched. `changed: false` marks an idempotent retry (the version does not move).
 */
import { type GroupId, groupId, type NodeId, nodeId, type Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import {
  check,
  fail,
  getGroup,
  getNode,
  groupsOfNode,
  insertSorted,
  isTimeMs,
  isU32,
  memberOf,
  removeFrom,
  voters,
} from './state.js';
import type { CatalogCommand, CatalogState, CommandValues, GroupRecord, NodeRecord } from './types.js';

type Cmd<T extends CatalogCommand['type']> = Extract<CatalogCommand, { type: T }>;
export interface Applied<T extends keyof CommandValues> {
  changed: boolean;
  value: CommandValues[T];
}

const nodeRoles = new Set(['storage', 'metadata', 'request']);

function checkRegistration(c: Cmd<'registerNode'>): void {
  check(
    typeof c.nodeKey === 'string' && c.nodeKey.length >= 1 && c.nodeKey.length <= limits.nodeKeyLengthMax,
    'BAD_REQUEST',
    `a node key is 1-${limits.nodeKeyLengthMax} characters`,
  );
  check(
    typeof c.address === 'string' && c.address.length >= 1 && c.address.length <= limits.nodeAddressLengthMax,
    'BAD_REQUEST',
    `a node address is 1-${limits.nodeAddressLengthMax} characters`,
  );
  check(nodeRoles.has(c.role), 'BAD_REQUEST', `unknown node role ${String(c.role)}`);
  check(
    isU32(c.capacity?.replicasMax) && isTimeMs(c.capacity?.diskBytes),
    'BAD_REQUEST',
    'capacity needs replicasMax and diskBytes',
  );
  check(isTimeMs(c.atMs), 'BAD_REQUEST', 'atMs must be a non-negative integer');
}

/** Assigns a node id once per node key; a retry (same key) answers the same id. */
export function registerNode(s: CatalogState, c: Cmd<'registerNode'>): Applied<'registerNode'> {
  checkRegistration(c);
  const known = s.nodeKeys.get(c.nodeKey);
  if (known !== undefined) {
    const n = getNode(s, known);
    check(n.state !== 'removed', 'NODE_REMOVED', `node ${known} was removed; wipe its data to rejoin`);
    check(n.role === c.role, 'BAD_REQUEST', `node ${known} registered as ${n.role}, not ${c.role}`);
    const same =
      n.address === c.address &&
      n.capacity.replicasMax === c.capacity.replicasMax &&
      n.capacity.diskBytes === c.capacity.diskBytes;
    if (!same) {
      n.address = c.address;
      n.capacity = { replicasMax: c.capacity.replicasMax, diskBytes: c.capacity.diskBytes };
    }
    return { changed: !same, value: { node: known, created: false } };
  }
  check(s.nodes.size < limits.catalogNodesMax, 'UNAVAILABLE', 'the catalog holds its maximum of nodes');
  check(s.next.node <= 0xffff_ffff, 'UNAVAILABLE', 'node ids are exhausted');
  const id = nodeId(s.next.node++);
  const capacity = { replicasMax: c.capacity.replicasMax, diskBytes: c.capacity.diskBytes };
  const record: NodeRecord = {
    id,
    key: c.nodeKey,
    address: c.address,
    role: c.role,
    capacity,
    state: 'up',
    registeredAtMs: c.atMs,
  };
  s.nodes.set(id, record);
  s.nodeKeys.set(c.nodeKey, id);
  return { changed: true, value: { node: id, created: true } };
}

/** Liveness as judged by the control plane; 'removed' is final and needs a node with no replica. */
export function markNode(s: CatalogState, c: Cmd<'markNode'>): Applied<'markNode'> {
  check(['up', 'down', 'removed'].includes(c.state), 'BAD_REQUEST', `bad node state ${String(c.state)}`);
  const n = getNode(s, c.node);
  if (n.state === c.state) return { changed: false, value: { node: n.id, state: n.state } };
  check(n.state !== 'removed', 'NODE_REMOVED', `node ${n.id} was removed`);
  if (c.state === 'removed') {
    const groups = groupsOfNode(s, n.id);
    check(groups.length === 0, 'MEMBERSHIP_CONFLICT', `node ${n.id} still hosts groups ${groups.join(',')}`);
  }
  // A spare that goes down (or away) leaves the pool; once back, it returns through addSpare.
  if (n.state === 'spare' && c.state === 'up')
    return { changed: false, value: { node: n.id, state: n.state } };
  if (n.state === 'spare') removeFrom(s.spares, n.id);
  n.state = c.state;
  return { changed: true, value: { node: n.id, state: n.state } };
}

/** Puts an up storage node that hosts no replica into the free pool. */
export function addSpare(s: CatalogState, c: Cmd<'addSpare'>): Applied<'addSpare'> {
  const n = getNode(s, c.node);
  if (n.state === 'spare') return { changed: false, value: { node: n.id } };
  check(n.state === 'up', 'MEMBERSHIP_CONFLICT', `node ${n.id} is ${n.state}, not up`);
  check(n.role === 'storage', 'MEMBERSHIP_CONFLICT', `node ${n.id} is a ${n.role} node`);
  const groups = groupsOfNode(s, n.id);
  check(groups.length === 0, 'MEMBERSHIP_CONFLICT', `node ${n.id} hosts groups ${groups.join(',')}`);
  n.state = 'spare';
  insertSorted(s.spares, n.id);
  return { changed: true, value: { node: n.id } };
}

/** Takes a node out of the pool (the given one, or the one with the most room, lowest id first). */
export function takeSpare(s: CatalogState, c: Cmd<'takeSpare'>): Applied<'takeSpare'> {
  let id: NodeId | undefined = c.node;
  if (id === undefined) {
    let best: NodeRecord | undefined;
    for (const sid of s.spares) {
      const n = getNode(s, sid);
      if (best === undefined || n.capacity.replicasMax > best.capacity.replicasMax) best = n;
    }
    id = best?.id ?? fail('NO_SPARE_NODE', 'the free pool is empty');
  }
  const n = getNode(s, id);
  check(n.state === 'spare', 'NO_SPARE_NODE', `node ${id} is not in the free pool`);
  removeFrom(s.spares, id);
  n.state = 'up';
  return { changed: true, value: { node: id } };
}

/** A node may join a group if it is a live storage node (an up one, or a spare taken from the pool). */
function checkJoinable(s: CatalogState, node: NodeId): NodeRecord {
  const n = getNode(s, node);
  check(n.role === 'storage', 'MEMBERSHIP_CONFLICT', `node ${node} is a ${n.role} node`);
  check(n.state === 'up' || n.state === 'spare', 'MEMBERSHIP_CONFLICT', `node ${node} is ${n.state}`);
  return n;
}

function leaveSparePool(s: CatalogState, n: NodeRecord): void {
  if (n.state !== 'spare') return;
  removeFrom(s.spares, n.id);
  n.state = 'up';
}

export function createGroup(s: CatalogState, c: Cmd<'createGroup'>): Applied<'createGroup'> {
  check(isTimeMs(c.atMs), 'BAD_REQUEST', 'atMs must be a non-negative integer');
  const count = Array.isArray(c.members) ? c.members.length : 0;
  check(
    count % 2 === 1 && count <= limits.groupVotersMax,
    'BAD_REQUEST',
    `a group has an odd number of members, at most ${limits.groupVotersMax}`,
  );
  check(new Set(c.members).size === count, 'BAD_REQUEST', 'group members must be distinct');
  const nodes = c.members.map((m) => checkJoinable(s, m));
  check(s.groups.size < limits.catalogGroupsMax, 'UNAVAILABLE', 'the catalog holds its maximum of groups');
  check(s.next.group <= 0xffff_ffff, 'UNAVAILABLE', 'group ids are exhausted');
  const id = groupId(s.next.group++);
  for (const n of nodes) leaveSparePool(s, n);
  const members = [...c.members]
    .sort((a, b) => a - b)
    .map((node) => ({ node, role: 'voter' as const, replaces: null }));
  s.groups.set(id, { id, members, leader: null, term: 0 as Term, createdAtMs: c.atMs });
  s.groupLoad.set(id, 0);
  return { changed: true, value: { group: id } };
}

/** Records the leader the group elected. Terms only grow; one leader per term. */
export function setGroupLeader(s: CatalogState, c: Cmd<'setGroupLeader'>): Applied<'setGroupLeader'> {
  const g = getGroup(s, c.group);
  check(Number.isSafeInteger(c.term) && c.term >= 0, 'BAD_REQUEST', 'a term is a non-negative integer');
  check(c.term >= g.term, 'STALE_TERM', `group ${g.id} is at term ${g.term}, not ${c.term}`);
  if (c.leader !== null) {
    check(memberOf(g, c.leader)?.role === 'voter', 'MEMBERSHIP_CONFLICT', `node ${c.leader} is not a voter`);
  }
  const value = { group: g.id, leader: c.leader, term: c.term };
  if (c.term === g.term && c.leader === g.leader) return { changed: false, value };
  if (c.term === g.term && g.leader !== null) {
    fail('STALE_TERM', `group ${g.id} already has leader ${g.leader} at term ${g.term}`);
  }
  g.term = c.term;
  g.leader = c.leader;
  return { changed: true, value };
}

function sortMembers(g: GroupRecord): void {
  g.members.sort((a, b) => a.node - b.node);
}

/** Replacement step 1: the new replica joins as a learner (taken from the pool if it is a spare). */
export function addLearner(s: CatalogState, c: Cmd<'addLearner'>): Applied<'addLearner'> {
  const g = getGroup(s, c.group);
  const value = { group: g.id, node: c.node };
  const existing = memberOf(g, c.node);
  if (existing !== undefined) {
    check(
      existing.role === 'learner' && existing.replaces === c.replaces,
      'MEMBERSHIP_CONFLICT',
      `node ${c.node} is already a member of group ${g.id}`,
    );
    return { changed: false, value };
  }
  const n = checkJoinable(s, c.node);
  if (c.replaces !== null) {
    check(memberOf(g, c.replaces)?.role === 'voter', 'MEMBERSHIP_CONFLICT', `${c.replaces} is not a voter`);
    check(
      !g.members.some((m) => m.replaces === c.replaces),
      'MEMBERSHIP_CONFLICT',
      `node ${c.replaces} is already being replaced in group ${g.id}`,
    );
  }
  check(g.members.length <= limits.groupVotersMax, 'MEMBERSHIP_CONFLICT', `group ${g.id} is full`);
  leaveSparePool(s, n);
  g.members.push({ node: c.node, role: 'learner', replaces: c.replaces });
  sortMembers(g);
  return { changed: true, value };
}

/** Replacement step 2: a caught-up learner becomes a voter. */
export function promote(s: CatalogState, c: Cmd<'promote'>): Applied<'promote'> {
  const g = getGroup(s, c.group);
  const m = memberOf(g, c.node) ?? fail('MEMBERSHIP_CONFLICT', `node ${c.node} is not in group ${g.id}`);
  const value = { group: g.id, node: c.node };
  if (m.role === 'voter') return { changed: false, value };
  const voterCount = voters(g).length;
  const afterRemoval = m.replaces !== null ? voterCount : voterCount + 1;
  check(afterRemoval <= limits.groupVotersMax, 'MEMBERSHIP_CONFLICT', `group ${g.id} has too many voters`);
  m.role = 'voter';
  return { changed: true, value };
}

/** Replacement step 3: the old replica leaves (it deletes its data and never campaigns). */
export function removeMember(s: CatalogState, c: Cmd<'removeMember'>): Applied<'removeMember'> {
  const g = getGroup(s, c.group);
  const value = { group: g.id, node: c.node };
  const m = memberOf(g, c.node);
  if (m === undefined) return { changed: false, value };
  const remaining = g.members.filter((x) => x.node !== c.node);
  check(
    remaining.some((x) => x.role === 'voter'),
    'MEMBERSHIP_CONFLICT',
    `node ${c.node} is the last voter of group ${g.id}`,
  );
  for (const x of remaining) if (x.replaces === c.node) x.replaces = null;
  g.members = remaining;
  if (g.leader === c.node) g.leader = null;
  return { changed: true, value };
}

export function groupIdsSorted(s: CatalogState): GroupId[] {
  return [...s.groups.keys()].sort((a, b) => a - b);
}
