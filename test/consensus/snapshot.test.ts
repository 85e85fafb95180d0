import { describe, expect, it } from 'vitest';
import type { LogIndex } from '../../src/lib/ids.js';
import type { SnapshotMsg } from '../../src/consensus/types.js';
import { Cluster } from './harness.js';

describe('snapshots and compaction', () => {
  it('a follower behind the first retained index gets a snapshot, then the log suffix', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    c.node(3).down = true;
    c.propose(1, 'a', 'b', 'c');
    c.run(100);
    const applied = l.r.status().applied;
    expect(l.r.compact(applied as LogIndex).ok).toBe(true);
    expect(l.r.status().firstIndex).toBe(applied + 1);
    c.propose(1, 'd');
    c.run(50);
    const seen: SnapshotMsg[] = [];
    const prev = c.filter;
    c.filter = (m) => {
      if (m.type === 'snapshot') seen.push(m);
      return prev(m);
    };
    c.node(3).down = false;
    c.run(500);
    expect(seen.length).toBe(1);
    const meta = seen[0]!.meta;
    expect(meta.index).toBeGreaterThanOrEqual(applied);
    expect(meta.membership.voters).toEqual([1, 2, 3]);
    const n3 = c.node(3);
    expect(n3.disk.snapshot?.index).toBe(meta.index);
    expect(n3.r.status().commit).toBe(l.r.status().commit);
    // The state machine continues after the snapshot with the log suffix.
    c.propose(1, 'e');
    c.run(100);
    const after = [...n3.applied.values()].filter((e) => e.index > meta.index && e.kind === 'command');
    expect(after.map((e) => new TextDecoder().decode(e.data))).toEqual(['e']);
    expect([...n3.applied.values()].filter((e) => e.kind === 'command').length).toBe(1);
    expect(n3.applied.get(meta.index)?.seq).toEqual(meta.highestSeq);
  });

  it('a replica restarts from a snapshot plus the log after it', () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a', 'b');
    c.run(100);
    const n2 = c.node(2);
    const applied = n2.r.status().applied;
    n2.r.compact(applied as LogIndex);
    n2.disk.snapshot = {
      index: applied as LogIndex,
      term: n2.disk.entries.find((e) => e.index === applied)!.term,
      membership: c.membership,
      highestSeq: n2.disk.entries.find((e) => e.index === applied)!.seq,
    };
    n2.disk.entries = n2.disk.entries.filter((e) => e.index > applied);
    c.propose(1, 'c');
    c.run(100);
    const r = c.restart(2);
    expect(r.r.status().firstIndex).toBe(applied + 1);
    c.run(200);
    expect(r.r.status().commit).toBe(c.node(1).r.status().commit);
    expect(c.values(2)).toEqual(['a', 'b', 'c']);
  });

  it('compaction beyond the applied index is a programmer error', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    expect(() => l.r.compact(99 as LogIndex)).toThrow(/applied/);
  });
});
