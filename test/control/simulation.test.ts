import { describe, expect, it } from 'vitest';
import {
  type ControlAction,
  type ControlMemory,
  decide,
  defaultControlConfig,
  emptyControlMemory,
  type NodeHeartbeat,
  recordDeepCheck,
} from '../../src/control/index.js';
import { type GroupId, logIndex, type NodeId, nodeId, term } from '../../src/lib/ids.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { checkInvariants } from '../../src/metadata/state.js';
import { ok, register } from '../metadata/helpers.js';

/**
 * A tiny deterministic world around decide(): nodes that are alive or dead, groups whose true leader
 * and term follow campaign orders, learners that catch up after a few ticks. Each tick: heartbeats
 * from live nodes -> decide -> carry out the actions (catalog commands, campaigns, deep checks).
 */
class World {
  readonly c = new Catalog();
  readonly alive = new Set<NodeId>();
  readonly truth = new Map<GroupId, { leader: NodeId | null; term: number }>();
  readonly learnerTicks = new Map<string, number>();
  memory: ControlMemory = emptyControlMemory;
  nowMs = 1_000;
  leaderSinceMs = 0;
  log: ControlAction[] = [];

  constructor(storage: number, groups: number, spares: number) {
    for (let i = 1; i <= storage + spares; i++) this.alive.add(register(this.c, `n${i}`));
    for (let g = 0; g < groups; g++) {
      const members = [1, 2, 3].map((k) => nodeId(g * 3 + k));
      const { group } = ok(this.c, { type: 'createGroup', members, atMs: 0 });
      this.truth.set(group, { leader: null, term: 0 });
    }
    for (let i = storage + 1; i <= storage + spares; i++) ok(this.c, { type: 'addSpare', node: nodeId(i) });
  }

  private heartbeats(): Map<NodeId, NodeHeartbeat> {
    const out = new Map<NodeId, NodeHeartbeat>();
    for (const id of this.alive) {
      const replicas = [...this.c.state.groups.values()]
        .filter((g) => g.members.some((m) => m.node === id))
        .map((g) => {
          const t = this.truth.get(g.id)!;
          const learner = g.members.find((m) => m.node === id)?.role === 'learner';
          const ticks = this.learnerTicks.get(`${g.id}/${id}`) ?? 0;
          const applied = learner && ticks < 3 ? 0 : 100;
          const role = learner ? 'learner' : t.leader === id ? 'leader' : 'follower';
          return {
            group: g.id,
            term: term(t.term),
            role: role as 'leader' | 'follower' | 'learner',
            lastLogIndex: logIndex(100),
            lastLogTerm: term(t.term),
            commitIndex: logIndex(100),
            appliedIndex: logIndex(applied),
          };
        });
      out.set(id, { lastSeenMs: this.nowMs - 10, health: { diskOk: true, stalled: false }, replicas });
    }
    return out;
  }

  tick(): ControlAction[] {
    const d = decide({
      catalog: this.c.state,
      heartbeats: this.heartbeats(),
      nowMs: this.nowMs,
      leaderSinceMs: this.leaderSinceMs,
      config: defaultControlConfig,
      memory: this.memory,
    });
    this.memory = d.memory;
    for (const a of d.actions) this.carryOut(a);
    for (const g of this.c.state.groups.values()) {
      for (const m of g.members)
        if (m.role === 'learner')
          this.learnerTicks.set(`${g.id}/${m.node}`, (this.learnerTicks.get(`${g.id}/${m.node}`) ?? 0) + 1);
    }
    checkInvariants(this.c.state as never);
    this.log.push(...d.actions);
    this.nowMs += defaultControlConfig.heartbeatIntervalMs;
    return d.actions;
  }

  private carryOut(a: ControlAction): void {
    if (a.kind === 'campaign') {
      const t = this.truth.get(a.group)!;
      if (this.alive.has(a.node) && a.minTerm > t.term)
        this.truth.set(a.group, { leader: a.node, term: a.minTerm });
      return;
    }
    if (a.kind === 'deepCheck') {
      const passed = this.alive.has(a.leader);
      this.memory = recordDeepCheck(this.memory, { ...a, ok: passed, atMs: this.nowMs });
      return;
    }
    if (!('command' in a) || a.command === null) return;
    const r = this.c.apply(a.command);
    expect(r.ok ? 'ok' : r.code).toBe('ok');
  }

  run(ms: number): void {
    const end = this.nowMs + ms;
    while (this.nowMs < end) this.tick();
  }
}

describe('control loop simulation', () => {
  it('new groups get leaders, a dead node is replaced everywhere, and the catalog converges', () => {
    const w = new World(9, 3, 2);
    w.run(5_000);
    for (const [g, t] of w.truth) {
      expect(t.leader).not.toBeNull();
      expect(w.c.group(g)).toMatchObject({ leader: t.leader, term: t.term });
    }
    // Kill the leader of group 1.
    const victim = w.truth.get(1 as GroupId)!.leader!;
    w.alive.delete(victim);
    w.run(40_000);
    const leadersOrdered = w.log.filter((a) => a.kind === 'campaign' && a.group === 1);
    expect(leadersOrdered.length).toBe(2); // the first leader, then one after the kill
    expect(w.c.node(victim)?.state).toBe('down');
    expect(w.c.groupsOfNode(victim)).toEqual([]);
    for (const [g, t] of w.truth) {
      const group = w.c.group(g)!;
      expect(group.members.filter((m) => m.role === 'voter' && w.alive.has(m.node))).toHaveLength(3);
      expect(group.members).toHaveLength(3);
      expect(group).toMatchObject({ leader: t.leader, term: t.term });
      expect(w.alive.has(t.leader!)).toBe(true);
    }
    const steps = w.log
      .filter((a) => a.kind === 'replace' && a.step !== 'waitCatchUp')
      .map((a) => (a as { step: string }).step);
    expect(steps).toEqual(['addLearner', 'promote', 'removeOld']);
    // The victim comes back, is marked up and goes to the pool.
    w.alive.add(victim);
    w.run(2_000);
    expect(w.c.node(victim)?.state).toBe('spare');
  });

  it('a new MM leader judges nobody during its grace period', () => {
    const w = new World(3, 1, 0);
    w.run(3_000);
    const before = w.log.length;
    // New MM leader: it has no heartbeats at first (a node is silent for one tick).
    w.leaderSinceMs = w.nowMs;
    w.memory = emptyControlMemory;
    const silent = nodeId(3);
    w.alive.delete(silent);
    w.run(1_500);
    expect(w.log.slice(before).filter((a) => a.kind !== 'recordLeader')).toEqual([]);
    w.alive.add(silent);
    w.run(3_000);
    expect(w.log.slice(before).filter((a) => a.kind === 'markNode')).toEqual([]);
  });
});
