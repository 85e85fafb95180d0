/**
 * One simulated run: a seed builds a cluster (storage nodes hosting several groups of 3 and 5
 * replicas of the real consensus core, a metadata manager, clients), runs a fault phase, then a
 * liveness phase without faults, then checks the client history for linearizability.
 * Everything random comes from the seed, so a seed replays exactly.
 */
import {
  type ConsensusBug,
  consensusBugs,
  type Membership,
  type MembershipChange,
  type Message,
} from '../../src/consensus/types.js';
import { AssertionError } from '../../src/lib/assert.js';
import { type GroupId, groupId, type NodeId, nodeId, term } from '../../src/lib/ids.js';
import { Prng } from '../../src/lib/prng.js';
import { type CheckReport, checkHistory, formatReport, HistoryRecorder } from './checker/index.js';
import { SimClient } from './client.js';
import { type ClientReply, type ClientRequest, ReplicaHost } from './host.js';
import { GroupChecker, SimViolation } from './invariants.js';
import type { KvSnapshot } from './kv.js';
import { SimMetadataManager } from './mm.js';
import { Nemesis } from './nemesis.js';
import { clientEndpointBase, mmEndpoint, SimNet } from './net.js';
import { SimNode } from './node.js';
import { EventQueue } from './queue.js';

export const simBugs = [...consensusBugs, 'retry-without-dedup'] as const;
export type SimBug = (typeof simBugs)[number];

export interface SimOptions {
  seed: number;
  bugs?: readonly SimBug[];
  /** Simulated length of the fault phase. */
  faultMs?: number;
  /** Bound on the liveness phase: everything must finish within it. */
  livenessMs?: number;
  traceMax?: number;
  /** The metadata manager removes leaders directly (see CORE_ISSUES.md). */
  removeLeaders?: boolean;
}

export interface SeedResult {
  seed: number;
  ok: boolean;
  /** The broken invariant ('linearizability', 'liveness', 'one-leader-per-term', ...). */
  invariant: string | null;
  message: string | null;
  ops: number;
  simulatedMs: number;
  events: number;
  trace: string[];
  report: CheckReport | null;
  summary: string;
}

const timing = {
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 600,
  leaseDriftMarginMs: 60,
  directedFallbackMs: 2500,
  fsyncStallMaxMs: 800,
};
const tickMs = 20;
const eventsMax = 20_000_000;

class Trace {
  private readonly times: number[] = [];
  private readonly texts: (() => string)[] = [];
  private pos = 0;
  constructor(private readonly max: number) {}
  add(t: number, text: () => string): void {
    if (this.texts.length < this.max) {
      this.times.push(t);
      this.texts.push(text);
      return;
    }
    this.times[this.pos] = t;
    this.texts[this.pos] = text;
    this.pos = (this.pos + 1) % this.max;
  }
  lines(): string[] {
    const out: string[] = [];
    const n = this.texts.length;
    for (let i = 0; i < n; i++) {
      const j = (this.pos + i) % n;
      out.push(`t=${this.times[j]!.toFixed(1).padStart(9)}  ${this.texts[j]!()}`);
    }
    return out;
  }
}

interface GroupSetup {
  id: GroupId;
  /** Nodes hosting a replica (voters and learners); changes with replacements. */
  members: NodeId[];
  /** The membership the group was created with (index 0 of its log). */
  initial: Membership;
  compactEvery: number;
  mode: 'directed' | 'self';
  checker: GroupChecker;
  hosts: ReplicaHost[];
  keys: string[];
}

export class SimWorld {
  readonly prng: Prng;
  readonly queue = new EventQueue();
  now = 0;
  readonly trace: Trace;
  readonly nodes: SimNode[] = [];
  private readonly nodeIds: NodeId[] = [];
  readonly groups: GroupSetup[] = [];
  readonly net: SimNet;
  readonly mm: SimMetadataManager;
  readonly clients: SimClient[] = [];
  readonly history = new HistoryRecorder();
  readonly nemesis: Nemesis;
  private readonly consensusBugSet: ReadonlySet<ConsensusBug>;
  private readonly dedupDisabled: boolean;
  events = 0;

  constructor(readonly options: SimOptions) {
    this.prng = new Prng(options.seed);
    this.trace = new Trace(options.traceMax ?? 200);
    const bugs = options.bugs ?? [];
    this.consensusBugSet = new Set(bugs.filter((b): b is ConsensusBug => b !== 'retry-without-dedup'));
    this.dedupDisabled = bugs.includes('retry-without-dedup');
    const p = this.prng;
    this.net = new SimNet(
      p.fork(),
      {
        delayMsMin: 1,
        delayMsMax: p.int(3, 12),
        slowRate: 0.03,
        slowMsMax: 400,
        stuckRate: 0.01,
        stuckMsMax: 3000,
        lossRate: p.int(0, 5) / 100,
        dupRate: 0.02,
      },
      (d, fn) => this.queue.push(this.now + d, fn),
    );
    this.mm = new SimMetadataManager({
      now: () => this.now,
      heartbeatIntervalMs: timing.heartbeatIntervalMs,
      heartbeatsMissedMax: 3,
      electionTimeoutMs: timing.electionTimeoutMs,
      graceMs: 3 * timing.heartbeatIntervalMs,
      campaign: (g, n, minTerm) => this.sendCampaign(g, n, minTerm),
      transfer: (g, leader, to) => this.sendTransfer(g, leader, to),
      transferRate: 0.01,
      replaceRate: 0.03,
      removeLeaders: options.removeLeaders ?? false,
      changeMembership: (g, leader, change) => this.sendMembership(g, leader, change),
      addReplica: (g, n) => this.addReplica(g, n),
      dropReplica: (g, n) => this.dropReplica(g, n),
      nodes: this.nodeIds,
      prng: this.prng.fork(),
      trace: (t) => this.log(t),
    });
    this.buildNodes();
    this.buildGroups();
    this.buildClients();
    this.nemesis = new Nemesis({
      now: () => this.now,
      schedule: (d, fn) => this.queue.push(this.now + d, fn),
      prng: p.fork(),
      net: this.net,
      nodes: this.nodes,
      leaderOf: (g) => this.leaderOf(g),
      groups: this.groups.map((g) => g.id),
      membersOf: (g) => this.groups.find((x) => x.id === g)?.members ?? [],
      driftMax: 0.01,
      wallJumpMsMax: 5000,
      intervalMsMin: 100,
      intervalMsMax: 700,
      downMax: 2,
      trace: (t) => this.log(t),
    });
  }

  log(text: () => string): void {
    this.trace.add(this.now, text);
  }

  private buildNodes(): void {
    const p = this.prng;
    const count = p.int(5, 7);
    for (let i = 1; i <= count; i++) {
      const n = new SimNode(nodeId(i), this.queue, () => this.now, p.fork(), { min: 1, max: p.int(2, 25) });
      n.clock.setRate(1 + (p.next() * 2 - 1) * 0.01);
      n.clock.wallOffsetMs = p.int(-3000, 3000);
      n.onStart = () => this.startNodeLoops(n);
      this.nodes.push(n);
      this.nodeIds.push(n.id);
    }
  }

  private buildGroups(): void {
    const p = this.prng;
    const sizes = [5, 3, ...(p.chance(0.5) ? [p.chance(0.5) ? 5 : 3] : [])];
    for (const [gi, size] of sizes.entries()) {
      const id = groupId(gi + 1);
      const ids = this.nodes.map((n) => n.id);
      for (let i = ids.length - 1; i > 0; i--) {
        const j = p.int(0, i);
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
      const members = ids.slice(0, size).sort((a, b) => a - b);
      const mode = gi === 0 || p.chance(0.6) ? 'directed' : 'self';
      const keyCount = p.int(2, 4);
      const g: GroupSetup = {
        id,
        members,
        initial: { voters: [...members], learners: [] },
        mode,
        checker: new GroupChecker(id, (i, t) => this.durableOn(id, i, t), Math.floor(size / 2) + 1),
        hosts: [],
        keys: Array.from({ length: keyCount }, (_, k) => `g${id}k${k}`),
        compactEvery: p.int(5, 40),
      };
      for (const m of members) this.makeHost(g, m);
      this.mm.addGroup(id, members);
      this.groups.push(g);
    }
  }

  private makeHost(g: GroupSetup, m: NodeId): ReplicaHost {
    const node = this.nodes[m - 1]!;
    const host = new ReplicaHost({
      node: m,
      group: g.id,
      membership: g.initial,
      electionMode: g.mode,
      disk: node.disk,
      checker: g.checker,
      bugs: this.consensusBugSet,
      dedupDisabled: this.dedupDisabled,
      timing,
      compactEvery: g.compactEvery,
      monoMs: () => node.clock.monoMs(),
      wallNs: () => node.clock.wallNs(),
      send: (msg, snap) => this.sendMessage(msg, snap),
      trace: (t) => this.log(t),
      prng: () => this.prng.fork(),
    });
    node.hosts.push(host);
    g.hosts.push(host);
    return host;
  }

  /** The control plane creates a replica of `group` on a spare node (then adds it as a learner). */
  private addReplica(group: GroupId, m: NodeId): void {
    const g = this.groups.find((x) => x.id === group)!;
    if (g.members.includes(m)) return;
    g.members.push(m);
    const host = this.makeHost(g, m);
    const node = this.nodes[m - 1]!;
    this.log(() => `control: g${group} replica created on n${m}`);
    if (node.state !== 'down') node.deliver(() => host.start());
  }

  /** A replica whose removal committed: the node deletes it and its data. */
  private dropReplica(group: GroupId, m: NodeId): void {
    const g = this.groups.find((x) => x.id === group)!;
    const node = this.nodes[m - 1]!;
    const host = g.hosts.find((h) => h.node === m);
    if (host === undefined) return;
    host.crash();
    g.hosts.splice(g.hosts.indexOf(host), 1);
    node.hosts.splice(node.hosts.indexOf(host), 1);
    g.members.splice(g.members.indexOf(m), 1);
    node.disk.dropGroup(group);
    this.log(() => `control: g${group} replica on n${m} removed and deleted`);
  }

  private buildClients(): void {
    const p = this.prng;
    let next = 1;
    for (const g of this.groups) {
      // Busy clients (back to back, quick retries) and sporadic ones (idle often, patient).
      const busy = p.int(2, 5);
      const count = busy + p.int(1, 3);
      for (let i = 0; i < count; i++) {
        const id = next++;
        const sporadic = i >= busy;
        const c = new SimClient(id, {
          now: () => this.now,
          schedule: (d, fn) => this.queue.push(this.now + d, fn),
          send: (client, node, req, onReply) => this.sendRequest(client, node, g.id, req, onReply),
          trace: (t) => this.log(t),
          history: this.history,
          prng: p.fork(),
          members: g.members,
          keys: g.keys,
          attemptTimeoutMs: sporadic ? p.pick([1000, 2500]) : 300,
          idleRate: sporadic ? 0.6 : 0.02,
          opDeadlineMs: 4000,
        });
        this.clients.push(c);
      }
    }
  }

  private hostOf(node: number, group: number): ReplicaHost | undefined {
    return this.nodes[node - 1]?.hosts.find((h) => h.env.group === group);
  }

  /** How many nodes hold entry (index, term) of `group` on their synced disk. */
  private durableOn(group: GroupId, index: number, t: number): number {
    let n = 0;
    for (const node of this.nodes) {
      const d = node.disk.durable.get(group);
      if (d === undefined) continue;
      const base = d.snapshot?.meta.index ?? 0;
      if (index <= base || d.entries[index - base - 1]?.term === t) n++;
    }
    return n;
  }

  leaderOf(group: number): NodeId | undefined {
    const g = this.groups.find((x) => x.id === group);
    let best: ReplicaHost | undefined;
    for (const h of g?.hosts ?? []) {
      if (h.up && h.role === 'leader' && (best === undefined || h.term > best.term)) best = h;
    }
    return best?.node;
  }

  private sendMessage(msg: Message, snap: KvSnapshot | undefined): void {
    this.net.send(msg.from, msg.to, () => {
      const node = this.nodes[msg.to - 1];
      node?.deliver(() => {
        if (msg.type !== 'heartbeat' && msg.type !== 'heartbeatResp') this.log(() => describeMessage(msg));
        this.hostOf(msg.to, msg.group)?.receive(msg, snap);
      });
    });
  }

  private sendCampaign(group: GroupId, node: NodeId, minTerm: number): void {
    this.net.send(mmEndpoint, node, () => {
      this.nodes[node - 1]?.deliver(() => this.hostOf(node, group)?.campaign(term(minTerm)));
    });
  }

  private sendMembership(group: GroupId, leader: NodeId, change: MembershipChange): void {
    this.net.send(mmEndpoint, leader, () => {
      this.nodes[leader - 1]?.deliver(() => this.hostOf(leader, group)?.changeMembership(change));
    });
  }

  private sendTransfer(group: GroupId, leader: NodeId, to: NodeId): void {
    this.net.send(mmEndpoint, leader, () => {
      this.nodes[leader - 1]?.deliver(() => this.hostOf(leader, group)?.transfer(to));
    });
  }

  private sendRequest(
    client: number,
    node: NodeId,
    group: GroupId,
    req: ClientRequest,
    onReply: (r: ClientReply) => void,
  ): void {
    const from = clientEndpointBase + client;
    this.net.send(from, node, () => {
      this.nodes[node - 1]?.deliver(() => {
        this.hostOf(node, group)?.request(req, (r) => this.net.send(node, from, () => onReply(r)));
      });
    });
  }

  private startNodeLoops(n: SimNode): void {
    const tick = (): void => {
      for (const h of n.hosts) h.tick();
      n.schedule(tickMs, tick);
    };
    n.schedule(this.prng.int(1, tickMs), tick);
    const heartbeat = (): void => {
      const statuses = n.hosts.filter((h) => h.replica !== null).map((h) => h.replica!.status());
      this.net.send(n.id, mmEndpoint, () => this.mm.onHeartbeat(statuses));
      n.schedule(timing.heartbeatIntervalMs, heartbeat);
    };
    n.schedule(this.prng.int(1, timing.heartbeatIntervalMs), heartbeat);
  }

  /** Runs events until `until` (simulated ms) or until `done()` holds. */
  private runUntil(until: number, done?: () => boolean): void {
    while (this.queue.peekTime() <= until) {
      const ev = this.queue.pop()!;
      this.now = ev.at;
      ev.run();
      if (++this.events > eventsMax) throw new SimViolation('stuck', `more than ${eventsMax} events`);
      if (done && (this.events & 63) === 0 && done()) return;
    }
    this.now = Math.max(this.now, until);
  }

  run(): SeedResult {
    const faultMs = this.options.faultMs ?? 10_000;
    const livenessMs = this.options.livenessMs ?? 20_000;
    try {
      for (const n of this.nodes) n.restart();
      const mmTick = (): void => {
        this.mm.tick();
        this.queue.push(this.now + timing.heartbeatIntervalMs, mmTick);
      };
      this.queue.push(timing.heartbeatIntervalMs, mmTick);
      for (const c of this.clients) c.start();
      this.nemesis.start();
      this.runUntil(faultMs);
      this.nemesis.calm();
      this.mm.rebalancing = false;
      const deadline = this.now + livenessMs;
      for (const c of this.clients) c.stopAndVerify(deadline);
      this.runUntil(deadline, () => this.settled());
      this.checkLiveness();
    } catch (e) {
      return this.result(e);
    }
    const report = checkHistory(this.history.events);
    if (report.verdict === 'violation') {
      return this.result(new SimViolation('linearizability', formatReport(report)), report);
    }
    return this.result(null, report);
  }

  private settled(): boolean {
    if (!this.clients.every((c) => c.idle)) return false;
    return this.groups.every((g) => this.converged(g));
  }

  private converged(g: GroupSetup): boolean {
    const first = g.hosts[0]!;
    if (!g.hosts.every((h) => h.up)) return false;
    if (!g.hosts.some((h) => h.role === 'leader')) return false;
    return g.hosts.every((h) => h.sm.appliedIndex === first.sm.appliedIndex && h.sm.appliedIndex >= 1);
  }

  private checkLiveness(): void {
    const stuck = this.clients.filter((c) => !c.idle);
    if (stuck.length > 0) {
      throw new SimViolation(
        'liveness',
        `clients ${stuck.map((c) => c.id).join(',')} did not finish after faults stopped`,
      );
    }
    const failed = this.clients.filter((c) => c.finalReadsFailed > 0);
    if (failed.length > 0) {
      throw new SimViolation(
        'liveness',
        `final reads of clients ${failed.map((c) => c.id).join(',')} got no answer`,
      );
    }
    for (const g of this.groups) {
      if (!this.converged(g)) {
        const applied = g.hosts.map((h) => `n${h.node}:${h.role[0]}${h.sm.appliedIndex}`).join(' ');
        throw new SimViolation('liveness', `group ${g.id} did not converge (${applied})`);
      }
    }
  }

  private result(e: unknown, report: CheckReport | null = null): SeedResult {
    let invariant: string | null = null;
    let message: string | null = null;
    if (e instanceof SimViolation) {
      invariant = e.invariant;
      message = e.message;
    } else if (e instanceof AssertionError) {
      invariant = 'assertion';
      message = e.stack ?? e.message;
    } else if (e !== null) {
      invariant = 'exception';
      message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    }
    const ops = this.history.events.filter((x) => x.type === 'invoke').length;
    const shape = this.groups
      .map((g) => `g${g.id}:${g.members.length}${g.mode === 'self' ? 's' : 'd'}`)
      .join(' ');
    return {
      seed: this.options.seed,
      ok: invariant === null,
      invariant,
      message,
      ops,
      simulatedMs: this.now,
      events: this.events,
      trace: invariant === null ? [] : this.trace.lines(),
      report,
      summary: `${this.nodes.length} nodes, groups ${shape}, ${this.clients.length} clients, ${this.nemesis.faults} faults, ${this.mm.campaignsOrdered} directed campaigns, ${this.mm.transfersOrdered} transfers, ${this.mm.replacementsDone}/${this.mm.replacementsStarted} replacements`,
    };
  }
}

function describeMessage(m: Message): string {
  const base = `g${m.group} n${m.from}->n${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'append':
      return `${base} prev ${m.prevIndex}/${m.prevTerm} commit ${m.commit} entries ${m.entries.length ? `${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}` : '-'}`;
    case 'appendResp':
      return `${base} ${m.reject ? 'reject' : 'ok'} index ${m.index} hint ${m.hint}`;
    case 'vote':
    case 'voteResp':
      return `${base}${m.pre ? ' pre' : ''}${m.type === 'vote' ? ` last ${m.lastIndex}/${m.lastTerm}` : m.granted ? ' granted' : ' refused'}`;
    case 'snapshot':
      return `${base} at ${m.meta.index}`;
    default:
      return base;
  }
}

export function runSeed(options: SimOptions): SeedResult {
  return new SimWorld(options).run();
}
