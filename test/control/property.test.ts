import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, isHealthy, type NodeHeartbeat } from '../../src/control/index.js';
import { groupId, type NodeId, nodeId, term } from '../../src/lib/ids.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { checkInvariants } from '../../src/metadata/state.js';
import { register } from '../metadata/helpers.js';
import { beat, input, NOW, rep } from './helpers.js';

const nodeCount = 8;

/** Two groups of 3 from nodes 1..8 (random members), random leaders/terms, the rest maybe spares. */
const worldArb = fc.record({
  members: fc.tuple(
    fc.uniqueArray(fc.integer({ min: 1, max: nodeCount }), { minLength: 3, maxLength: 3 }),
    fc.uniqueArray(fc.integer({ min: 1, max: nodeCount }), { minLength: 3, maxLength: 3 }),
  ),
  leaders: fc.tuple(fc.integer({ min: -1, max: 2 }), fc.integer({ min: -1, max: 2 })),
  spareMask: fc.integer({ min: 0, max: 255 }),
  learner: fc.option(fc.tuple(fc.integer({ min: 1, max: nodeCount }), fc.integer({ min: 0, max: 2 })), {
    nil: null,
  }),
});

const beatArb = fc.record({
  present: fc.boolean(),
  ageMs: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 40_000 })),
  diskOk: fc.boolean(),
  stalled: fc.boolean(),
  term: fc.integer({ min: 0, max: 6 }),
  lastTerm: fc.integer({ min: 0, max: 6 }),
  last: fc.integer({ min: 0, max: 300 }),
  leads: fc.boolean(),
});

type World = typeof worldArb extends fc.Arbitrary<infer T> ? T : never;
type Beat = typeof beatArb extends fc.Arbitrary<infer T> ? T : never;

function build(w: World): Catalog {
  const c = new Catalog();
  for (let i = 1; i <= nodeCount; i++) register(c, `n${i}`);
  w.members.forEach((m, gi) => {
    const r = c.apply({ type: 'createGroup', members: m.map(nodeId), atMs: 0 });
    if (!r.ok) return;
    const li = w.leaders[gi]!;
    if (li >= 0)
      c.apply({ type: 'setGroupLeader', group: r.value.group, leader: nodeId(m[li]!), term: term(2) });
  });
  if (w.learner !== null) {
    const old = c.group(groupId(1))?.members[w.learner[1]]?.node ?? null;
    c.apply({ type: 'addLearner', group: groupId(1), node: nodeId(w.learner[0]), replaces: old });
  }
  for (let i = 1; i <= nodeCount; i++)
    if (w.spareMask & (1 << (i - 1))) c.apply({ type: 'addSpare', node: nodeId(i) });
  return c;
}

function heartbeats(c: Catalog, beats: Beat[]): [NodeId, NodeHeartbeat][] {
  const out: [NodeId, NodeHeartbeat][] = [];
  beats.forEach((b, i) => {
    const id = nodeId(i + 1);
    if (!b.present) return;
    const reps = [...c.state.groups.values()]
      .filter((g) => g.members.some((m) => m.node === id))
      .map((g) =>
        rep(g.id, {
          term: b.term,
          lastTerm: Math.min(b.lastTerm, b.term),
          last: b.last,
          role: b.leads ? 'leader' : 'follower',
        }),
      );
    out.push([id, beat(NOW - b.ageMs, reps, b.diskOk, b.stalled)]);
  });
  return out;
}

describe('control decisions (property)', () => {
  it('are deterministic, their catalog commands all apply in order, and campaigns are sound', () => {
    fc.assert(
      fc.property(
        worldArb,
        fc.array(beatArb, { minLength: nodeCount, maxLength: nodeCount }),
        fc.integer({ min: 0, max: 60_000 }),
        (w, bs, leaderAgeMs) => {
          const c = build(w);
          const i = input(c, heartbeats(c, bs), { leaderSinceMs: NOW - leaderAgeMs });
          const d = decide(i);
          expect(decide(i)).toEqual(d);
          for (const a of d.actions) {
            if (a.kind === 'campaign') {
              const g = c.group(a.group)!;
              expect(g.members.find((m) => m.node === a.node)?.role).toBe('voter');
              expect(isHealthy(i, a.node)).toBe(true);
              for (const [, hb] of i.heartbeats) {
                for (const r of hb.replicas)
                  if (r.group === a.group) expect(a.minTerm).toBeGreaterThan(r.term);
              }
              expect(a.minTerm).toBeGreaterThan(g.term);
            }
          }
          for (const a of d.actions) {
            const cmd = 'command' in a ? a.command : null;
            if (cmd === null) continue;
            const r = c.apply(cmd);
            expect(r.ok ? 'ok' : `${cmd.type}: ${r.code} ${r.message}`).toBe('ok');
          }
          checkInvariants(c.state as never);
        },
      ),
      { numRuns: 400, seed: 77 },
    );
  });
});
