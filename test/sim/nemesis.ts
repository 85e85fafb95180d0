/**
 * The fault injector of the fault phase: at random intervals it partitions the network (one node,
 * a group's leader, a minority from a majority, one-way links, the metadata manager away), heals it,
 * crashes and restarts nodes, pauses and resumes them, makes clocks drift and jump, stalls disks and
 * sends bursts of message loss. `calm()` ends every fault for the liveness phase.
 */
import type { NodeId } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';
import { mmEndpoint, type SimNet } from './net.js';
import type { SimNode } from './node.js';

export interface NemesisEnv {
  now(): number;
  schedule(delayMs: number, fn: () => void): void;
  readonly prng: Prng;
  readonly net: SimNet;
  readonly nodes: readonly SimNode[];
  /** The node that leads `group` by its own account, if any (for leader-targeted faults). */
  leaderOf(group: number): NodeId | undefined;
  readonly groups: readonly number[];
  /** The nodes hosting a replica of `group`. */
  membersOf(group: number): readonly NodeId[];
  readonly driftMax: number;
  readonly wallJumpMsMax: number;
  readonly intervalMsMin: number;
  readonly intervalMsMax: number;
  readonly downMax: number;
  trace(text: () => string): void;
}

type Action = (env: NemesisEnv) => void;

export class Nemesis {
  private active = true;
  private partitionGen = 0;
  faults = 0;

  constructor(private readonly env: NemesisEnv) {}

  start(): void {
    this.scheduleNext();
  }

  private scheduleNext(): void {
    const e = this.env;
    e.schedule(e.prng.int(e.intervalMsMin, e.intervalMsMax), () => {
      if (!this.active) return;
      this.faults++;
      this.pickAction()(e);
      this.scheduleNext();
    });
  }

  private pickAction(): Action {
    const p = this.env.prng;
    const actions: [number, Action][] = [
      [3, () => this.partition('isolate-node')],
      [3, () => this.partition('isolate-leader')],
      [2, () => this.partition('minority')],
      [2, () => this.partition('asymmetric')],
      [1, () => this.partition('mm')],
      [2, () => this.healAll()],
      [3, () => this.crash(1)],
      [1, () => this.crash(2)],
      [2, () => this.pause(false)],
      [3, () => this.pause(true)],
      [2, () => this.powerLoss()],
      [2, () => this.clock()],
      [1, () => this.stallDisk()],
      [1, () => this.lossBurst()],
    ];
    let total = 0;
    for (const [w] of actions) total += w;
    let x = p.int(0, total - 1);
    for (const [w, a] of actions) {
      if (x < w) return a;
      x -= w;
    }
    return actions[0]![1];
  }

  private ids(): number[] {
    return this.env.nodes.map((n) => n.id);
  }

  private partition(kind: 'isolate-node' | 'isolate-leader' | 'minority' | 'asymmetric' | 'mm'): void {
    const e = this.env;
    const net = e.net;
    const all = this.ids();
    net.heal();
    let desc = '';
    if (kind === 'isolate-node' || kind === 'isolate-leader') {
      const leader = kind === 'isolate-leader' ? e.leaderOf(e.prng.pick(e.groups)) : undefined;
      const victim = leader ?? e.prng.pick(all);
      net.split([victim], [...all.filter((x) => x !== victim), mmEndpoint]);
      desc = `isolate ${leader ? 'leader ' : ''}n${victim}`;
    } else if (kind === 'minority') {
      const shuffled = shuffle(e.prng, all);
      const k = e.prng.int(1, Math.floor((all.length - 1) / 2));
      const minority = shuffled.slice(0, k);
      net.split(minority, shuffled.slice(k));
      if (e.prng.chance(0.5)) net.split(minority, [mmEndpoint]);
      desc = `split minority [${minority.join(',')}]`;
    } else if (kind === 'asymmetric') {
      const victim = e.prng.pick(all);
      const others = all.filter((x) => x !== victim);
      const inbound = e.prng.chance(0.5);
      for (const o of others) if (e.prng.chance(0.7)) inbound ? net.block(o, victim) : net.block(victim, o);
      desc = `one-way: n${victim} ${inbound ? 'cannot hear' : 'cannot speak to'} peers`;
    } else {
      const cut = all.filter(() => e.prng.chance(0.5));
      net.split(cut, [mmEndpoint]);
      desc = `mm cut from [${cut.join(',')}]`;
    }
    const gen = ++this.partitionGen;
    e.trace(() => `nemesis: ${desc}`);
    e.schedule(e.prng.int(200, 3000), () => {
      if (this.active && gen === this.partitionGen) {
        net.heal();
        e.trace(() => 'nemesis: heal');
      }
    });
  }

  private healAll(): void {
    this.partitionGen++;
    this.env.net.heal();
    this.env.trace(() => 'nemesis: heal');
  }

  /** Crashes `count` nodes at once (power loss), preferring nodes with unsynced writes. */
  private crash(count: number): void {
    const e = this.env;
    for (let i = 0; i < count; i++) {
      const down = e.nodes.filter((n) => n.state !== 'up').length;
      if (down >= e.downMax) return;
      const up = e.nodes.filter((n) => n.state === 'up');
      const busy = up.filter((n) => n.disk.unsyncedCount > 0);
      this.crashOne(busy.length > 0 && e.prng.chance(0.5) ? e.prng.pick(busy) : e.prng.pick(up));
    }
  }

  /** Every replica of one group loses power at once; each comes back after a while. */
  private powerLoss(): void {
    const e = this.env;
    const group = e.prng.pick(e.groups);
    e.trace(() => `nemesis: power loss of every node of g${group}`);
    // Machines boot at different speeds; one (often the leader's) takes much longer.
    const members = e.membersOf(group);
    const leader = e.leaderOf(group);
    const slow = leader !== undefined && e.prng.chance(0.8) ? leader : e.prng.pick(members);
    for (const id of members) {
      const n = e.nodes.find((x) => x.id === id);
      const delay = id === slow ? e.prng.int(1500, 5000) : e.prng.int(50, 1000);
      if (n?.state === 'up') this.crashOne(n, delay);
    }
  }

  private crashOne(victim: SimNode, restartMs = this.env.prng.int(50, 3000)): void {
    const e = this.env;
    const r = victim.crash(e.prng);
    e.trace(
      () =>
        `nemesis: crash n${victim.id} (unsynced writes kept ${r.kept}, lost ${r.lost}${r.torn ? ', torn' : ''})`,
    );
    e.schedule(restartMs, () => {
      if (victim.state !== 'down') return;
      victim.restart();
      e.trace(() => `nemesis: restart n${victim.id}`);
    });
  }

  /** SIGSTOP a node (or a group's leader) for a while, then SIGCONT. */
  private pause(leader: boolean): void {
    const e = this.env;
    const down = e.nodes.filter((n) => n.state !== 'up').length;
    if (down >= e.downMax) return;
    const leaderId = leader ? e.leaderOf(e.prng.pick(e.groups)) : undefined;
    const up = e.nodes.filter((n) => n.state === 'up');
    const victim = up.find((n) => n.id === leaderId) ?? e.prng.pick(up);
    victim.pause();
    // A paused leader that is also cut from its peers (but not from clients) comes back deposed
    // without hearing about it: it must not serve reads from its old lease.
    const isolate = leaderId === victim.id && e.prng.chance(0.7);
    const gen = isolate ? ++this.partitionGen : 0;
    if (isolate) {
      e.net.heal();
      e.net.split([victim.id], [...this.ids().filter((x) => x !== victim.id), mmEndpoint]);
    }
    e.trace(
      () =>
        `nemesis: pause ${leaderId === victim.id ? 'leader ' : ''}n${victim.id}${isolate ? ' and cut it off' : ''}`,
    );
    // A leader stays stopped long enough, most of the time, for the others to elect a new one.
    const ms = leaderId === victim.id ? e.prng.int(700, 3000) : e.prng.int(100, 2500);
    e.schedule(ms, () => {
      if (victim.state !== 'paused') return;
      e.trace(() => `nemesis: resume n${victim.id}`);
      victim.resume();
    });
    if (isolate) {
      e.schedule(ms + e.prng.int(0, 400), () => {
        if (this.active && gen === this.partitionGen) e.net.heal();
      });
    }
  }

  private clock(): void {
    const e = this.env;
    const n = e.prng.pick(e.nodes);
    if (e.prng.chance(0.5)) {
      const rate = 1 + (e.prng.next() * 2 - 1) * e.driftMax;
      n.clock.setRate(rate);
      e.trace(() => `nemesis: n${n.id} clock rate ${rate.toFixed(4)}`);
    } else {
      const jump = e.prng.int(-e.wallJumpMsMax, e.wallJumpMsMax);
      n.clock.wallOffsetMs += jump;
      e.trace(() => `nemesis: n${n.id} wall clock jumps ${jump} ms`);
    }
  }

  private stallDisk(): void {
    const e = this.env;
    const n = e.prng.pick(e.nodes);
    const ms = e.prng.int(300, 2500);
    n.disk.stallUntilMs = e.now() + ms;
    e.trace(() => `nemesis: n${n.id} disk stalls ${ms} ms`);
  }

  private lossBurst(): void {
    const e = this.env;
    e.net.lossBurst = 0.2 + e.prng.next() * 0.3;
    e.trace(() => `nemesis: loss burst ${(e.net.lossBurst * 100).toFixed(0)}%`);
    e.schedule(e.prng.int(200, 1500), () => {
      e.net.lossBurst = 0;
    });
  }

  /** Ends the fault phase: heal, restart, resume, no more loss or stalls. */
  calm(): void {
    const e = this.env;
    this.active = false;
    this.partitionGen++;
    e.net.heal();
    e.net.lossBurst = 0;
    e.net.calm = true;
    for (const n of e.nodes) {
      n.disk.stallUntilMs = 0;
      if (n.state === 'down') n.restart();
      else if (n.state === 'paused') n.resume();
    }
    e.trace(() => 'nemesis: faults stop (heal, restart, resume)');
  }
}

function shuffle<T>(prng: Prng, items: readonly T[]): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
