import { describe, expect, it } from 'vitest';
import { recordDeepCheck } from '../../src/control/index.js';
import { type GroupId, groupId, type NodeId, nodeId, term } from '../../src/lib/ids.js';
import { ok } from '../metadata/helpers.js';
import { beat, brief, type Catalog, cluster, input, NOW, type RepOpts, rep, run } from './helpers.js';

const G = groupId(1);
const [N1, N2, N3] = [nodeId(1), nodeId(2), nodeId(3)];

/** One group of n1..n3, the catalog's leader n1 at term 3 unless told otherwise. */
function world(leader: NodeId | null = N1, t = 3): Catalog {
  const { c } = cluster(3, 1);
  if (leader !== null) ok(c, { type: 'setGroupLeader', group: G, leader, term: term(t) });
  return c;
}

const live = (node: NodeId, o: RepOpts = {}, ageMs = 100, diskOk = true, stalled = false) =>
  [node, beat(NOW - ageMs, [rep(G as GroupId, { term: 3, ...o })], diskOk, stalled)] as const;

/** The same heartbeats, received as long before `nowMs` as they were before NOW. */
const at = (nowMs: number, beats: readonly (readonly [NodeId, ReturnType<typeof beat>])[]) =>
  beats.map(
    ([n, b]) => [n, { ...b, lastSeenMs: b.lastSeenMs + nowMs - NOW }] as [NodeId, ReturnType<typeof beat>],
  );

describe('liveness', () => {
  it.each([
    [1500, []],
    [1501, [{ kind: 'markNode', node: N3, state: 'down' }]],
  ])('a node silent for %i ms (window 3 x 500 ms) -> %j', (age, expected) => {
    const c = world();
    const d = run(input(c, [live(N1, { role: 'leader' }), live(N2), [N3, beat(NOW - age)]]));
    expect(brief(d).filter((a) => a.kind === 'markNode')).toEqual(expected);
  });

  it('a down node heard from again is marked up; a node never heard from is down after the grace', () => {
    const c = world();
    ok(c, { type: 'markNode', node: N2, state: 'down' });
    const d = run(input(c, [live(N1, { role: 'leader' }), live(N2)]));
    expect(d.actions.filter((a) => a.kind === 'markNode')).toEqual([
      { kind: 'markNode', node: N2, state: 'up', command: { type: 'markNode', node: N2, state: 'up' } },
      { kind: 'markNode', node: N3, state: 'down', command: { type: 'markNode', node: N3, state: 'down' } },
    ]);
  });
});

describe('grace period of a new MM leader', () => {
  it('judges nothing (no down, no campaign, no check) but records facts', () => {
    const c = world(null, 0);
    ok(c, { type: 'markNode', node: N3, state: 'down' });
    // Became leader 1 s ago (grace 4 x 500 ms); n1 silent, n2 leads at term 5, n3 is back.
    const i = input(c, [live(N2, { role: 'leader', term: 5 }, 100, true, true), live(N3, { term: 5 })], {
      leaderSinceMs: NOW - 1000,
    });
    const d = run(i);
    expect(d.inGrace).toBe(true);
    expect(brief(d)).toEqual([
      { kind: 'markNode', node: N3, state: 'up' },
      { kind: 'recordLeader', group: G, leader: N2, term: 5 },
    ]);
  });

  it('a leaderless group gets no campaign until the grace is over', () => {
    const c = world(null, 0);
    const beats = [live(N1, { term: 0 }), live(N2, { term: 0 }), live(N3, { term: 0 })];
    expect(brief(run(input(c, beats, { leaderSinceMs: NOW - 1999 })))).toEqual([]);
    const after = run(input(c, beats, { leaderSinceMs: NOW - 2000 }));
    expect(after.inGrace).toBe(false);
    expect(brief(after)).toEqual([{ kind: 'campaign', group: G, node: N1, minTerm: 1, reason: 'new-group' }]);
  });
});

describe('directed elections', () => {
  const cases: {
    name: string;
    leader?: NodeId | null;
    beats: ReturnType<typeof live>[];
    expected: Record<string, unknown>[];
  }[] = [
    {
      name: 'a new group gets its first leader (equal logs: lowest id)',
      leader: null,
      beats: [live(N3, { term: 0, last: 0 }), live(N2, { term: 0, last: 0 }), live(N1, { term: 0, last: 0 })],
      expected: [{ kind: 'campaign', group: G, node: N1, minTerm: 1, reason: 'new-group' }],
    },
    {
      name: 'leader missed its heartbeats: the most up-to-date log (index) campaigns above every term',
      beats: [live(N1, { role: 'leader' }, 1501), live(N2, { last: 10 }), live(N3, { last: 12 })],
      expected: [
        { kind: 'markNode', node: N1, state: 'down' },
        { kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'leader-missed-heartbeats' },
      ],
    },
    {
      name: 'the last log term counts before the index',
      beats: [live(N2, { lastTerm: 2, last: 100 }), live(N3, { lastTerm: 3, last: 5 })],
      expected: [
        { kind: 'markNode', node: N1, state: 'down' },
        { kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'leader-missed-heartbeats' },
      ],
    },
    {
      name: 'a replica with a failing disk never campaigns',
      beats: [live(N1, {}, 9000), live(N2, { last: 50 }, 100, false), live(N3, { last: 12 })],
      expected: [
        { kind: 'markNode', node: N1, state: 'down' },
        { kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'leader-missed-heartbeats' },
      ],
    },
    {
      name: 'the minimum term is above the highest term any replica reports',
      beats: [
        live(N1, { term: 3 }),
        live(N2, { term: 7, lastTerm: 3, last: 11 }),
        live(N3, { term: 5, lastTerm: 3 }),
      ],
      expected: [{ kind: 'campaign', group: G, node: N2, minTerm: 8, reason: 'no-leader' }],
    },
    {
      name: 'a live leader with a failing disk is replaced by campaign',
      beats: [
        live(N1, { role: 'leader', last: 20 }, 100, false),
        live(N2, { last: 9 }),
        live(N3, { last: 10 }),
      ],
      expected: [{ kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'leader-unhealthy' }],
    },
    {
      name: 'without a live majority nothing can be elected: noQuorum',
      beats: [live(N2)],
      expected: [
        { kind: 'markNode', node: N1, state: 'down' },
        { kind: 'markNode', node: N3, state: 'down' },
        { kind: 'noQuorum', group: G, liveVoters: 1, voters: 3 },
      ],
    },
    {
      name: 'a live leader the catalog does not know yet is recorded',
      beats: [live(N1, { term: 4 }), live(N2, { role: 'leader', term: 4 }), live(N3, { term: 4 })],
      expected: [{ kind: 'recordLeader', group: G, leader: N2, term: 4 }],
    },
    {
      name: 'a healthy known leader: nothing to do',
      beats: [live(N1, { role: 'leader' }), live(N2), live(N3)],
      expected: [],
    },
    {
      name: 'a learner report never counts as a leader claim or a candidate',
      leader: null,
      beats: [live(N1, { role: 'learner', last: 99 }), live(N2, { last: 3 }), live(N3, { last: 4 })],
      expected: [{ kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'no-leader' }],
    },
  ];

  it.each(cases)('$name', ({ leader, beats, expected }) => {
    const c = world(leader === undefined ? N1 : leader, leader === null ? 0 : 3);
    expect(brief(run(input(c, [...beats])))).toEqual(expected);
  });

  it('a campaign order is not repeated before campaignTimeoutMs; then a new one goes higher', () => {
    const c = world();
    const beats = [live(N2, { last: 10 }), live(N3, { last: 12 })];
    const d1 = run(input(c, beats));
    expect(d1.memory.campaigns.get(G)).toEqual({ node: N3, term: 4, atMs: NOW });
    const d2 = run(input(c, at(NOW + 1499, beats), { nowMs: NOW + 1499, memory: d1.memory }));
    expect(brief(d2).filter((a) => a.kind === 'campaign')).toEqual([]);
    const d3 = run(input(c, at(NOW + 1500, beats), { nowMs: NOW + 1500, memory: d2.memory }));
    expect(brief(d3).filter((a) => a.kind === 'campaign')).toEqual([
      { kind: 'campaign', group: G, node: N2, minTerm: 5, reason: 'leader-missed-heartbeats' },
    ]);
    // ...and then back to the most up-to-date one if that did not work either.
    const d4 = run(input(c, at(NOW + 3000, beats), { nowMs: NOW + 3000, memory: d3.memory }));
    expect(brief(d4).filter((a) => a.kind === 'campaign')).toEqual([
      { kind: 'campaign', group: G, node: N3, minTerm: 6, reason: 'leader-missed-heartbeats' },
    ]);
  });

  it('a candidate whose campaign produced no leader in time is passed over once', () => {
    const c = world();
    const d1 = run(input(c, [live(N2, { last: 10 }), live(N3, { last: 12 })]));
    expect(d1.memory.campaigns.get(G)).toEqual({ node: N3, term: 4, atMs: NOW });
    // n3 (cut off from the other voters, its pre-vote failing) is still no leader 1.5 s later.
    const beats = at(NOW + 1500, [live(N2, { last: 10 }), live(N3, { last: 13 })]);
    const d2 = run(input(c, beats, { nowMs: NOW + 1500, memory: d1.memory }));
    expect(brief(d2).filter((a) => a.kind === 'campaign')).toEqual([
      { kind: 'campaign', group: G, node: N2, minTerm: 5, reason: 'leader-missed-heartbeats' },
    ]);
  });

  it('an order that cannot win (a live voter has a longer log) is re-ordered at once, to that voter', () => {
    const c = world();
    const d1 = run(input(c, [live(N2, { last: 10 }), live(N3, { last: 12 })]));
    expect(d1.memory.campaigns.get(G)).toEqual({ node: N3, term: 4, atMs: NOW });
    // n3 campaigns and reports a log behind n2's (n2's last appends arrived after its report):
    // n2 refuses it, and the old leader is silent, so no majority can grant it.
    const hopeless = [live(N2, { last: 14 }), live(N3, { role: 'candidate', last: 12 })];
    const d2 = run(input(c, at(NOW + 200, hopeless), { nowMs: NOW + 200, memory: d1.memory }));
    expect(brief(d2).filter((a) => a.kind === 'campaign')).toEqual([
      { kind: 'campaign', group: G, node: N2, minTerm: 5, reason: 'leader-missed-heartbeats' },
    ]);
    // Equal logs: n2 may still grant once its stickiness is over, so the order stands.
    const waiting = [live(N2, { last: 12 }), live(N3, { role: 'candidate', last: 12 })];
    const d3 = run(input(c, at(NOW + 200, waiting), { nowMs: NOW + 200, memory: d1.memory }));
    expect(brief(d3).filter((a) => a.kind === 'campaign')).toEqual([]);
    // n3 won and replicated its first entry (term 4) before its report says so: no re-order.
    const won = [
      live(N2, { term: 4, last: 13, lastTerm: 4 }),
      live(N3, { role: 'candidate', term: 4, last: 12, lastTerm: 1 }),
    ];
    const d5 = run(input(c, at(NOW + 200, won), { nowMs: NOW + 200, memory: d1.memory }));
    expect(brief(d5).filter((a) => a.kind === 'campaign')).toEqual([]);
    // And the new order (n2, the longest log) is not re-ordered back while it campaigns.
    const back = [live(N2, { role: 'candidate', last: 14 }), live(N3, { last: 12 })];
    const d4 = run(input(c, at(NOW + 400, back), { nowMs: NOW + 400, memory: d2.memory }));
    expect(brief(d4).filter((a) => a.kind === 'campaign')).toEqual([]);
  });

  it('the order is forgotten once a leader at that term shows up', () => {
    const c = world();
    const d1 = run(input(c, [live(N2, { last: 10 }), live(N3, { last: 12 })]));
    const d2 = run(
      input(c, [live(N2, { term: 4 }), live(N3, { role: 'leader', term: 4 })], { memory: d1.memory }),
    );
    expect(d2.memory.campaigns.size).toBe(0);
    expect(brief(d2).filter((a) => a.kind === 'recordLeader')).toEqual([
      { kind: 'recordLeader', group: G, leader: N3, term: 4 },
    ]);
  });
});

describe('deep health checks', () => {
  it.each([
    ['a late leader (one heartbeat missed)', live(N1, { role: 'leader' }, 1001), 'leader-late'],
    ['a stalled leader', live(N1, { role: 'leader' }, 100, true, true), 'leader-stalled'],
    ['a follower at a higher term', live(N1, { role: 'leader' }), 'higher-term-seen'],
  ] as const)('doubt about %s asks for a deep check', (_name, leaderBeat, reason) => {
    const c = world();
    const n3 = reason === 'higher-term-seen' ? live(N3, { term: 4 }) : live(N3);
    const d = run(input(c, [leaderBeat, live(N2), n3]));
    expect(brief(d)).toEqual([{ kind: 'deepCheck', group: G, leader: N1, term: 3, reason }]);
    expect(d.memory.deepChecks.get(G)).toEqual({
      leader: N1,
      term: 3,
      requestedAtMs: NOW,
      ok: null,
      doneAtMs: null,
    });
  });

  const stalled = [
    live(N1, { role: 'leader' }, 100, true, true),
    live(N2, { last: 8 }),
    live(N3, { last: 9 }),
  ];

  it('a running check is not repeated; a failed one deposes the leader', () => {
    const c = world();
    const d1 = run(input(c, stalled));
    const d2 = run(input(c, at(NOW + 500, stalled), { nowMs: NOW + 500, memory: d1.memory }));
    expect(brief(d2)).toEqual([]);
    const failed = recordDeepCheck(d2.memory, {
      group: G,
      leader: N1,
      term: term(3),
      ok: false,
      atMs: NOW + 600,
    });
    const d3 = run(input(c, at(NOW + 700, stalled), { nowMs: NOW + 700, memory: failed }));
    expect(brief(d3)).toEqual([
      { kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'leader-failed-check' },
    ]);
  });

  it('a check that does not answer within deepCheckTimeoutMs counts as failed', () => {
    const c = world();
    const d1 = run(input(c, stalled));
    expect(brief(run(input(c, at(NOW + 2000, stalled), { nowMs: NOW + 2000, memory: d1.memory })))).toEqual(
      [],
    );
    const d3 = run(input(c, at(NOW + 2001, stalled), { nowMs: NOW + 2001, memory: d1.memory }));
    expect(brief(d3)).toEqual([
      { kind: 'campaign', group: G, node: N3, minTerm: 4, reason: 'leader-failed-check' },
    ]);
  });

  it('a passed check quiets doubt for deepCheckIntervalMinMs', () => {
    const c = world();
    const d1 = run(input(c, stalled));
    const passed = recordDeepCheck(d1.memory, {
      group: G,
      leader: N1,
      term: term(3),
      ok: true,
      atMs: NOW + 100,
    });
    expect(brief(run(input(c, at(NOW + 5099, stalled), { nowMs: NOW + 5099, memory: passed })))).toEqual([]);
    expect(brief(run(input(c, at(NOW + 5100, stalled), { nowMs: NOW + 5100, memory: passed })))).toEqual([
      { kind: 'deepCheck', group: G, leader: N1, term: 3, reason: 'leader-stalled' },
    ]);
  });

  it('a result for another leader or term is ignored', () => {
    const c = world();
    const d1 = run(input(c, stalled));
    const other = recordDeepCheck(d1.memory, { group: G, leader: N2, term: term(3), ok: false, atMs: NOW });
    expect(other).toBe(d1.memory);
    expect(recordDeepCheck(d1.memory, { group: G, leader: N1, term: term(2), ok: false, atMs: NOW })).toBe(
      d1.memory,
    );
  });
});

describe('purity', () => {
  it('the same input gives the same decision, and the input memory is left alone', () => {
    const c = world();
    const i = input(c, [live(N2, { last: 10 }), live(N3, { last: 12 })]);
    const before = c.snapshot();
    const a = run(i);
    const b = run(i);
    expect(b).toEqual(a);
    expect(i.memory.campaigns.size).toBe(0);
    expect(Buffer.from(c.snapshot()).equals(Buffer.from(before))).toBe(true);
  });

  it('refuses a time that runs backwards (programmer error)', () => {
    const c = world();
    expect(() => run(input(c, [], { nowMs: 5, leaderSinceMs: 10 }))).toThrow(/monotonic/);
  });
});
