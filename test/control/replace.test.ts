import { describe, expect, it } from 'vitest';
import type { NodeHeartbeat } from '../../src/control/index.js';
import { type GroupId, groupId, type NodeId, nodeId, term } from '../../src/lib/ids.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { ok, register } from '../metadata/helpers.js';
import { beat, brief, follow, input, NOW, rep, run } from './helpers.js';

const n = (i: number): NodeId => nodeId(i);
const g = (i: number): GroupId => groupId(i);

/**
 * Nodes n1..n`count`; groups as lists of node numbers (leader = first, term 3); spares by number.
 */
function world(count: number, groups: number[][], spares: number[] = []): Catalog {
  const c = new Catalog();
  for (let i = 1; i <= count; i++) register(c, `n${i}`);
  for (const members of groups) {
    const { group } = ok(c, { type: 'createGroup', members: members.map(n), atMs: 1 });
    ok(c, { type: 'setGroupLeader', group, leader: n(members[0]!), term: term(3) });
  }
  for (const s of spares) ok(c, { type: 'addSpare', node: n(s) });
  return c;
}

/** Heartbeats of the nodes that are not `silent`: each reports its replicas (leader of groups it leads). */
function beats(
  c: Catalog,
  opts: { silent?: Record<number, number>; badDisk?: number[]; applied?: Record<number, number> } = {},
): [NodeId, NodeHeartbeat][] {
  const out: [NodeId, NodeHeartbeat][] = [];
  for (const node of c.state.nodes.values()) {
    const reps = [...c.state.groups.values()]
      .filter((gr) => gr.members.some((m) => m.node === node.id))
      .map((gr) =>
        rep(gr.id, {
          term: 3,
          role: gr.leader === node.id ? 'leader' : 'follower',
          last: 200,
          commit: 200,
          applied: opts.applied?.[node.id] ?? 200,
        }),
      );
    const age = opts.silent?.[node.id] ?? 100;
    out.push([node.id, beat(NOW - age, reps, !(opts.badDisk ?? []).includes(node.id))]);
  }
  return out;
}

/** Registers a storage node (1 byte of disk, `replicasMax` replicas) at time 1. */
function registerStorage(c: Catalog, nodeKey: string, address: string, replicasMax: number): void {
  ok(c, {
    type: 'registerNode',
    nodeKey,
    address,
    role: 'storage',
    capacity: { replicasMax, diskBytes: 1 },
    atMs: 1,
  });
}

const replaces = (d: ReturnType<typeof run>) =>
  brief(d).filter((a) => a.kind === 'replace' || a.kind === 'noSpare' || a.kind === 'returnToPool');

describe('replica replacement', () => {
  it('runs the whole plan, the catalog following each step: add learner, catch up, promote, remove old', () => {
    const c = world(4, [[1, 2, 3]], [4]);
    const step = (o: Parameters<typeof beats>[1]) => {
      const d = run(input(c, beats(c, o)));
      follow(c, d);
      return replaces(d);
    };
    const dead = { 3: 30_001 };
    expect(step({ silent: dead })).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(4), step: 'addLearner' },
    ]);
    expect(c.group(g(1))?.members.find((m) => m.node === n(4))).toEqual({
      node: n(4),
      role: 'learner',
      replaces: n(3),
    });
    expect(c.state.spares).toEqual([]);
    expect(step({ silent: dead, applied: { 4: 135 } })).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(4), step: 'waitCatchUp' },
    ]);
    expect(step({ silent: dead, applied: { 4: 136 } })).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(4), step: 'promote' },
    ]);
    expect(step({ silent: dead })).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(4), step: 'removeOld' },
    ]);
    expect(c.group(g(1))?.members.map((m) => [m.node, m.role, m.replaces])).toEqual([
      [n(1), 'voter', null],
      [n(2), 'voter', null],
      [n(4), 'voter', null],
    ]);
    expect(step({ silent: dead })).toEqual([]);
    expect(c.node(n(3))?.state).toBe('down');
    // The old node comes back: it is marked up, then, hosting nothing, returns to the pool.
    expect(step({})).toEqual([]);
    expect(c.node(n(3))?.state).toBe('up');
    expect(step({})).toEqual([{ kind: 'returnToPool', node: n(3) }]);
    expect(c.state.spares).toEqual([n(3)]);
  });

  it.each([
    [30_000, []],
    [30_001, [{ kind: 'replace', group: g(1), oldNode: n(3), newNode: n(4), step: 'addLearner' }]],
  ])('a node silent for %i ms (replaceAfterMs 30000) -> %j', (age, expected) => {
    const c = world(4, [[1, 2, 3]], [4]);
    expect(replaces(run(input(c, beats(c, { silent: { 3: age } }))))).toEqual(expected);
  });

  it('a node never heard from counts its silence from the MM leader start', () => {
    const c = world(4, [[1, 2, 3]], [4]);
    const hb = beats(c).filter(([id]) => id !== n(3));
    expect(replaces(run(input(c, hb, { leaderSinceMs: NOW - 30_000 })))).toEqual([]);
    expect(replaces(run(input(c, hb, { leaderSinceMs: NOW - 30_001 })))).toHaveLength(1);
  });

  it('a live node whose disk fails is replaced at once', () => {
    const c = world(4, [[1, 2, 3]], [4]);
    expect(replaces(run(input(c, beats(c, { badDisk: [2] }))))).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(2), newNode: n(4), step: 'addLearner' },
    ]);
  });

  it('without a live healthy spare: noSpare', () => {
    const c = world(5, [[1, 2, 3]], [4, 5]);
    const d = run(input(c, beats(c, { silent: { 3: 40_000, 4: 40_000 }, badDisk: [5] })));
    expect(replaces(d)).toEqual([{ kind: 'noSpare', group: g(1), oldNode: n(3) }]);
  });

  it('one spare takes every replica of the same dead node, in the same tick and later ones', () => {
    const c = world(
      6,
      [
        [1, 2, 3],
        [4, 5, 3],
      ],
      [6],
    );
    const d = run(input(c, beats(c, { silent: { 3: 40_000 } })));
    expect(replaces(d)).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(6), step: 'addLearner' },
      { kind: 'replace', group: g(2), oldNode: n(3), newNode: n(6), step: 'addLearner' },
    ]);
    // Only the first step was carried out; the next tick reuses n6 though it left the pool.
    const first = d.actions.find((a) => a.kind === 'replace');
    if (first?.kind !== 'replace' || first.command === null) throw new Error('no command');
    ok(c, first.command as never);
    expect(replaces(run(input(c, beats(c, { silent: { 3: 40_000 }, applied: { 6: 0 } }))))).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(6), step: 'waitCatchUp' },
      { kind: 'replace', group: g(2), oldNode: n(3), newNode: n(6), step: 'addLearner' },
    ]);
  });

  it('different dead nodes get different spares, the roomiest first', () => {
    const c = world(8, [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    registerStorage(c, 'n8', 'h:8', 999);
    ok(c, { type: 'addSpare', node: n(7) });
    ok(c, { type: 'addSpare', node: n(8) });
    expect(replaces(run(input(c, beats(c, { silent: { 3: 40_000, 6: 40_000 } }))))).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(8), step: 'addLearner' },
      { kind: 'replace', group: g(2), oldNode: n(6), newNode: n(7), step: 'addLearner' },
    ]);
  });

  it('one replacement per group at a time', () => {
    const c = world(
      5,
      [[1, 2, 3, 4, 5]].map((m) => m),
      [],
    );
    registerStorage(c, 's1', 'h', 1);
    registerStorage(c, 's2', 'h', 1);
    ok(c, { type: 'addSpare', node: n(6) });
    ok(c, { type: 'addSpare', node: n(7) });
    const d = run(input(c, beats(c, { silent: { 4: 40_000, 5: 40_000 } })));
    expect(replaces(d)).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(4), newNode: n(6), step: 'addLearner' },
    ]);
  });

  it('a learner that fails before promotion is abandoned (removed)', () => {
    const c = world(4, [[1, 2, 3]], [4]);
    ok(c, { type: 'addLearner', group: g(1), node: n(4), replaces: n(3) });
    const d = run(input(c, beats(c, { silent: { 3: 40_000 }, badDisk: [4] })));
    expect(d.actions.filter((a) => a.kind === 'replace')).toEqual([
      {
        kind: 'replace',
        group: g(1),
        oldNode: n(3),
        newNode: n(4),
        step: 'abandon',
        command: { type: 'removeMember', group: g(1), node: n(4) },
      },
    ]);
  });

  it('no replacement step while the group has no live leader (it campaigns first)', () => {
    const c = world(4, [[1, 2, 3]], [4]);
    const d = run(input(c, beats(c, { silent: { 1: 40_000 } })));
    expect(replaces(d)).toEqual([]);
    expect(brief(d).some((a) => a.kind === 'campaign')).toBe(true);
  });

  it('nothing is replaced, and nothing returns to the pool, during the grace period', () => {
    const c = world(5, [[1, 2, 3]], [4]);
    const d = run(input(c, beats(c, { silent: { 3: 40_000 } }), { leaderSinceMs: NOW - 100 }));
    expect(d.inGrace).toBe(true);
    expect(replaces(d)).toEqual([]);
    expect(replaces(run(input(c, beats(c, { silent: { 3: 40_000 } }))))).toEqual([
      { kind: 'replace', group: g(1), oldNode: n(3), newNode: n(4), step: 'addLearner' },
      { kind: 'returnToPool', node: n(5) },
    ]);
  });
});
