import { describe, expect, it } from 'vitest';
import { type NodeId, term } from '../../src/lib/ids.js';
import { Cluster, enc } from './harness.js';

const n = (x: number) => x as NodeId;

describe('membership changes', () => {
  it('add a learner, let it catch up, promote it, remove an old voter', () => {
    const c = new Cluster([1, 2, 3], { learners: [] });
    c.start(n(4), { entries: [], appliedIndex: 0 });
    const l = c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    expect(l.r.proposeMembership({ type: 'add-learner', node: n(4) }, c.wallNs).ok).toBe(true);
    // One change at a time.
    const busy = l.r.proposeMembership({ type: 'remove', node: n(3) }, c.wallNs);
    expect(busy.ok).toBe(false);
    c.run(300);
    expect(l.r.status().membership).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.values(4)).toEqual(['a']);
    // A learner does not count for the quorum: two voters down -> no commit.
    c.node(2).down = true;
    c.node(3).down = true;
    c.propose(1, 'b');
    c.run(100);
    expect(c.values(1)).toEqual(['a']);
    c.node(2).down = false;
    c.node(3).down = false;
    c.run(200);
    expect(l.r.proposeMembership({ type: 'promote', node: n(4) }, c.wallNs).ok).toBe(true);
    c.run(200);
    expect(l.r.status().membership.voters).toEqual([1, 2, 3, 4]);
    expect(l.r.proposeMembership({ type: 'remove', node: n(3) }, c.wallNs).ok).toBe(true);
    c.run(200);
    expect(l.r.status().membership).toEqual({ voters: [1, 2, 4], learners: [] });
    const st3 = c.node(3).r.status();
    expect(st3.removed).toBe(true);
    // A removed replica never campaigns.
    expect(c.node(3).r.campaign(term(0)).ok).toBe(false);
    c.propose(1, 'c');
    c.run(200);
    expect(c.values(4)).toEqual(['a', 'b', 'c']);
  });

  it('promoting a learner that has not caught up is refused', () => {
    const c = new Cluster([1, 2, 3]);
    c.start(n(4), { entries: [], appliedIndex: 0 });
    const l = c.elect(1);
    c.node(4).down = true;
    l.r.proposeMembership({ type: 'add-learner', node: n(4) }, c.wallNs);
    c.run(200);
    c.propose(1, 'a');
    c.run(100);
    const res = l.r.proposeMembership({ type: 'promote', node: n(4) }, c.wallNs);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.code).toBe('UNAVAILABLE');
  });

  it('a removed leader steps down and the others go on', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    l.r.proposeMembership({ type: 'remove', node: n(1) }, c.wallNs);
    c.run(200);
    expect(l.r.status()).toMatchObject({ role: 'follower', removed: true });
    c.run(1100);
    c.elect(2);
    c.propose(2, 'x');
    c.run(100);
    expect(c.values(3)).toEqual(['x']);
    expect(c.node(2).r.status().membership.voters).toEqual([2, 3]);
  });

  it('a learner neither votes nor campaigns', () => {
    const c = new Cluster([1, 2, 3], { learners: [4] });
    c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    expect(c.values(4)).toEqual(['a']);
    expect(c.node(4).r.campaign(term(0)).ok).toBe(false);
    c.node(1).down = true;
    c.node(2).down = true;
    c.run(1100);
    // 3 needs 2 votes of 3 voters; the learner's does not count.
    c.node(3).r.campaign(term(0));
    c.run(500);
    expect(c.node(3).r.status().role).not.toBe('leader');
  });

  it('invalid changes are refused', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    const r1 = l.r.proposeMembership({ type: 'add-learner', node: n(2) }, c.wallNs);
    const r2 = l.r.proposeMembership({ type: 'promote', node: n(9) }, c.wallNs);
    expect(r1.ok || r2.ok).toBe(false);
    expect(c.node(2).r.proposeMembership({ type: 'remove', node: n(3) }, c.wallNs).ok).toBe(false);
    expect(enc('x').length).toBe(1);
  });
});

describe('leadership transfer', () => {
  it('moves leadership to a caught-up voter despite stickiness', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    const t = l.r.status().term;
    expect(l.r.transferLeadership(n(3)).ok).toBe(true);
    const res = l.r.propose([enc('during')], c.wallNs);
    expect(res.ok).toBe(false);
    c.run(200);
    expect(c.leader().id).toBe(3);
    expect(c.node(3).r.status().term).toBe(t + 1);
    c.propose(3, 'b');
    c.run(100);
    expect(c.values(1)).toEqual(['a', 'b']);
  });

  it('catches a lagging target up first, and aborts after an election timeout if it cannot', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.node(3).down = true;
    c.propose(1, 'a');
    c.run(100);
    expect(l.r.transferLeadership(n(3)).ok).toBe(true);
    c.run(1100);
    expect(c.leader().id).toBe(1);
    expect(l.r.propose([enc('b')], c.wallNs).ok).toBe(true);
  });
});
