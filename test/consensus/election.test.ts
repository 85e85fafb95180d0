import { describe, expect, it } from 'vitest';
import { term } from '../../src/lib/ids.js';
import { Cluster } from './harness.js';

describe('elections', () => {
  it('a directed campaign uses a term above max(own term, requested term)', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(2, 10);
    expect(c.leader().id).toBe(2);
    expect(c.node(2).r.status().term).toBe(10);
    for (const id of [1, 3]) expect(c.node(id).r.status().leader).toBe(2);
  });

  it('voters refuse a candidate whose log is behind theirs; the up-to-date one wins', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    c.propose(1, 'a', 'b');
    c.run(100);
    expect(c.values(2)).toEqual(['a', 'b']);
    c.node(1).down = true;
    c.heal();
    c.run(1200); // stickiness expires
    c.node(3).r.campaign(term(0));
    c.run(200);
    expect(c.leaders()).toEqual([]);
    c.elect(2);
    expect(c.leader().id).toBe(2);
    c.run(200);
    expect(c.values(3)).toEqual(['a', 'b']);
  });

  it("planted bug 'vote-without-log-check': the stale replica wins", () => {
    const c = new Cluster([1, 2, 3], { bugs: ['vote-without-log-check'] });
    c.elect(1);
    c.isolate(3);
    c.propose(1, 'a', 'b');
    c.run(100);
    c.node(1).down = true;
    c.heal();
    c.run(1200);
    c.node(3).r.campaign(term(0));
    c.run(200);
    expect(c.leader().id).toBe(3);
  });

  it('leader stickiness: a campaign against a live leader fails and changes no term', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const t = c.node(1).r.status().term;
    // The candidate itself still hears from the leader: refused at once.
    expect(c.node(3).r.campaign(term(0)).ok).toBe(false);
    // A replica that lost contact campaigns, but the others are sticky.
    c.isolate(3);
    c.run(1100);
    c.heal();
    expect(c.node(3).r.campaign(term(0)).ok).toBe(true);
    c.run(500);
    expect(c.leader().id).toBe(1);
    for (const id of [1, 2, 3]) expect(c.node(id).r.status().term).toBe(t);
  });

  it('a campaign re-asks a voter that refused while its stickiness held (no stall until the timeout)', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.run(300);
    // 2 stops hearing the leader's heartbeats (logs stay equal), 3 keeps hearing them; then 1 dies.
    c.filter = (m) => m.type === 'heartbeat' && m.to === 2;
    c.run(300);
    c.node(1).down = true;
    c.filter = () => false;
    c.run(750); // 2's stickiness is over, 3's is not (it heard the leader ~300 ms later)
    expect(c.node(2).r.campaign(term(0)).ok).toBe(true);
    c.run(100);
    expect(c.node(2).r.status().role).toBe('precandidate'); // 3 refused the pre-vote
    expect(c.node(3).r.status().term).toBe(c.node(1).r.status().term);
    // 3's stickiness ends ~1000 ms after the kill: the re-asked pre-vote wins at once, long before
    // 2's campaign timeout (1000 ms after it started).
    c.run(300);
    expect(c.leader().id).toBe(2);
    expect(c.node(3).r.status().leader).toBe(2);
  });

  it('a campaign ordered while stickiness holds starts by itself once it is over, within the order', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.run(300);
    c.node(1).down = true;
    c.run(200);
    expect(c.node(2).r.campaign(term(9)).ok).toBe(false); // still sticky: refused, kept
    c.run(1000);
    expect(c.leader().id).toBe(2);
    expect(c.node(2).r.status().term).toBe(9);
    // An order kept while the leader stays live lapses with the election timeout: no campaign.
    const d = new Cluster([1, 2, 3]);
    d.elect(1);
    const t = d.node(1).r.status().term;
    expect(d.node(3).r.campaign(term(0)).ok).toBe(false);
    d.run(1100);
    d.node(1).down = true;
    d.run(1000);
    expect(d.node(3).r.status().role).toBe('follower');
    for (const id of [2, 3]) expect(d.node(id).r.status().term).toBe(t);
  });

  it('self mode: a new leader is elected after the leader dies', () => {
    const c = new Cluster([1, 2, 3], { mode: 'self', seed: 5 });
    c.run(3000);
    const first = c.leader();
    first.down = true;
    c.run(3000);
    const second = c.leader();
    expect(second.id).not.toBe(first.id);
    expect(second.r.status().term).toBeGreaterThan(first.r.status().term);
  });

  it('self mode: an isolated replica does not disrupt the group when it comes back (pre-vote)', () => {
    const c = new Cluster([1, 2, 3], { mode: 'self', seed: 9 });
    c.run(3000);
    const l = c.leader();
    const t = l.r.status().term;
    const other = [1, 2, 3].find((id) => id !== l.id)!;
    c.isolate(other);
    c.run(5000);
    expect(c.node(other).r.status().term).toBe(t);
    c.heal();
    c.run(1000);
    expect(c.leader().id).toBe(l.id);
    expect(l.r.status().term).toBe(t);
  });

  it('directed mode falls back to self-election after a long silence', () => {
    const c = new Cluster([1, 2, 3]);
    c.run(3000);
    expect(c.leaders()).toEqual([]);
    c.run(7000); // directedFallbackMs = 5000 (+ jitter < 1000)
    expect(c.leaders().length).toBe(1);
  });

  it('check-quorum: an isolated leader steps down; the rest elect a new one at a higher term', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(1);
    c.run(1200);
    expect(c.node(1).r.status().role).toBe('follower');
    c.elect(2);
    expect(c.node(2).r.status().role).toBe('leader');
    c.heal();
    c.run(300);
    expect(c.leader().id).toBe(2);
    expect(c.node(1).r.status().leader).toBe(2);
  });

  it('a replica that restarts with a term refuses votes for an election timeout', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.node(1).down = true;
    c.restart(2);
    c.restart(3);
    c.node(3).r.campaign(term(0));
    c.run(100);
    expect(c.node(3).r.status().role).not.toBe('leader');
    c.run(1200);
    c.elect(3);
    expect(c.node(3).r.status().role).toBe('leader');
  });

  it('a vote is persisted before it is sent, and survives a restart', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    expect(c.node(2).disk.hardState?.vote).toBe(1);
    expect(c.node(2).disk.hardState?.term).toBe(1);
    const n = c.restart(2);
    expect(n.r.status().term).toBe(1);
  });
});
