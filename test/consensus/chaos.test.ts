/**
 * A small randomized check of the core's safety under loss, duplication, reordering, partitions
 * and restarts (the full simulator with its checkers lives in test/sim/).
 */
import { describe, expect, it } from 'vitest';
import { compareSeq } from '../../src/sequencer/seq.js';
import type { Entry } from '../../src/consensus/types.js';
import { term } from '../../src/lib/ids.js';
import { Cluster } from './harness.js';

/** Plain comparisons (expect() per entry would dominate the run time); throws on a violation. */
function check(c: Cluster, leaders: Map<number, number>, committed: Map<number, Entry>): void {
  for (const n of c.nodes.values()) {
    const st = n.r.status();
    if (st.role === 'leader' && !n.down) {
      const prev = leaders.get(st.term);
      if (prev !== undefined && prev !== n.id)
        throw new Error(`two leaders in term ${st.term}: ${prev}, ${n.id}`);
      leaders.set(st.term, n.id);
    }
    let prev: Entry | undefined;
    for (const e of [...n.applied.values()].sort((x, y) => x.index - y.index)) {
      const first = committed.get(e.index);
      if (first === undefined) committed.set(e.index, e);
      else if (first.term !== e.term || compareSeq(first.seq, e.seq) !== 0) {
        throw new Error(`node ${n.id}: committed entry ${e.index} differs`);
      }
      if (prev !== undefined && compareSeq(prev.seq, e.seq) >= 0) throw new Error(`seq order at ${e.index}`);
      prev = e;
    }
  }
}

function runSeed(seed: number, mode: 'directed' | 'self'): number {
  const c = new Cluster([1, 2, 3, 4, 5], { mode, seed });
  c.chaos = { loss: 0.05, dup: 0.05, reorder: true };
  const leaders = new Map<number, number>();
  const committed = new Map<number, Entry>();
  const p = c.prng;
  let proposed = 0;
  for (let step = 0; step < 300; step++) {
    const r = p.next();
    const id = p.int(1, 5);
    if (r < 0.05) c.isolate(id);
    else if (r < 0.1) c.heal();
    else if (r < 0.13) c.restart(id);
    else if (r < 0.2) c.node(id).r.campaign(term(0));
    else if (r < 0.22) {
      const l = c.leaders()[0];
      if (l) l.r.transferLeadership(id as never);
    }
    for (const l of c.leaders()) {
      if (l.r.propose([new TextEncoder().encode(`v${proposed}`)], c.nodeWallNs(l)).ok) proposed++;
    }
    c.run(p.int(10, 300), 10);
    check(c, leaders, committed);
  }
  // Liveness once the faults stop.
  c.heal();
  c.chaos = { loss: 0, dup: 0, reorder: false };
  c.run(12_000, 20);
  if (c.leaders().length === 0) c.elect(1);
  c.run(2_000, 20);
  check(c, leaders, committed);
  const l = c.leader();
  l.r.propose([new TextEncoder().encode('final')], c.wallNs);
  c.run(500);
  for (const id of [1, 2, 3, 4, 5]) expect(c.values(id).at(-1)).toBe('final');
  return committed.size;
}

describe('randomized safety (loss, duplication, reordering, partitions, restarts)', () => {
  it('directed mode keeps one leader per term, committed entries fixed, seqs increasing', () => {
    for (let seed = 1; seed <= 20; seed++) expect(runSeed(seed, 'directed')).toBeGreaterThan(1);
  });

  it('self mode too', () => {
    for (let seed = 101; seed <= 120; seed++) expect(runSeed(seed, 'self')).toBeGreaterThan(1);
  });
});
