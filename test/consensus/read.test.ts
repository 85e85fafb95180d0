import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.js';

describe('linearizable reads', () => {
  it('a leader with a valid lease serves reads locally', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.run(300); // heartbeat rounds acked: lease established
    expect(l.r.status().leaseUntilMs).toBeGreaterThan(c.nowMs);
    expect(l.r.read(1, c.nowMs).ok).toBe(true);
    c.settle();
    expect(l.readStates).toEqual([{ ctx: 1, index: l.r.status().commit, via: 'lease' }]);
  });

  it('readNow: at once under a valid lease with everything committed applied, and only then', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.run(300);
    expect(l.r.readNow(c.nowMs)).toBe(true);
    expect(c.node(2).r.readNow(c.nowMs)).toBe(false); // a follower
    // A proposal committed but not yet applied: the read must wait for it (read() does).
    c.propose(1, 'x');
    let sawCommit = false;
    for (let i = 0; i < 20 && l.r.status().commit <= l.r.status().applied; i++) {
      c.deliver();
      for (const id of [2, 3]) c.drain(c.node(id));
      if (l.r.hasReady()) {
        // Persist the leader's own entries and learn the commit, without applying it yet.
        const rd = l.r.ready();
        c.queue.push(...rd.messages, ...rd.messagesAfterPersist);
        l.r.persisted(rd.number);
        if (rd.committed.length > 0) {
          expect(l.r.readNow(c.nowMs)).toBe(false);
          l.r.applied(rd.committed[rd.committed.length - 1]!.index);
          expect(l.r.readNow(c.nowMs)).toBe(true);
          sawCommit = true;
          break;
        }
      }
    }
    expect(sawCommit).toBe(true);
    // The lease runs out (the leader hears nobody): no read at once.
    c.isolate(1);
    c.run(1500);
    expect(l.r.readNow(c.nodeMs(l))).toBe(false);
  });

  it('the lease starts when the round is sent: it ends electionTimeout - margin after the send', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.run(300);
    const until = l.r.status().leaseUntilMs;
    // heartbeat every 100 ms; the last round was sent at most 100 ms ago, acked at once.
    expect(until).toBeLessThanOrEqual(c.nowMs + 1000 - 100);
    expect(until).toBeGreaterThan(c.nowMs + 1000 - 100 - 110);
  });

  it('a paused leader whose monotonic clock jumped past its lease does not serve a local read', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.run(300);
    l.paused = true;
    c.run(1500);
    c.elect(2); // the others moved on
    c.propose(2, 'new');
    c.run(100);
    // The old leader wakes up: its first input is the read, with the monotonic time of now.
    l.paused = false;
    const res = l.r.read(7, c.nodeMs(l));
    expect(res.ok).toBe(true);
    const rd = l.r.ready();
    expect(rd.readStates).toEqual([]);
    c.queue.push(...rd.messages, ...rd.messagesAfterPersist);
    l.r.persisted(rd.number);
    c.run(200);
    // Its read-index round met the higher term: it stepped down and the read failed.
    expect(l.r.status().role).toBe('follower');
    expect(l.readStates).toEqual([]);
    expect(l.failedReads).toEqual([7]);
  });

  it("planted bug 'lease-read-without-lease': the paused leader serves a stale local read", () => {
    const c = new Cluster([1, 2, 3], { bugs: ['lease-read-without-lease'] });
    const l = c.elect(1);
    c.run(300);
    l.paused = true;
    c.run(1500);
    c.elect(2);
    l.paused = false;
    l.r.read(7, c.nodeMs(l));
    const rd = l.r.ready();
    expect(rd.readStates.map((r) => r.ctx)).toEqual([7]);
  });

  it('without a lease a read waits for a read-index round confirmed by a majority', () => {
    const c = new Cluster([1, 2, 3], { extra: { leaseDriftMarginMs: 999 } }); // lease of 1 ms
    const l = c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    expect(l.r.read(3, c.nowMs).ok).toBe(true);
    const rd = l.r.ready();
    expect(rd.readStates).toEqual([]);
    const hb = rd.messages.filter((m) => m.type === 'heartbeat');
    expect(hb.length).toBe(2);
    c.queue.push(...rd.messages);
    l.r.persisted(rd.number);
    c.settle();
    expect(l.readStates).toEqual([{ ctx: 3, index: l.r.status().commit, via: 'read-index' }]);
  });

  it('a read-index round is not confirmed by a minority', () => {
    const c = new Cluster([1, 2, 3], { extra: { leaseDriftMarginMs: 999 } });
    const l = c.elect(1);
    c.isolate(1);
    l.r.read(4, c.nowMs);
    c.run(500);
    expect(l.readStates).toEqual([]);
    c.run(1000); // check-quorum steps it down
    expect(l.failedReads).toEqual([4]);
  });

  it('a follower refuses reads with NOT_LEADER and a hint', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const res = c.node(3).r.read(1, c.nowMs);
    expect(res.ok).toBe(false);
    if (!res.ok) expect(res.error.detail).toMatchObject({ leader: 1 });
  });

  it('reads during a leadership transfer are refused and the lease is void', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.run(300);
    expect(l.r.transferLeadership(2 as never).ok).toBe(true);
    expect(l.r.read(1, c.nowMs).ok).toBe(false);
  });

  it('a new leader serves no read before it committed an entry of its term', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.node(1).down = true;
    c.run(1100);
    const n2 = c.node(2);
    n2.r.campaign(0 as never);
    // Deliver only what makes it leader: the votes, not the appends of its no-op.
    for (let i = 0; i < 20 && n2.r.status().role !== 'leader'; i++) {
      c.drain(c.node(2));
      c.drain(c.node(3));
      c.queue = c.queue.filter((m) => m.type === 'vote' || m.type === 'voteResp');
      c.deliver();
    }
    expect(n2.r.status().role).toBe('leader');
    c.filter = (m) => m.type === 'append';
    expect(n2.r.read(9, c.nowMs).ok).toBe(true);
    c.run(300);
    expect(n2.readStates).toEqual([]);
    c.filter = () => false;
    c.run(300);
    expect(n2.readStates.map((r) => r.ctx)).toEqual([9]);
    expect(n2.readStates[0]!.index).toBe(2); // its no-op
  });
});
