import { describe, expect, it } from 'vitest';
import { type GroupId, groupId, type NodeId, nodeId, term } from '../../src/lib/ids.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { cap, cluster, ok, refused, register } from './helpers.js';

describe('registerNode', () => {
  it('assigns increasing ids from 1, once per node key, idempotent on retry', () => {
    const c = new Catalog();
    const cmd = {
      type: 'registerNode' as const,
      nodeKey: 'k-a',
      address: 'h:1',
      role: 'storage' as const,
      capacity: cap,
      atMs: 5,
    };
    const first = c.apply(cmd);
    expect(first).toMatchObject({ ok: true, changed: true, version: 1, value: { node: 1, created: true } });
    const retry = c.apply(cmd);
    expect(retry).toMatchObject({ ok: true, changed: false, version: 1, value: { node: 1, created: false } });
    expect(ok(c, { ...cmd, nodeKey: 'k-b' }).node).toBe(2);
    expect(c.node(nodeId(1))).toMatchObject({ key: 'k-a', address: 'h:1', state: 'up', registeredAtMs: 5 });
  });

  it('updates the address of a known node (a restart on a new port) and moves the version', () => {
    const c = new Catalog();
    const id = register(c, 'n1');
    const v = c.version;
    const r = c.apply({
      type: 'registerNode',
      nodeKey: 'n1',
      address: 'other:9',
      role: 'storage',
      capacity: cap,
      atMs: 9,
    });
    expect(r).toMatchObject({ ok: true, changed: true, version: v + 1, value: { node: id, created: false } });
    expect(c.node(id)?.address).toBe('other:9');
  });

  it('never reuses ids: a removed node cannot rejoin with its key, a new key gets a new id', () => {
    const c = new Catalog();
    const a = register(c, 'n1');
    ok(c, { type: 'markNode', node: a, state: 'removed' });
    refused(
      c,
      { type: 'registerNode', nodeKey: 'n1', address: 'h:1', role: 'storage', capacity: cap, atMs: 1 },
      'NODE_REMOVED',
    );
    expect(register(c, 'n1-wiped')).toBe(2);
  });

  it.each([
    ['empty key', { nodeKey: '' }],
    ['long key', { nodeKey: 'k'.repeat(129) }],
    ['empty address', { address: '' }],
    ['bad role', { role: 'chef' }],
    ['bad capacity', { capacity: { replicasMax: -1, diskBytes: 1 } }],
    ['bad time', { atMs: -1 }],
  ])('refuses %s with BAD_REQUEST', (_name, patch) => {
    const c = new Catalog();
    const cmd = {
      type: 'registerNode',
      nodeKey: 'k',
      address: 'h:1',
      role: 'storage',
      capacity: cap,
      atMs: 1,
      ...patch,
    };
    refused(c, cmd as never, 'BAD_REQUEST');
  });

  it('refuses a known key registering with another role', () => {
    const c = new Catalog();
    register(c, 'n1');
    refused(
      c,
      { type: 'registerNode', nodeKey: 'n1', address: 'h:1', role: 'request', capacity: cap, atMs: 1 },
      'BAD_REQUEST',
    );
  });
});

describe('markNode and the free pool', () => {
  it('marks up/down, idempotently; removed is final and needs a node without replicas', () => {
    const { c, nodes } = cluster(4, 1);
    const [n1, , , n4] = nodes as [NodeId, NodeId, NodeId, NodeId];
    expect(c.apply({ type: 'markNode', node: n1, state: 'down' })).toMatchObject({ ok: true, changed: true });
    expect(c.apply({ type: 'markNode', node: n1, state: 'down' })).toMatchObject({
      ok: true,
      changed: false,
    });
    refused(c, { type: 'markNode', node: n1, state: 'removed' }, 'MEMBERSHIP_CONFLICT');
    ok(c, { type: 'markNode', node: n4, state: 'removed' });
    refused(c, { type: 'markNode', node: n4, state: 'up' }, 'NODE_REMOVED');
    refused(c, { type: 'markNode', node: nodeId(99), state: 'up' }, 'NODE_NOT_FOUND');
    refused(c, { type: 'markNode', node: n1, state: 'spare' as never }, 'BAD_REQUEST');
  });

  it('addSpare puts idle up storage nodes in the sorted pool; takeSpare takes the roomiest', () => {
    const c = new Catalog();
    const a = register(c, 'a');
    const b = ok(c, {
      type: 'registerNode',
      nodeKey: 'b',
      address: 'h:2',
      role: 'storage',
      capacity: { replicasMax: 500, diskBytes: 1 },
      atMs: 1,
    }).node;
    ok(c, { type: 'addSpare', node: b });
    ok(c, { type: 'addSpare', node: a });
    expect(c.apply({ type: 'addSpare', node: a })).toMatchObject({ ok: true, changed: false });
    expect(c.state.spares).toEqual([a, b]);
    expect(c.node(a)?.state).toBe('spare');
    expect(ok(c, { type: 'takeSpare' }).node).toBe(b);
    expect(ok(c, { type: 'takeSpare', node: a }).node).toBe(a);
    expect(c.state.spares).toEqual([]);
    expect(c.node(a)?.state).toBe('up');
    refused(c, { type: 'takeSpare' }, 'NO_SPARE_NODE');
    refused(c, { type: 'takeSpare', node: a }, 'NO_SPARE_NODE');
  });

  it('addSpare refuses a node hosting replicas, a down node, and a non-storage node', () => {
    const { c, nodes } = cluster(4, 1);
    refused(c, { type: 'addSpare', node: nodes[0]! }, 'MEMBERSHIP_CONFLICT');
    ok(c, { type: 'markNode', node: nodes[3]!, state: 'down' });
    refused(c, { type: 'addSpare', node: nodes[3]! }, 'MEMBERSHIP_CONFLICT');
    const rm = register(c, 'rm', 'request');
    refused(c, { type: 'addSpare', node: rm }, 'MEMBERSHIP_CONFLICT');
  });

  it('a spare that goes down leaves the pool, and marking a spare up keeps it there', () => {
    const c = new Catalog();
    const a = register(c, 'a');
    ok(c, { type: 'addSpare', node: a });
    expect(c.apply({ type: 'markNode', node: a, state: 'up' })).toMatchObject({ ok: true, changed: false });
    expect(c.state.spares).toEqual([a]);
    ok(c, { type: 'markNode', node: a, state: 'down' });
    expect(c.state.spares).toEqual([]);
    expect(c.node(a)?.state).toBe('down');
  });
});

describe('groups', () => {
  it('createGroup takes members (spares leave the pool), sorted, with no leader at term 0', () => {
    const c = new Catalog();
    const [a, b, d] = [register(c, 'a'), register(c, 'b'), register(c, 'd')];
    ok(c, { type: 'addSpare', node: b });
    const g = ok(c, { type: 'createGroup', members: [d, b, a], atMs: 7 }).group;
    expect(g).toBe(1);
    expect(c.group(g)).toEqual({
      id: g,
      members: [a, b, d].map((node) => ({ node, role: 'voter', replaces: null })),
      leader: null,
      term: 0,
      createdAtMs: 7,
    });
    expect(c.state.spares).toEqual([]);
    expect(c.node(b)?.state).toBe('up');
  });

  it.each([
    ['even count', (n: NodeId[]) => n.slice(0, 2), 'BAD_REQUEST'],
    ['too many', (n: NodeId[]) => n.slice(0, 7), 'BAD_REQUEST'],
    ['none', () => [], 'BAD_REQUEST'],
    ['duplicates', (n: NodeId[]) => [n[0]!, n[0]!, n[1]!], 'BAD_REQUEST'],
    ['unknown node', (n: NodeId[]) => [n[0]!, n[1]!, nodeId(77)], 'NODE_NOT_FOUND'],
  ] as const)('createGroup refuses %s', (_name, pick, code) => {
    const { c, nodes } = cluster(7, 0);
    refused(c, { type: 'createGroup', members: [...pick(nodes)], atMs: 1 }, code);
  });

  it('createGroup refuses a down node and a metadata node', () => {
    const { c, nodes } = cluster(3, 0);
    const mm = register(c, 'mm', 'metadata');
    refused(c, { type: 'createGroup', members: [nodes[0]!, nodes[1]!, mm], atMs: 1 }, 'MEMBERSHIP_CONFLICT');
    ok(c, { type: 'markNode', node: nodes[2]!, state: 'down' });
    refused(c, { type: 'createGroup', members: nodes, atMs: 1 }, 'MEMBERSHIP_CONFLICT');
  });

  it('setGroupLeader: terms only grow, one leader per term, leader must be a voter', () => {
    const { c, nodes, groups } = cluster(4, 1);
    const g = groups[0]!;
    const [a, b] = nodes as [NodeId, NodeId];
    ok(c, { type: 'setGroupLeader', group: g, leader: a, term: term(3) });
    expect(c.group(g)).toMatchObject({ leader: a, term: 3 });
    const v = c.version;
    expect(c.apply({ type: 'setGroupLeader', group: g, leader: a, term: term(3) })).toMatchObject({
      ok: true,
      changed: false,
      version: v,
    });
    refused(c, { type: 'setGroupLeader', group: g, leader: b, term: term(3) }, 'STALE_TERM');
    refused(c, { type: 'setGroupLeader', group: g, leader: b, term: term(2) }, 'STALE_TERM');
    refused(c, { type: 'setGroupLeader', group: g, leader: nodes[3]!, term: term(4) }, 'MEMBERSHIP_CONFLICT');
    refused(c, { type: 'setGroupLeader', group: groupId(9), leader: a, term: term(4) }, 'GROUP_NOT_FOUND');
    ok(c, { type: 'setGroupLeader', group: g, leader: null, term: term(4) });
    ok(c, { type: 'setGroupLeader', group: g, leader: b, term: term(4) });
    expect(c.group(g)).toMatchObject({ leader: b, term: 4 });
  });
});

describe('replica replacement steps', () => {
  function setup(): { c: Catalog; g: GroupId; old: NodeId; spare: NodeId; n: NodeId[] } {
    const { c, nodes, groups } = cluster(4, 1);
    const spare = nodes[3]!;
    ok(c, { type: 'addSpare', node: spare });
    ok(c, { type: 'setGroupLeader', group: groups[0]!, leader: nodes[1]!, term: term(1) });
    return { c, g: groups[0]!, old: nodes[0]!, spare, n: nodes };
  }

  it('addLearner -> promote -> removeMember, the catalog following each step', () => {
    const { c, g, old, spare, n } = setup();
    ok(c, { type: 'addLearner', group: g, node: spare, replaces: old });
    expect(c.state.spares).toEqual([]);
    expect(c.group(g)?.members.find((m) => m.node === spare)).toEqual({
      node: spare,
      role: 'learner',
      replaces: old,
    });
    expect(c.apply({ type: 'addLearner', group: g, node: spare, replaces: old })).toMatchObject({
      changed: false,
    });
    ok(c, { type: 'promote', group: g, node: spare });
    expect(c.apply({ type: 'promote', group: g, node: spare })).toMatchObject({ changed: false });
    ok(c, { type: 'removeMember', group: g, node: old });
    expect(c.apply({ type: 'removeMember', group: g, node: old })).toMatchObject({ changed: false });
    expect(c.group(g)?.members).toEqual(
      [n[1]!, n[2]!, spare].map((node) => ({ node, role: 'voter', replaces: null })),
    );
    expect(c.groupsOfNode(old)).toEqual([]);
  });

  it('refuses conflicting membership changes', () => {
    const { c, g, old, spare, n } = setup();
    refused(c, { type: 'addLearner', group: g, node: n[1]!, replaces: null }, 'MEMBERSHIP_CONFLICT');
    refused(c, { type: 'addLearner', group: g, node: spare, replaces: nodeId(50) }, 'MEMBERSHIP_CONFLICT');
    refused(c, { type: 'promote', group: g, node: spare }, 'MEMBERSHIP_CONFLICT');
    ok(c, { type: 'addLearner', group: g, node: spare, replaces: old });
    refused(c, { type: 'addLearner', group: g, node: spare, replaces: null }, 'MEMBERSHIP_CONFLICT');
    const extra = register(c, 'extra');
    refused(c, { type: 'addLearner', group: g, node: extra, replaces: old }, 'MEMBERSHIP_CONFLICT');
  });

  it('removing the leader clears it; removing the last voter is refused', () => {
    const c = new Catalog();
    const a = register(c, 'a');
    const g = ok(c, { type: 'createGroup', members: [a], atMs: 1 }).group;
    refused(c, { type: 'removeMember', group: g, node: a }, 'MEMBERSHIP_CONFLICT');
    const { c: c2, g: g2, n } = setup();
    ok(c2, { type: 'removeMember', group: g2, node: n[1]! });
    expect(c2.group(g2)?.leader).toBeNull();
  });

  it('removing a learner cancels its replacement', () => {
    const { c, g, old, spare } = setup();
    ok(c, { type: 'addLearner', group: g, node: spare, replaces: old });
    ok(c, { type: 'removeMember', group: g, node: spare });
    expect(c.group(g)?.members.every((m) => m.replaces === null && m.role === 'voter')).toBe(true);
  });
});
