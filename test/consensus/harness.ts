/**
 * A tiny in-test network for the consensus core: N replicas, a synchronous driver per replica
 * (persist, send, apply), a message queue with partitions, per-node pause and restart.
 * The full simulator (faults, checkers) is test/sim/.
 */
import { type GroupId, type LogIndex, type NodeId, nodeId, type Seq } from '../../src/lib/ids.js';
import { Prng } from '../../src/lib/prng.js';
import { Replica } from '../../src/consensus/replica.js';
import type {
  ConsensusBug,
  DroppedRange,
  ElectionMode,
  Entry,
  HardState,
  Membership,
  Message,
  Ready,
  ReadState,
  ReplicaConfig,
  SnapshotMeta,
  SoftState,
} from '../../src/consensus/types.js';
import { Sequencer } from '../../src/sequencer/sequencer.js';

export const G = 7 as GroupId;

export interface Disk {
  hardState?: HardState;
  snapshot?: SnapshotMeta;
  entries: Entry[];
  appliedIndex: number;
  appliedSeq?: Seq;
}

export interface Node {
  id: NodeId;
  r: Replica;
  disk: Disk;
  /** Entries applied by this node's state machine, by index. */
  applied: Map<number, Entry>;
  readStates: ReadState[];
  failedReads: number[];
  soft: SoftState | null;
  paused: boolean;
  down: boolean;
  /** Extra monotonic offset (simulates a clock or a pause jump). */
  clockSkewMs: number;
  /** Offset of this node's wall clock. */
  wallSkewNs: bigint;
  dropped: DroppedRange[];
}

export interface ClusterOptions {
  mode?: ElectionMode;
  bugs?: ConsensusBug[];
  seed?: number;
  learners?: number[];
  extra?: Partial<ReplicaConfig>;
}

export class Cluster {
  readonly nodes = new Map<NodeId, Node>();
  nowMs = 1000;
  wallNs = 1_700_000_000_000_000_000n;
  queue: Message[] = [];
  /** Return true to drop a message. */
  filter: (m: Message) => boolean = () => false;
  readonly membership: Membership;
  readonly prng: Prng;
  readonly opts: ClusterOptions;

  constructor(ids: number[], opts: ClusterOptions = {}) {
    this.opts = opts;
    this.prng = new Prng(opts.seed ?? 1);
    this.membership = { voters: ids.map(nodeId), learners: (opts.learners ?? []).map(nodeId) };
    for (const id of [...ids, ...(opts.learners ?? [])])
      this.start(nodeId(id), { entries: [], appliedIndex: 0 });
  }

  config(id: NodeId, disk: Disk): ReplicaConfig {
    return {
      group: G,
      id,
      initialMembership: this.membership,
      electionMode: this.opts.mode ?? 'directed',
      sequencer: new Sequencer(id, disk.appliedSeq),
      prng: this.prng.fork(),
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      leaseDriftMarginMs: 100,
      directedFallbackMs: 5000,
      fsyncStallMaxMs: 2000,
      bugs: new Set(this.opts.bugs ?? []),
      ...this.opts.extra,
    };
  }

  /** (Re)start a replica from its disk. */
  start(id: NodeId, disk: Disk): Node {
    const r = new Replica(this.config(id, disk), {
      ...(disk.hardState ? { hardState: disk.hardState } : {}),
      ...(disk.snapshot ? { snapshot: disk.snapshot } : {}),
      entries: disk.entries,
      appliedIndex: disk.appliedIndex as LogIndex,
    });
    const old = this.nodes.get(id);
    const n: Node = {
      id,
      r,
      disk,
      applied: old?.applied ?? new Map(),
      readStates: [],
      failedReads: [],
      soft: null,
      paused: false,
      down: false,
      clockSkewMs: old?.clockSkewMs ?? 0,
      wallSkewNs: old?.wallSkewNs ?? 0n,
      dropped: [],
    };
    this.nodes.set(id, n);
    r.tick(this.nodeMs(n), this.nodeWallNs(n));
    return n;
  }

  restart(id: number): Node {
    const n = this.node(id);
    this.queue = this.queue.filter((m) => m.to !== n.id);
    return this.start(n.id, n.disk);
  }

  node(id: number): Node {
    const n = this.nodes.get(id as NodeId);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  nodeWallNs(n: Node): bigint {
    return this.wallNs + n.wallSkewNs;
  }

  nodeMs(n: Node): number {
    return this.nowMs + n.clockSkewMs;
  }

  /** Drain one node's Ready with a synchronous driver: send, persist, send after persist, apply. */
  drain(n: Node): boolean {
    if (n.paused || n.down || !n.r.hasReady()) return false;
    const rd: Ready = n.r.ready();
    this.queue.push(...rd.messages);
    this.persist(n, rd);
    n.r.persisted(rd.number);
    this.queue.push(...rd.messagesAfterPersist);
    for (const e of rd.committed) {
      const prev = n.applied.get(e.index);
      if (prev !== undefined && prev.term !== e.term)
        throw new Error(`node ${n.id}: applied ${e.index} twice`);
      n.applied.set(e.index, e);
      n.disk.appliedIndex = e.index;
      n.disk.appliedSeq = e.seq;
    }
    const last = rd.committed[rd.committed.length - 1];
    if (last !== undefined) n.r.applied(last.index);
    n.readStates.push(...rd.readStates);
    n.failedReads.push(...rd.failedReads.map((f) => f.ctx));
    if (rd.softState !== null) n.soft = rd.softState;
    n.dropped.push(...rd.dropped);
    return true;
  }

  private persist(n: Node, rd: Ready): void {
    const d = n.disk;
    if (rd.snapshot !== null) {
      d.snapshot = rd.snapshot;
      d.entries = [];
      d.appliedIndex = rd.snapshot.index;
      d.appliedSeq = rd.snapshot.highestSeq;
      n.applied.set(rd.snapshot.index, {
        index: rd.snapshot.index,
        term: rd.snapshot.term,
        kind: 'noop',
        seq: rd.snapshot.highestSeq,
        data: new Uint8Array(0),
      });
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      const base = (d.snapshot?.index ?? 0) + 1;
      d.entries.length = Math.max(0, first - base);
      d.entries.push(...rd.entries);
    }
    if (rd.hardState !== null) d.hardState = rd.hardState;
  }

  /** Random loss, duplication and reordering of deliveries (0 = none). */
  chaos = { loss: 0, dup: 0, reorder: false };

  /** Deliver the queued messages (once), honouring partitions and paused/down nodes. */
  deliver(): boolean {
    let q = this.queue;
    this.queue = [];
    if (this.chaos.reorder) q = shuffle(q, this.prng);
    if (this.chaos.loss > 0) q = q.filter(() => !this.prng.chance(this.chaos.loss));
    if (this.chaos.dup > 0) q = q.flatMap((m) => (this.prng.chance(this.chaos.dup) ? [m, m] : [m]));
    let any = false;
    for (const m of q) {
      const to = this.nodes.get(m.to);
      if (to === undefined || to.down || this.filter(m)) continue;
      if (to.paused) {
        this.queue.push(m);
        continue;
      }
      const from = this.nodes.get(m.from);
      if (from?.paused) {
        this.queue.push(m);
        continue;
      }
      to.r.step(m);
      any = true;
    }
    return any;
  }

  /** Process until quiet (no Ready, nothing delivered). */
  settle(rounds = 200): void {
    for (let i = 0; i < rounds; i++) {
      let any = false;
      for (const n of this.nodes.values()) any = this.drain(n) || any;
      any = this.deliver() || any;
      if (!any) return;
    }
  }

  /** Advance time by ms in steps, ticking every running node, settling after each step. */
  run(ms: number, stepMs = 10): void {
    for (let t = 0; t < ms; t += stepMs) {
      this.nowMs += stepMs;
      this.wallNs += BigInt(stepMs) * 1_000_000n;
      for (const n of this.nodes.values()) {
        if (!n.paused && !n.down) n.r.tick(this.nodeMs(n), this.nodeWallNs(n));
      }
      this.settle();
    }
  }

  leaders(): Node[] {
    return [...this.nodes.values()].filter((n) => !n.down && n.r.status().role === 'leader');
  }

  leader(): Node {
    const ls = this.leaders();
    if (ls.length !== 1) throw new Error(`expected one leader, got ${ls.map((n) => n.id)}`);
    return ls[0]!;
  }

  /** Directed election of `id` and settle. */
  elect(id: number, minTerm = 0): Node {
    const n = this.node(id);
    const res = n.r.campaign(minTerm as never);
    if (!res.ok) throw res.error;
    this.settle();
    this.run(50);
    return n;
  }

  propose(id: number, ...values: string[]): number {
    const n = this.node(id);
    const res = n.r.propose(
      values.map((v) => new TextEncoder().encode(v)),
      this.nodeWallNs(n),
    );
    if (!res.ok) throw res.error;
    return res.firstIndex;
  }

  /** Values of applied command entries of a node, in index order. */
  values(id: number): string[] {
    const n = this.node(id);
    return [...n.applied.values()]
      .sort((a, b) => a.index - b.index)
      .filter((e) => e.kind === 'command')
      .map((e) => new TextDecoder().decode(e.data));
  }

  isolate(id: number): void {
    const prev = this.filter;
    this.filter = (m) => m.from === id || m.to === id || prev(m);
  }

  heal(): void {
    this.filter = () => false;
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function shuffle<T>(a: T[], prng: Prng): T[] {
  const out = a.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
