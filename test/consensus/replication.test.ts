import { describe, expect, it } from 'vitest';
import { compareSeq } from '../../src/sequencer/seq.js';
import { type LogIndex, type NodeId, type Term, term } from '../../src/lib/ids.js';
import type { AppendMsg, Message } from '../../src/consensus/types.js';
import { Cluster, enc, G } from './harness.js';

/** An append from node 1 at the stale term 1 to node 3: one 'evil' entry after (prevIndex, prevTerm). */
function staleAppend(prevIndex: LogIndex, prevTerm: Term): AppendMsg {
  return {
    type: 'append',
    group: G,
    from: 1 as NodeId,
    to: 3 as NodeId,
    term: term(1),
    prevIndex,
    prevTerm,
    commit: 0 as LogIndex,
    entries: [
      {
        index: (prevIndex + 1) as LogIndex,
        term: term(1),
        kind: 'command',
        seq: new Uint8Array(16) as never,
        data: enc('evil'),
      },
    ],
  };
}

describe('replication and commit', () => {
  it('nothing commits without a majority; it commits once a majority is back', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.node(2).down = true;
    c.node(3).down = true;
    c.propose(1, 'x');
    c.run(300);
    expect(c.node(1).r.status().commit).toBe(1);
    expect(c.values(1)).toEqual([]);
    c.node(2).down = false;
    c.run(300);
    expect(c.values(1)).toEqual(['x']);
  });

  it("planted bug 'commit-without-majority': the leader commits alone", () => {
    const c = new Cluster([1, 2, 3], { bugs: ['commit-without-majority'] });
    c.elect(1);
    c.node(2).down = true;
    c.node(3).down = true;
    c.propose(1, 'x');
    c.run(100);
    expect(c.values(1)).toEqual(['x']);
  });

  it('commits only entries of its own term by counting (older ones ride along)', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    // Leader 1 appends x (index 2, term 1); only node 2 gets it and its ack is lost.
    c.filter = (m) => (m.from === 1 && m.to === 3) || (m.from === 2 && m.to === 1 && m.type === 'appendResp');
    c.propose(1, 'x');
    c.settle();
    expect(c.node(2).r.status().lastIndex).toBe(2);
    c.node(1).down = true;
    c.filter = () => false;
    c.run(1100);
    // Node 2 wins term 2 (its log is ahead of 3's); appends to 3 are cut.
    c.filter = (m) => m.from === 2 && m.to === 3 && (m.type === 'append' || m.type === 'heartbeat');
    const l = c.elect(2);
    expect(l.r.status()).toMatchObject({ role: 'leader', term: 2, lastIndex: 3, commit: 1 });
    const ack = (index: number): Message => ({
      type: 'appendResp',
      group: G,
      from: 3 as NodeId,
      to: 2 as NodeId,
      term: term(2),
      reject: false,
      index: index as LogIndex,
      hint: 0 as LogIndex,
    });
    // Index 2 (term 1) is now on a majority (2 and 3) but is not of term 2: not committed.
    l.r.step(ack(2));
    expect(l.r.status().commit).toBe(1);
    // Index 3 (term 2) on a majority commits, and index 2 with it.
    l.r.step(ack(3));
    expect(l.r.status().commit).toBe(3);
    c.settle();
    expect(c.values(2)).toEqual(['x']);
  });

  it('the leader sends appends before its own fsync and counts itself only once persisted', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.propose(1, 'a');
    const rd = l.r.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    const appends = rd.messages.filter((m): m is AppendMsg => m.type === 'append' && m.entries.length > 0);
    expect(appends.map((m) => m.to).sort()).toEqual([2, 3]);
    // Followers ack; the leader has not persisted: still a majority (2 of 3) without it.
    for (const m of appends) c.node(m.to).r.step(m);
    for (const id of [2, 3]) {
      const frd = c.node(id).r.ready();
      // An append ack is released only after the follower persisted.
      expect(frd.messages.filter((m) => m.type === 'appendResp')).toEqual([]);
      expect(frd.messagesAfterPersist.filter((m) => m.type === 'appendResp').length).toBe(1);
      c.node(id).r.persisted(frd.number);
      for (const m of frd.messagesAfterPersist) l.r.step(m);
    }
    expect(l.r.status().commit).toBe(2);
    // Committed, but not handed out to apply before the leader's own disk has it.
    const rd2 = l.r.ready();
    expect(rd2.committed).toEqual([]);
    l.r.persisted(rd.number);
    const rd3 = l.r.ready();
    expect(rd3.committed.map((e) => e.index)).toEqual([2]);
  });

  it("planted bug 'ack-before-fsync': the follower acks before persisting", () => {
    const c = new Cluster([1, 2, 3], { bugs: ['ack-before-fsync'] });
    const l = c.elect(1);
    c.propose(1, 'a');
    const rd = l.r.ready();
    const m = rd.messages.find((x) => x.type === 'append' && x.to === 2 && x.entries.length > 0)!;
    c.node(2).r.step(m);
    const frd = c.node(2).r.ready();
    expect(frd.messages.filter((x) => x.type === 'appendResp').length).toBe(1);
  });

  it('a stale-term append is rejected with the newer term and changes nothing', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.node(1).down = true;
    c.run(1100);
    c.elect(2, 5);
    c.run(200);
    const f = c.node(3);
    const before = f.r.status();
    const stale = staleAppend(before.lastIndex, term(5));
    f.r.step(stale);
    const rd = f.r.ready();
    const resp = [...rd.messages, ...rd.messagesAfterPersist].find((m) => m.type === 'appendResp')!;
    expect(resp).toMatchObject({ reject: true, term: 5, to: 1 });
    expect(f.r.status().lastIndex).toBe(before.lastIndex);
  });

  it("planted bug 'accept-stale-term-append': a stale leader's entries overwrite the log", () => {
    const c = new Cluster([1, 2, 3], { bugs: ['accept-stale-term-append'] });
    c.elect(1);
    c.node(1).down = true;
    c.run(1100);
    c.elect(2, 5);
    c.run(200);
    c.propose(2, 'x', 'y');
    c.run(100);
    const f = c.node(3);
    const last = f.r.status().lastIndex;
    const stale = staleAppend(1 as LogIndex, term(1));
    f.r.step(stale);
    expect(f.r.status().lastIndex).toBe(2);
    expect(last).toBeGreaterThan(2);
  });

  it('a leader that sees a higher term steps down', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    const m: Message = {
      type: 'heartbeatResp',
      group: G,
      from: 2 as NodeId,
      to: 1 as NodeId,
      term: term(9),
      round: 1,
    };
    l.r.step(m);
    expect(l.r.status()).toMatchObject({ role: 'follower', term: 9, leader: 0 });
  });

  it("an old leader's uncommitted entries are overwritten and reported dropped", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    c.isolate(1);
    c.propose(1, 'lost1', 'lost2');
    c.run(50);
    c.run(1200);
    c.elect(2);
    c.propose(2, 'b');
    c.run(100);
    const n1 = c.node(1);
    c.heal();
    c.run(300);
    expect(n1.dropped).toEqual([{ first: 3, last: 4, term: 1 }]);
    for (const id of [1, 2, 3]) expect(c.values(id)).toEqual(['a', 'b']);
  });

  it('pipelines at most inflightMax appends per follower, batches by bytes', () => {
    const c = new Cluster([1, 2, 3], { extra: { inflightMax: 3, batchBytesMax: 1000 } });
    const l = c.elect(1);
    c.node(2).down = true;
    c.node(3).down = true;
    const big = 'x'.repeat(600);
    for (let i = 0; i < 10; i++) c.propose(1, big);
    const rd = l.r.ready();
    const to2 = rd.messages.filter((m): m is AppendMsg => m.type === 'append' && m.to === 2);
    expect(to2.length).toBe(3);
    for (const m of to2) expect(m.entries.length).toBe(1);
  });

  it('seqs increase in log order across leaders even when the new leader clock is behind', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    c.node(1).down = true;
    c.node(2).wallSkewNs = -3_600_000_000_000n; // an hour behind
    c.run(1100);
    c.elect(2, 5);
    c.propose(2, 'b');
    c.run(100);
    const entries = [...c.node(2).applied.values()].sort((a, b) => a.index - b.index);
    expect(entries.length).toBe(4);
    for (let i = 1; i < entries.length; i++)
      expect(compareSeq(entries[i - 1]!.seq, entries[i]!.seq)).toBeLessThan(0);
  });

  it("planted bug 'no-new-leader-seq-observe': a new leader with a slow clock issues lower seqs", () => {
    const c = new Cluster([1, 2, 3], { bugs: ['no-new-leader-seq-observe'] });
    c.elect(1);
    c.propose(1, 'a');
    c.run(100);
    c.node(1).down = true;
    c.node(2).wallSkewNs = -3_600_000_000_000n;
    c.run(1100);
    c.elect(2, 5);
    c.propose(2, 'b');
    c.run(100);
    const entries = [...c.node(2).applied.values()].sort((a, b) => a.index - b.index);
    const a = entries.find((e) => new TextDecoder().decode(e.data) === 'a')!;
    const b = entries.find((e) => new TextDecoder().decode(e.data) === 'b')!;
    expect(compareSeq(a.seq, b.seq)).toBeGreaterThan(0);
  });

  it('proposals on a follower are rejected with NOT_LEADER and a leader hint', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const res = c.node(2).r.propose([enc('x')], c.wallNs);
    expect(res.ok).toBe(false);
    if (!res.ok) {
      expect(res.error.code).toBe('NOT_LEADER');
      expect(res.error.detail).toMatchObject({ leader: 1 });
    }
  });

  it('a follower that restarts recovers its log from disk and catches up', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a', 'b');
    c.run(100);
    c.node(3).down = true;
    c.propose(1, 'c');
    c.run(100);
    c.restart(3);
    c.run(300);
    expect(c.values(3)).toEqual(['a', 'b', 'c']);
    expect(c.node(3).r.status().commit).toBe(c.node(1).r.status().commit);
  });

  it('a leader whose own persistence stalls steps down', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.propose(1, 'a');
    // Drain the leader's Ready but never report it persisted.
    const rd = l.r.ready();
    c.queue.push(...rd.messages);
    l.paused = true; // the harness stops draining it
    for (let t = 0; t < 2500; t += 50) {
      c.nowMs += 50;
      l.r.tick(c.nowMs, c.wallNs);
      c.settle();
    }
    expect(l.r.status().role).toBe('follower');
  });
});
