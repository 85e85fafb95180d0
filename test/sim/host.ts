/**
 * The simulator's driver for one replica of one group on one node: it runs the REAL consensus core
 * through the documented loop (docs/consensus.md): send, persist (through the simulated disk, with
 * group commit), then persisted() and the after-persist messages, apply, serve reads. It also takes
 * compaction checkpoints and restarts from the simulated durable state after a crash.
 */
import { decodeMembershipChange, Replica } from '../../src/consensus/index.js';
import { applyMembershipChange } from '../../src/consensus/quorum.js';
import type {
  Entry,
  ConsensusBug,
  Membership,
  MembershipChange,
  Message,
  Ready,
  ReplicaConfig,
} from '../../src/consensus/types.js';
import { assert } from '../../src/lib/assert.js';
import { type GroupId, type LogIndex, type NodeId, logIndex, type Term } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';
import { Sequencer, seqToHex, ZERO_SEQ } from '../../src/sequencer/index.js';
import type { SimDisk, StoredSnapshot } from './disk.js';
import type { GroupChecker, LogView } from './invariants.js';
import { encodeCommand, type KvCommand, type KvOutcome, type KvSnapshot, KvStateMachine } from './kv.js';

/** Full state digests are compared at every index that is a multiple of this (they cost CPU). */
const stateCheckEvery = 32;

export type ClientRequest = { kind: 'write'; cmd: KvCommand } | { kind: 'read'; key: string };

export type ClientReply =
  | { type: 'outcome'; outcome: KvOutcome }
  | { type: 'value'; value: string; seq: string }
  | { type: 'absent' }
  | { type: 'error'; code: string; leader: number };

export interface HostEnv {
  readonly node: NodeId;
  readonly group: GroupId;
  readonly membership: Membership;
  readonly electionMode: 'directed' | 'self';
  readonly disk: SimDisk;
  readonly checker: GroupChecker;
  readonly bugs: ReadonlySet<ConsensusBug>;
  readonly dedupDisabled: boolean;
  readonly timing: {
    heartbeatIntervalMs: number;
    electionTimeoutMs: number;
    leaseDriftMarginMs: number;
    directedFallbackMs: number;
    fsyncStallMaxMs: number;
  };
  readonly compactEvery: number;
  monoMs(): number;
  wallNs(): bigint;
  send(msg: Message, snap: KvSnapshot | undefined): void;
  trace(text: () => string): void;
  prng(): Prng;
}

interface PendingWrite {
  readonly term: Term;
  readonly reply: (r: ClientReply) => void;
}

export class ReplicaHost implements LogView {
  replica: Replica | null = null;
  sm: KvStateMachine;
  snapIndex = 0;
  snapTerm = 0;
  snapSeq = seqToHex(ZERO_SEQ);
  entries: Entry[] = [];
  role = 'follower';
  leader = 0;
  term = 0;
  removed = false;
  /** The membership in force at the applied index (carried in checkpoints). */
  membership: Membership;
  private readonly incomingSnaps = new Map<number, KvSnapshot>();
  private readonly pendingWrites = new Map<number, PendingWrite>();
  /** `committedBefore`: the group's highest applied index anywhere when the read arrived. */
  private readonly pendingReads = new Map<
    number,
    { key: string; committedBefore: number; reply: (r: ClientReply) => void }
  >();
  private nextCtx = 1;
  private checkpointing = false;
  private incarnation = 0;
  private driving = false;
  private staleAppend: Message | null = null;

  constructor(readonly env: HostEnv) {
    this.sm = new KvStateMachine(env.dedupDisabled);
    this.membership = env.membership;
  }

  get node(): NodeId {
    return this.env.node;
  }

  get up(): boolean {
    return this.replica !== null;
  }

  /** Boots (or reboots after a crash) from the durable state only. */
  start(): void {
    assert(this.replica === null, 'start of a running replica');
    this.incarnation++;
    const d = this.env.disk.replica(this.env.group);
    this.sm = new KvStateMachine(this.env.dedupDisabled);
    if (d.snapshot) this.sm.restore(d.snapshot.data);
    const meta = d.snapshot?.meta;
    this.snapIndex = meta?.index ?? 0;
    this.snapTerm = meta?.term ?? 0;
    this.snapSeq = seqToHex(meta?.highestSeq ?? ZERO_SEQ);
    this.entries = [...d.entries];
    this.membership = meta?.membership ?? this.env.membership;
    this.role = 'follower';
    this.leader = 0;
    const t = this.env.timing;
    const config: ReplicaConfig = {
      group: this.env.group,
      id: this.env.node,
      initialMembership: this.env.membership,
      electionMode: this.env.electionMode,
      sequencer: new Sequencer(this.env.node, meta?.highestSeq),
      prng: this.env.prng(),
      heartbeatIntervalMs: t.heartbeatIntervalMs,
      electionTimeoutMs: t.electionTimeoutMs,
      leaseDriftMarginMs: t.leaseDriftMarginMs,
      directedFallbackMs: t.directedFallbackMs,
      fsyncStallMaxMs: t.fsyncStallMaxMs,
      bugs: this.env.bugs,
    };
    this.replica = new Replica(config, {
      ...(d.hardState ? { hardState: d.hardState } : {}),
      ...(meta ? { snapshot: meta, appliedIndex: meta.index } : {}),
      entries: d.entries,
    });
    this.env.checker.onState(this.node, this.sm, true);
    this.drive();
  }

  /** Process death: everything in memory is gone; clients time out. */
  crash(): void {
    this.replica = null;
    this.incomingSnaps.clear();
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.checkpointing = false;
  }

  tick(): void {
    if (!this.replica) return;
    this.replica.tick(this.env.monoMs(), this.env.wallNs());
    this.drive();
  }

  receive(msg: Message, snap: KvSnapshot | undefined): void {
    if (!this.replica) return;
    if (msg.type === 'snapshot') {
      if (snap === undefined) return;
      this.incomingSnaps.set(msg.meta.index, snap);
    }
    // Split brain: entries from a leader of an older term must never be accepted (checked on the
    // Ready that follows).
    this.staleAppend = msg.type === 'append' && msg.term < this.term && msg.entries.length > 0 ? msg : null;
    this.replica.step(msg);
    this.drive();
    this.staleAppend = null;
  }

  campaign(minTerm: Term): void {
    if (!this.replica) return;
    const r = this.replica.campaign(minTerm);
    this.env.trace(
      () => `n${this.node} g${this.env.group} campaign(${minTerm}) -> ${r.ok ? 'ok' : r.error.code}`,
    );
    this.drive();
  }

  transfer(to: NodeId): void {
    if (!this.replica) return;
    const r = this.replica.transferLeadership(to);
    this.env.trace(
      () => `n${this.node} g${this.env.group} transfer to n${to} -> ${r.ok ? 'ok' : r.error.code}`,
    );
    this.drive();
  }

  /** A membership change ordered by the metadata manager (leader only). */
  changeMembership(change: MembershipChange): void {
    if (!this.replica) return;
    const r = this.replica.proposeMembership(change, this.env.wallNs());
    this.env.trace(
      () =>
        `n${this.node} g${this.env.group} ${change.type} n${change.node} -> ${r.ok ? 'proposed' : r.error.code}`,
    );
    this.drive();
  }

  request(req: ClientRequest, reply: (r: ClientReply) => void): void {
    const r = this.replica;
    if (!r) return;
    if (req.kind === 'write') {
      const res = r.propose([encodeCommand(req.cmd)], this.env.wallNs());
      if (!res.ok) reply(errorReply(res.error.code, res.error.detail));
      else this.pendingWrites.set(res.firstIndex, { term: res.term, reply });
    } else if (r.readNow(this.env.monoMs())) {
      // Served at once, as the production host does (lease valid, everything committed applied).
      this.env.checker.onRead(
        this.node,
        this.term,
        'lease',
        this.sm.appliedIndex,
        this.env.checker.committedMax,
      );
      const v = this.sm.get(req.key);
      reply(v ? { type: 'value', value: v.value, seq: v.seq } : { type: 'absent' });
      return;
    } else {
      const ctx = this.nextCtx++;
      const res = r.read(ctx, this.env.monoMs());
      if (!res.ok) reply(errorReply(res.error.code, res.error.detail));
      else
        this.pendingReads.set(ctx, { key: req.key, committedBefore: this.env.checker.committedMax, reply });
    }
    this.drive();
  }

  /** Drains Readys; re-entrant calls (a write durable at once) leave the work to the outer loop. */
  private drive(): void {
    if (this.driving) return;
    this.driving = true;
    try {
      for (let guard = 0; this.replica?.hasReady(); guard++) {
        assert(guard < 10_000, 'ready loop does not settle');
        this.handle(this.replica.ready());
      }
    } finally {
      this.driving = false;
    }
  }

  private handle(rd: Ready): void {
    const r = this.replica!;
    if (this.staleAppend !== null) {
      const m = this.staleAppend;
      this.staleAppend = null;
      this.env.checker.onStaleAppend(this.node, this.term, m.term, m.from, rd.entries.length);
    }
    for (const m of rd.messages) this.sendOne(r, m);
    this.persist(rd);
    if (rd.softState) {
      this.role = rd.softState.role;
      this.leader = rd.softState.leader;
      this.term = rd.softState.term;
      this.removed = rd.softState.removed;
      this.env.trace(
        () => `n${this.node} g${this.env.group} ${this.role} term ${this.term} leader ${this.leader}`,
      );
      if (this.role === 'leader') this.env.checker.onLeader(this.node, this.term, this);
    }
    this.apply(rd.committed);
    for (const rs of rd.readStates) {
      const p = this.pendingReads.get(rs.ctx);
      if (!p) continue;
      this.pendingReads.delete(rs.ctx);
      assert(
        this.sm.appliedIndex >= rs.index,
        `read state ${rs.index} served at applied ${this.sm.appliedIndex}`,
      );
      this.env.checker.onRead(this.node, this.term, rs.via, this.sm.appliedIndex, p.committedBefore);
      const v = this.sm.get(p.key);
      p.reply(v ? { type: 'value', value: v.value, seq: v.seq } : { type: 'absent' });
    }
    for (const f of rd.failedReads) {
      const p = this.pendingReads.get(f.ctx);
      this.pendingReads.delete(f.ctx);
      p?.reply(errorReply(f.error.code, f.error.detail));
    }
    for (const d of rd.dropped) {
      for (let i = d.first; i <= d.last; i++) {
        const p = this.pendingWrites.get(i);
        if (p?.term !== d.term) continue;
        this.pendingWrites.delete(i);
        p.reply({ type: 'error', code: 'NOT_LEADER', leader: this.leader });
      }
    }
  }

  private sendOne(r: Replica, m: Message): void {
    if (m.type !== 'snapshot') {
      this.env.send(m, undefined);
      return;
    }
    const data = this.sm.snapshot();
    assert(
      data.index === m.meta.index,
      `snapshot message at ${m.meta.index}, state machine at ${data.index}`,
    );
    this.env.trace(() => `n${this.node} g${this.env.group} sends snapshot@${m.meta.index} to n${m.to}`);
    this.env.send(m, data);
    r.reportSnapshot(m.to, true);
  }

  private persist(rd: Ready): void {
    const disk = this.env.disk;
    const group = this.env.group;
    if (rd.snapshot) {
      const data = this.incomingSnaps.get(rd.snapshot.index);
      assert(data !== undefined, `no data for snapshot ${rd.snapshot.index}`);
      this.incomingSnaps.clear();
      this.sm.restore(data);
      this.snapIndex = rd.snapshot.index;
      this.snapTerm = rd.snapshot.term;
      this.snapSeq = seqToHex(rd.snapshot.highestSeq);
      this.membership = rd.snapshot.membership;
      this.entries = [];
      this.env.checker.onState(this.node, this.sm, true);
      disk.write({ kind: 'install', group, snap: { meta: rd.snapshot, data } });
    }
    if (rd.entries.length > 0) {
      this.env.checker.onAppend(this, rd.entries);
      const keep = rd.entries[0]!.index - this.snapIndex - 1;
      assert(keep >= 0 && keep <= this.entries.length, `append at ${rd.entries[0]!.index} leaves a gap`);
      this.entries.length = keep;
      this.entries.push(...rd.entries);
      disk.write({ kind: 'entries', group, entries: rd.entries });
    }
    if (rd.hardState) disk.write({ kind: 'hardState', group, hardState: rd.hardState });
    const inc = this.incarnation;
    disk.afterPending(() => {
      if (this.incarnation !== inc || !this.replica) return;
      this.replica.persisted(rd.number);
      for (const m of rd.messagesAfterPersist) this.env.send(m, undefined);
      this.drive();
    });
  }

  private apply(committed: readonly Entry[]): void {
    if (committed.length === 0) return;
    for (const e of committed) {
      if (e.index <= this.sm.appliedIndex) continue;
      const res = this.sm.apply(e);
      if (e.kind === 'config')
        this.membership = applyMembershipChange(this.membership, decodeMembershipChange(e.data));
      this.env.checker.onApply(this.node, this.term, e, res);
      if (e.index % stateCheckEvery === 0) this.env.checker.onState(this.node, this.sm, true);
      const p = this.pendingWrites.get(e.index);
      if (p === undefined) continue;
      this.pendingWrites.delete(e.index);
      if (p.term === e.term && res.outcome) p.reply({ type: 'outcome', outcome: res.outcome });
      else p.reply({ type: 'error', code: 'NOT_LEADER', leader: this.leader });
    }
    this.env.checker.onState(this.node, this.sm, false);
    this.replica!.applied(logIndex(this.sm.appliedIndex));
    this.maybeCheckpoint();
  }

  /** Compaction: persist the state machine at the applied index, then let the core drop its log. */
  private maybeCheckpoint(): void {
    const at = this.sm.appliedIndex;
    if (this.checkpointing || at - this.snapIndex < this.env.compactEvery) return;
    const e = this.entries[at - this.snapIndex - 1];
    assert(e !== undefined && e.index === at, `no log entry at applied index ${at}`);
    const snap: StoredSnapshot = {
      meta: {
        index: e.index,
        term: e.term,
        membership: this.membership,
        highestSeq: this.sm.highestSeq,
      },
      data: this.sm.snapshot(),
    };
    this.checkpointing = true;
    this.env.disk.write({ kind: 'checkpoint', group: this.env.group, snap });
    const inc = this.incarnation;
    this.env.disk.afterPending(() => {
      if (this.incarnation !== inc || !this.replica) return;
      this.checkpointing = false;
      const res = this.replica.compact(e.index as LogIndex);
      if (!res.ok) return;
      if (e.index > this.snapIndex) {
        this.entries = this.entries.filter((x) => x.index > e.index);
        this.snapIndex = e.index;
        this.snapTerm = e.term;
        this.snapSeq = seqToHex(snap.meta.highestSeq);
      }
      this.env.trace(() => `n${this.node} g${this.env.group} compacted through ${e.index}`);
      this.drive();
    });
  }
}

function errorReply(code: string, detail: Record<string, unknown> | undefined): ClientReply {
  const leader = typeof detail?.leader === 'number' ? detail.leader : 0;
  return { type: 'error', code, leader };
}
