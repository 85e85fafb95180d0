/**
 * The group host: many replicas of many groups on one node, one shared log (group commit across
 * groups), consensus traffic over one Transport, one tick loop, and a ready scheduler that runs on
 * setImmediate when any replica has work. Follows the driver loop of docs/consensus.md; see
 * docs/host.md.
 */
import path from 'node:path';
import { decodeMembershipChange, encodeMessage, tryDecodeMessage } from '../consensus/codec.js';
import type { Message, MembershipChange, Ready, ReplicaStatus, SnapshotMsg } from '../consensus/types.js';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { createLogger, type Logger } from '../lib/log.js';
import { defaultRegistry } from '../lib/metrics.js';
import { type Log, type LogRecord, openLog } from '../log/log.js';
import type { PeerIdentity } from '../transport/index.js';
import { systemClock } from './clock.js';
import { Descriptors, initialSnapshot } from './descriptor.js';
import type { HostedGroup } from './group.js';
import { HostMetrics } from './metrics.js';
import { atApplied, readyRecords } from './ready-records.js';
import { startGroup, type StartContext } from './recover.js';
import { SnapshotReceiver, SnapshotSender } from './snapshot.js';
import { iterateChunks as iterate } from './snapshot-stream.js';
import {
  type AddGroupOptions,
  type AppliedPosition,
  type Clock,
  type CommandOutcome,
  type GroupHostApi,
  type GroupHostOptions,
  HOST_MESSAGE_KIND,
  HOST_SNAPSHOT_KIND,
  type SoftStateListener,
  type StateMachine,
} from './types.js';

export class GroupHost<R> implements GroupHostApi<R> {
  readonly nodeId: NodeId;
  readonly log: Log;
  private readonly opts: GroupHostOptions<R>;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly descriptors: Descriptors;
  private readonly ctx: StartContext<R>;
  private readonly live = new Map<GroupId, HostedGroup<R>>();
  private readonly starting = new Map<GroupId, Promise<void>>();
  private readonly listeners = new Set<SoftStateListener>();
  private readonly metrics: HostMetrics;
  private readonly sender: SnapshotSender<R>;
  private readonly receiver: SnapshotReceiver<R>;
  private readonly timer: NodeJS.Timeout;
  private scheduled = false;
  private readCtx = 0;
  private closed = false;

  private constructor(opts: GroupHostOptions<R>, log: Log, descriptors: Descriptors) {
    this.opts = opts;
    this.nodeId = opts.nodeId;
    this.log = log;
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? createLogger('host');
    this.descriptors = descriptors;
    this.metrics = new HostMetrics(opts.metrics ?? defaultRegistry, String(opts.nodeId));
    this.ctx = {
      nodeId: opts.nodeId,
      log,
      descriptors,
      factory: opts.stateMachines,
      timing: opts.timing ?? {},
      seed: opts.seed ?? Math.floor(Math.random() * 0x1_0000_0000),
    };
    const t = opts.transport;
    this.sender = new SnapshotSender<R>(t, this.logger, (g, to, ok) => this.snapshotSent(g, to, ok));
    this.receiver = new SnapshotReceiver<R>(
      opts.nodeId,
      (g) => this.live.get(g),
      (hg) => this.schedule(hg),
    );
    t.onMessage(HOST_MESSAGE_KIND, (from, payload) => this.onMessage(from, payload));
    t.onRequest(HOST_SNAPSHOT_KIND, (from, payload) => this.receiver.onFrame(from, payload));
    this.timer = setInterval(() => this.tick(), opts.tickIntervalMs ?? limits.hostTickIntervalMs);
  }

  /** Opens the log in `dir/log` and restarts every group found on disk. */
  static async open<R>(opts: GroupHostOptions<R>): Promise<GroupHost<R>> {
    const descriptors = new Descriptors(opts.dir);
    await descriptors.init();
    const log = await openLog(path.join(opts.dir, 'log'), opts.log);
    const host = new GroupHost<R>(opts, log, descriptors);
    try {
      await host.recover();
    } catch (e) {
      await host.close();
      throw e;
    }
    return host;
  }

  private async recover(): Promise<void> {
    const known = new Set<GroupId>();
    for (const g of await this.descriptors.list()) {
      const d = await this.descriptors.read(g);
      if (d === undefined) continue;
      known.add(g);
      this.adopt(await startGroup(this.ctx, d));
    }
    // A group in the log without a descriptor: a crash inside removeGroup. Finish the removal.
    for (const g of this.log.groupIds()) {
      if (known.has(g)) continue;
      this.logger.warn('dropping a group without descriptor', { group: g });
      await this.log.append([{ kind: 'dropGroup', group: g }]);
      const sm = await this.opts.stateMachines(g);
      await sm.destroy();
    }
  }

  private adopt(hg: HostedGroup<R>): void {
    this.live.set(hg.id, hg);
    hg.replica.tick(this.clock.monoMs(), this.clock.wallNs());
    this.schedule(hg);
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  groups(): GroupId[] {
    return [...this.live.keys()].sort((a, b) => a - b);
  }

  async addGroup(group: GroupId, options: AddGroupOptions): Promise<void> {
    this.checkOpen();
    if (this.live.has(group)) return;
    const inFlight = this.starting.get(group);
    if (inFlight !== undefined) return inFlight;
    const p = (async () => {
      let d = await this.descriptors.read(group);
      if (d === undefined) {
        d = {
          group,
          electionMode: options.electionMode,
          snapshot: initialSnapshot(options.membership),
          installing: null,
        };
        await this.descriptors.write(d);
      }
      const hg = await startGroup(this.ctx, d);
      if (this.closed) {
        await hg.sm.close();
        return;
      }
      this.adopt(hg);
    })();
    this.starting.set(group, p);
    try {
      await p;
    } finally {
      this.starting.delete(group);
    }
  }

  async removeGroup(group: GroupId): Promise<void> {
    const hg = this.live.get(group);
    if (hg === undefined) return;
    this.live.delete(group);
    hg.stopped = true;
    hg.failAll('UNAVAILABLE', 'the replica was removed from this node');
    while (hg.busy || hg.applyPending > 0 || hg.checkpointing !== null)
      await new Promise((r) => setTimeout(r, 5));
    // Descriptor first: a replica must never come back without its hard state.
    await this.descriptors.remove(group);
    await this.log.append([{ kind: 'dropGroup', group }]);
    await hg.sm.destroy();
    this.logger.info('group removed', { group });
  }

  stateMachine(group: GroupId): StateMachine<R> | undefined {
    return this.live.get(group)?.sm;
  }

  status(group: GroupId): ReplicaStatus | undefined {
    return this.live.get(group)?.replica.status();
  }

  onSoftState(listener: SoftStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // -------------------------------------------------------------------------------------------
  // Client calls

  private group(group: GroupId): HostedGroup<R> {
    this.checkOpen();
    const hg = this.live.get(group);
    if (hg === undefined)
      throw new TesseraError('GROUP_NOT_FOUND', `group ${group} is not hosted on node ${this.nodeId}`);
    // Stopped by an error (its Readys are no longer taken): nothing asked of it would ever finish.
    if (hg.stopped) throw new TesseraError('UNAVAILABLE', `group ${group} is stopped on node ${this.nodeId}`);
    return hg;
  }

  async propose(group: GroupId, commands: readonly Uint8Array[]): Promise<CommandOutcome<R>[]> {
    const hg = this.group(group);
    assert(commands.length > 0, 'propose: no commands');
    const res = hg.replica.propose(commands, this.clock.wallNs());
    if (!res.ok) throw res.error;
    const out = new Array<CommandOutcome<R>>(commands.length);
    const done = new Promise<CommandOutcome<R>[]>((resolve) => {
      let left = commands.length;
      hg.expect(res.firstIndex, res.term, commands.length, (k, o) => {
        out[k] = o;
        if (--left === 0) resolve(out);
      });
    });
    this.schedule(hg);
    return done;
  }

  async proposeMembership(group: GroupId, change: MembershipChange): Promise<LogIndex> {
    const hg = this.group(group);
    const res = hg.replica.proposeMembership(change, this.clock.wallNs());
    if (!res.ok) throw res.error;
    const done = new Promise<CommandOutcome<R>>((resolve) =>
      hg.expect(res.firstIndex, res.term, 1, (_k, o) => resolve(o)),
    );
    this.schedule(hg);
    const o = await done;
    if (!o.ok) throw o.error;
    return o.index;
  }

  async read(group: GroupId): Promise<void> {
    const hg = this.group(group);
    // Under a valid lease with everything committed applied: served now, no Ready round trip.
    if (hg.replica.readNow(this.clock.monoMs())) return;
    if (hg.readsPending >= limits.hostReadsPendingMax) {
      throw new TesseraError('TOO_MANY_REQUESTS', `group ${group}: too many reads waiting`);
    }
    const ctx = ++this.readCtx;
    const res = hg.replica.read(ctx, this.clock.monoMs());
    if (!res.ok) throw res.error;
    const done = new Promise<void>((resolve, reject) => hg.addRead(ctx, { resolve, reject }));
    this.schedule(hg);
    return done;
  }

  campaign(group: GroupId, minTerm: Term): void {
    const hg = this.group(group);
    const res = hg.replica.campaign(minTerm);
    if (!res.ok) throw res.error;
    this.schedule(hg);
  }

  transferLeadership(group: GroupId, to: NodeId): void {
    const hg = this.group(group);
    const res = hg.replica.transferLeadership(to);
    if (!res.ok) throw res.error;
    this.schedule(hg);
  }

  async checkpoint(group: GroupId): Promise<AppliedPosition> {
    const hg = this.group(group);
    while (hg.checkpointing !== null) await hg.checkpointing;
    let pos: AppliedPosition | undefined;
    hg.checkpointing = this.checkpointAndCompact(hg).then((p) => {
      pos = p;
    });
    try {
      await hg.checkpointing;
    } finally {
      hg.checkpointing = null;
    }
    return pos!;
  }

  private checkOpen(): void {
    if (this.closed) throw new TesseraError('UNAVAILABLE', 'the group host is closed');
  }

  // -------------------------------------------------------------------------------------------
  // Inputs: ticks and messages

  private tick(): void {
    const mono = this.clock.monoMs();
    const wall = this.clock.wallNs();
    for (const hg of this.live.values()) {
      hg.replica.tick(mono, wall);
      if (hg.replica.hasReady()) this.schedule(hg);
    }
  }

  private onMessage(from: PeerIdentity, payload: Uint8Array): void {
    const d = tryDecodeMessage(payload);
    if (!d.ok) {
      this.logger.warn('bad consensus message', { from: from.nodeId, error: d.error.message });
      return;
    }
    const m = d.message;
    if (m.from !== from.nodeId || m.to !== this.nodeId || m.type === 'snapshot') return;
    const hg = this.live.get(m.group);
    if (hg === undefined || hg.stopped) return;
    hg.replica.step(m);
    this.schedule(hg);
  }

  private send(m: Message): void {
    try {
      this.opts.transport.send(m.to, HOST_MESSAGE_KIND, encodeMessage(m));
    } catch (e) {
      if (!(e instanceof TesseraError)) throw e;
      this.metrics.sendDropped.inc();
    }
  }

  private snapshotSent(group: GroupId, to: NodeId, ok: boolean): void {
    const hg = this.live.get(group);
    if (ok) this.metrics.snapshotsSent.inc();
    if (hg === undefined || hg.stopped) return;
    hg.replica.reportSnapshot(to, ok);
    this.schedule(hg);
  }

  // -------------------------------------------------------------------------------------------
  // The ready scheduler

  private schedule(hg: HostedGroup<R>): void {
    hg.dirty = true;
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.run());
  }

  /** Takes a Ready from every group that has one and is idle; one log append for all of them. */
  private run(): void {
    this.scheduled = false;
    if (this.closed) return;
    const records: LogRecord[] = [];
    const batch: { hg: HostedGroup<R>; rd: Ready; captures: Promise<void>[] }[] = [];
    for (const hg of this.live.values()) {
      // A group whose apply lane is full waits (stays dirty): the lane's end schedules it again.
      if (!hg.dirty || hg.busy || hg.stopped || hg.applyPending >= limits.hostApplyPipelineMax) continue;
      hg.dirty = false;
      if (!hg.replica.hasReady()) continue;
      hg.busy = true;
      const rd = hg.replica.ready();
      // Data received for a snapshot the core declined (it would be in this Ready otherwise).
      if (rd.snapshot === null && hg.staged.size > 0) hg.staged.clear();
      const captures = this.sendMessages(hg, rd.messages);
      if (rd.snapshot !== null) {
        void this.guard(hg, this.installThenFinish(hg, rd, captures));
        continue;
      }
      const recs = readyRecords(hg, rd);
      if (recs.length === 0) {
        void this.guard(hg, this.finish(hg, rd, captures));
        continue;
      }
      records.push(...recs);
      batch.push({ hg, rd, captures });
    }
    if (batch.length === 0) return;
    this.appendDurable(records).then(
      () => {
        for (const b of batch) void this.guard(b.hg, this.finish(b.hg, b.rd, b.captures));
      },
      (e: unknown) => {
        if (!this.closed) throw e; // a bug: crash
      },
    );
  }

  /**
   * Step 1: send now; a snapshot message starts a stream. Its capture runs in the apply lane: after
   * the applies queued before it, and before this Ready's own apply (which awaits it).
   */
  private sendMessages(hg: HostedGroup<R>, msgs: readonly Message[]): Promise<void>[] {
    const captures: Promise<void>[] = [];
    for (const m of msgs) {
      if (m.type === 'snapshot')
        captures.push(this.inApplyLane(hg, () => this.sender.start(hg, atApplied(hg, m as SnapshotMsg))));
      else this.send(m);
    }
    return captures;
  }

  /** Queues `f` in the group's apply lane (runs after everything queued before it). */
  private inApplyLane(hg: HostedGroup<R>, f: () => Promise<void>): Promise<void> {
    hg.applyPending++;
    const p = hg.applyTail.then(f).finally(() => {
      hg.applyPending--;
    });
    hg.applyTail = p.catch(() => undefined); // the error reaches whoever awaits p (the guard)
    return p;
  }

  /** A Ready with a snapshot: install the received data, record it, then persist the rest. */
  private async installThenFinish(hg: HostedGroup<R>, rd: Ready, captures: Promise<void>[]): Promise<void> {
    const meta = rd.snapshot!;
    const staged = hg.staged.get(meta.index);
    assert(staged !== undefined, `group ${hg.id}: no received data for snapshot ${meta.index}`);
    hg.staged.clear();
    await hg.applyTail; // no apply of an earlier Ready may run under (or after) the install
    hg.descriptor = { ...hg.descriptor, installing: meta };
    await this.descriptors.write(hg.descriptor);
    await hg.sm.install(meta, iterate(staged.chunks));
    this.metrics.snapshotsInstalled.inc();
    hg.descriptor = { ...hg.descriptor, snapshot: meta, installing: null };
    await this.descriptors.write(hg.descriptor);
    await this.appendDurable(readyRecords(hg, rd));
    await this.finish(hg, rd, captures);
  }

  /**
   * Steps 2 and 3 (after the append: persisted, messages after persist), then the group takes its
   * next Ready at once while steps 4 to 6 of this one (apply, answers) run in the apply lane, in
   * Ready order: the next append and its replication overlap this apply (a pipeline of Readys).
   */
  private async finish(hg: HostedGroup<R>, rd: Ready, captures: Promise<void>[]): Promise<void> {
    const r = hg.replica;
    r.persisted(rd.number);
    for (const m of rd.messagesAfterPersist) this.send(m);
    const applied = this.inApplyLane(hg, () => this.applyReady(hg, rd, captures));
    hg.busy = false;
    if (!hg.stopped && (r.hasReady() || hg.dirty)) this.schedule(hg);
    await applied;
  }

  /** Steps 4 to 6: apply the committed entries, answer proposals and reads, soft state. */
  private async applyReady(hg: HostedGroup<R>, rd: Ready, captures: Promise<void>[]): Promise<void> {
    const r = hg.replica;
    if (hg.stopped) return; // removed or closing (or failed): nothing more is applied here
    if (captures.length > 0) await Promise.all(captures);
    if (rd.committed.length > 0) {
      const results = await hg.sm.apply(rd.committed);
      hg.applied(rd.committed, results);
      const last = rd.committed[rd.committed.length - 1]!;
      r.applied(last.index);
      this.metrics.commits.inc(rd.committed.length);
      hg.appliedSinceCheckpoint += rd.committed.length;
      this.maybeCheckpoint(hg);
      if (rd.committed.some((e) => e.kind === 'config')) this.logConfig(hg, rd);
    }
    for (const s of rd.readStates) hg.readDone(s.ctx);
    for (const f of rd.failedReads) hg.readDone(f.ctx, f.error);
    hg.dropped(rd.dropped);
    if (rd.softState !== null) this.softStateChanged(hg, rd);
    if (hg.stopped) return;
    if (r.hasReady() || hg.dirty) this.schedule(hg);
  }

  private softStateChanged(hg: HostedGroup<R>, rd: Ready): void {
    const ss = rd.softState!;
    hg.roleChanged(ss.role === 'leader', ss.term);
    if (ss.role === 'leader') this.metrics.elections.inc();
    this.logger.info('soft state', {
      group: hg.id,
      role: ss.role,
      leader: ss.leader,
      term: ss.term,
      removed: ss.removed,
    });
    for (const l of this.listeners) l(hg.id, ss);
    if (ss.removed) {
      hg.stopped = true;
      setImmediate(() => void this.removeGroup(hg.id));
    }
  }

  private logConfig(hg: HostedGroup<R>, rd: Ready): void {
    for (const e of rd.committed) {
      if (e.kind !== 'config') continue;
      const c = decodeMembershipChange(e.data);
      this.logger.info('membership change applied', {
        group: hg.id,
        index: e.index,
        change: c.type,
        node: c.node,
      });
    }
  }

  /** Crash on a bug; an operating error in a group's loop stops that group. */
  private async guard(hg: HostedGroup<R>, p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (e) {
      hg.busy = false;
      if (this.closed) return; // the host closed under the group's loop
      if (!(e instanceof TesseraError)) throw e;
      this.logger.error('group stopped after an error', { group: hg.id, code: e.code, error: e.message });
      hg.stopped = true;
      hg.failAll('UNAVAILABLE', `the replica failed: ${e.code}`);
    }
  }

  /** One log append (chunked by the record-count limit); retried with back-off until it succeeds. */
  private async appendDurable(records: LogRecord[]): Promise<void> {
    if (records.length === 0) return;
    let delay: number = limits.hostAppendRetryMinMs;
    for (;;) {
      const started = this.clock.monoMs();
      try {
        const appends: Promise<void>[] = [];
        for (let k = 0; k < records.length; k += limits.logBatchRecordsMax) {
          appends.push(this.log.append(records.slice(k, k + limits.logBatchRecordsMax)));
        }
        await Promise.all(appends);
        this.metrics.fsyncSeconds.observe((this.clock.monoMs() - started) / 1000);
        return;
      } catch (e) {
        if (!(e instanceof TesseraError) || this.closed) throw e;
        this.metrics.appendFailures.inc();
        this.logger.warn('log append failed; retrying', { code: e.code, error: e.message, delayMs: delay });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, limits.hostAppendRetryMaxMs);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Checkpoint and compaction

  private maybeCheckpoint(hg: HostedGroup<R>): void {
    const every = this.opts.checkpointEntries ?? checkpointEvery(this.ctx.seed, hg.id);
    if (hg.appliedSinceCheckpoint < every || hg.checkpointing !== null) return;
    hg.checkpointing = this.checkpointAndCompact(hg)
      .then(
        () => undefined,
        (e: unknown) => {
          if (!(e instanceof TesseraError)) throw e;
          this.logger.warn('checkpoint failed', { group: hg.id, code: e.code, error: e.message });
        },
      )
      .finally(() => {
        hg.checkpointing = null;
      });
  }

  private async checkpointAndCompact(hg: HostedGroup<R>): Promise<AppliedPosition> {
    hg.appliedSinceCheckpoint = 0;
    const pos = await hg.sm.checkpoint();
    const margin = this.opts.compactionMarginEntries ?? limits.hostCompactionMarginEntries;
    // Clamp to the core's applied index (the SM may be a step ahead of replica.applied()).
    const i = Math.min(pos.index - margin, hg.replica.status().applied);
    if (hg.stopped || i <= hg.replica.snapshotMeta().index) return pos;
    const res = hg.replica.compact(i as LogIndex);
    if (!res.ok) return pos;
    const meta = hg.replica.snapshotMeta();
    hg.descriptor = { ...hg.descriptor, snapshot: meta };
    await this.descriptors.write(hg.descriptor);
    await this.log.releaseUpTo(hg.id, meta.index);
    this.metrics.compactions.inc();
    return pos;
  }

  // -------------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const all = [...this.live.values()];
    for (const hg of all) {
      hg.stopped = true;
      hg.failAll('UNAVAILABLE', 'the group host is closing');
    }
    this.sender.close();
    for (const hg of all) {
      const deadline = Date.now() + 5_000;
      while ((hg.busy || hg.applyPending > 0 || hg.checkpointing !== null) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    this.live.clear();
    for (const hg of all) await hg.sm.close();
    await this.log.close();
  }
}

/**
 * The default checkpoint interval of a group on this host: limits.hostCheckpointEntries minus a
 * fixed share of up to a quarter, drawn from the host's seed and the group. The replicas of a group
 * apply the same entries; with one interval they would all checkpoint (flush, fsync the engines,
 * release the log) at the same moment, a burst on every replica together.
 */
export function checkpointEvery(seed: number, group: number): number {
  const every = limits.hostCheckpointEntries;
  const h = Math.imul(seed ^ Math.imul(group, 0x9e37_79b1), 0x85eb_ca6b) >>> 0;
  return every - (h % Math.floor(every / 4));
}
