import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.js';

describe('election and replication', () => {
  it('a directed campaign elects the candidate, which commits a no-op and replicates proposals', () => {
    const c = new Cluster([1, 2, 3]);
    const l = c.elect(1);
    expect(l.r.status().role).toBe('leader');
    expect(c.leaders().map((n) => n.id)).toEqual([1]);
    const st = l.r.status();
    expect(st.term).toBe(1);
    expect(st.commit).toBe(1); // the no-op
    c.propose(1, 'a', 'b', 'c');
    c.settle();
    c.run(200);
    for (const id of [1, 2, 3]) expect(c.values(id)).toEqual(['a', 'b', 'c']);
    expect(c.node(2).r.status().leader).toBe(1);
  });
});
