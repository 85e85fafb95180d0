/**
 * The control loop on the MM leader: the executor of src/control's decisions. Every
 * limits.mmControlTickMs it calls decide() with the latest heartbeats and carries out the actions:
 * catalog commands through the MM group, orders to storage nodes (ctl.*). Besides decide() it forms
 * groups from the free pool up to the target (--groups, --replicas), logs drops in the owning
 * groups and then finishes them, and, once per leadership, re-sends every shard assignment (a
 * table created just before an MM failover may not have reached its group).
 *
 * Each action runs at most once at a time (in-flight set keyed by what it does); decide() re-issues
 * steps every tick until the catalog moves on, so a failed step is simply retried.
 */
import { decide, recordDeepCheck } from '../control/index.js';
import type {
  ControlAction,
  ControlConfig,
  ControlMemory,
  NodeHeartbeat,
  ReplicaReport,
} from '../control/types.js';
import { emptyControlMemory } from '../control/types.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId, ShardId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { CatalogEntry } from '../storage/rpc.js';
import type { Catalog } from './catalog.js';
import type { HeartbeatRequest } from './rpc.js';
import type { NodeStatsWire } from './stats-wire.js';
import type { StorageCtl } from './storage-ctl.js';
import type { CatalogCommand, GroupRecord } from './types.js';

export interface ControlLoopDeps {
  catalog: () => Catalog;
  /** Proposes a catalog command through the MM group; throws TesseraError on refusal. */
  change: (cmd: CatalogCommand) => Promise<unknown>;
  ctl: StorageCtl;
  config: ControlConfig;
  groupsTarget: number;
  replicas: number;
  logger: Logger;
  /** Monotonic ms. */
  now: () => number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ControlLoop {
  /** Latest heartbeat per node (monotonic arrival time); kept only while leader. */
  readonly heartbeats = new Map<NodeId, NodeHeartbeat>();
  readonly pids = new Map<NodeId, number>();
  /** Latest heartbeat stats per node (soft state for mm.cluster; kept only while leader). */
  readonly stats = new Map<NodeId, NodeStatsWire>();
  private memory: ControlMemory = emptyControlMemory;
  private leaderSinceMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly inflight = new Set<string>();
  private reconciled = false;
  /** Shards whose assignShard did not reach their group yet (retried every tick). */
  private readonly unassigned = new Set<ShardId>();
  private running = false;

  constructor(private readonly d: ControlLoopDeps) {}

  get active(): boolean {
    return this.running;
  }

  start(leaderSinceMs: number): void {
    this.stop();
    this.running = true;
    this.leaderSinceMs = leaderSinceMs;
    this.memory = emptyControlMemory;
    this.heartbeats.clear();
    this.stats.clear();
    this.unassigned.clear();
    this.reconciled = false;
    this.timer = setInterval(() => this.tick(), limits.mmControlTickMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** A heartbeat arrived (the node is known to the catalog). */
  recordHeartbeat(hb: HeartbeatRequest, learnerOf: (g: GroupId) => boolean): void {
    const replicas: ReplicaReport[] = hb.replicas.map((r) => ({
      group: r.group,
      term: r.term,
      role:
        r.role === 'leader'
          ? 'leader'
          : r.role === 'follower'
            ? learnerOf(r.group)
              ? 'learner'
              : 'follower'
            : 'candidate',
      lastLogIndex: r.lastIndex,
      lastLogTerm: r.lastTerm,
      commitIndex: r.commit,
      appliedIndex: r.applied,
    }));
    this.heartbeats.set(hb.node, {
      lastSeenMs: this.d.now(),
      health: { diskOk: hb.diskOk, stalled: hb.stalled === true },
      replicas,
    });
    this.pids.set(hb.node, hb.pid);
    this.stats.set(hb.node, { node: hb.node, replicas: hb.replicas, metrics: hb.metrics ?? null });
  }

  heartbeatAgeMs(node: NodeId): number | null {
    const hb = this.heartbeats.get(node);
    return hb === undefined ? null : Math.max(0, Math.round(this.d.now() - hb.lastSeenMs));
  }

  /** One step (exposed for tests). */
  tick(): void {
    if (!this.running) return;
    const now = this.d.now();
    const catalog = this.d.catalog();
    const decision = decide({
      catalog: catalog.state,
      heartbeats: this.heartbeats,
      nowMs: Math.max(now, this.leaderSinceMs),
      leaderSinceMs: this.leaderSinceMs,
      config: this.d.config,
      memory: this.memory,
    });
    this.memory = decision.memory;
    for (const a of decision.actions) this.execute(a);
    if (decision.inGrace) return;
    this.formGroups(catalog);
    this.finishDrops(catalog);
    for (const sh of this.unassigned) {
      this.once(`assign:${sh}`, async () => {
        await this.assignShard(sh, limits.mmCtlCallTimeoutMs);
        this.unassigned.delete(sh);
      });
    }
    if (!this.reconciled) {
      this.reconciled = true;
      this.once('reconcile', () => this.reconcileAssignments());
    }
  }

  /** Runs `fn` unless the same key is already running; failures are logged and retried later. */
  private once(key: string, fn: () => Promise<void>): void {
    if (this.inflight.has(key) || this.inflight.size >= limits.mmCtlInflightMax) return;
    this.inflight.add(key);
    fn()
      .catch((e: unknown) => {
        if (!isTesseraError(e)) throw e;
        this.d.logger.info('control step failed (retried later)', {
          step: key,
          code: e.code,
          error: e.message,
        });
      })
      .finally(() => this.inflight.delete(key));
  }

  private execute(a: ControlAction): void {
    const { ctl, change } = this.d;
    switch (a.kind) {
      case 'markNode':
      case 'recordLeader':
      case 'returnToPool':
        this.once(`${a.kind}:${JSON.stringify(a.command)}`, async () => void (await change(a.command)));
        return;
      case 'campaign':
        this.d.logger.info('ordering a campaign', {
          group: a.group,
          node: a.node,
          minTerm: a.minTerm,
          reason: a.reason,
        });
        this.once(`campaign:${a.group}`, () => this.campaign(a));
        return;
      case 'deepCheck':
        this.once(`check:${a.group}`, async () => {
          let ok = false;
          try {
            ok = (await ctl.check(a.leader, a.group)).diskOk;
          } catch (e) {
            if (!isTesseraError(e)) throw e;
          }
          this.memory = recordDeepCheck(this.memory, {
            group: a.group,
            leader: a.leader,
            term: a.term,
            ok,
            atMs: this.d.now(),
          });
        });
        return;
      case 'replace':
        this.once(`replace:${a.group}`, () => this.replaceStep(a));
        return;
      case 'noQuorum':
      case 'noSpare':
        this.once(`alert:${a.kind}:${a.group}`, async () => {
          this.d.logger.warn(`control: ${a.kind}`, { ...a });
          await sleep(5_000);
        });
        return;
    }
  }

  private async campaign(a: Extract<ControlAction, { kind: 'campaign' }>): Promise<void> {
    const g = this.d.catalog().group(a.group);
    const old = g?.leader ?? null;
    // A live old leader (failed check, bad disk) refuses to be ignored by its voters: hand over.
    if (
      old !== null &&
      old !== a.node &&
      (a.reason === 'leader-failed-check' || a.reason === 'leader-unhealthy')
    ) {
      try {
        await this.d.ctl.transfer(old, a.group, a.node);
        return;
      } catch (e) {
        if (!isTesseraError(e)) throw e;
      }
    }
    // A voter refuses to campaign while it still hears from a leader within the election timeout
    // (its lease may rest on it): retry at a short interval until the order times out, so the
    // election starts as soon as the dead leader's lease is over.
    const end = this.d.now() + this.d.config.campaignTimeoutMs;
    for (;;) {
      try {
        await this.d.ctl.campaign(a.node, a.group, a.minTerm);
        return;
      } catch (e) {
        if (!isTesseraError(e, 'UNAVAILABLE') || !this.running || this.d.now() >= end) throw e;
        const now = this.d.catalog().group(a.group);
        if (now === undefined || (now.leader !== null && now.term >= a.minTerm)) return;
      }
      await sleep(limits.mmCampaignRetryMs);
    }
  }

  private async replaceStep(a: Extract<ControlAction, { kind: 'replace' }>): Promise<void> {
    const g = this.d.catalog().group(a.group);
    const leader = g?.leader ?? null;
    if (g === undefined || leader === null || a.command === null) return;
    const change =
      a.step === 'addLearner'
        ? ({ type: 'add-learner', node: a.newNode } as const)
        : a.step === 'promote'
          ? ({ type: 'promote', node: a.newNode } as const)
          : a.step === 'removeOld'
            ? ({ type: 'remove', node: a.oldNode } as const)
            : ({ type: 'remove', node: a.newNode } as const);
    this.d.logger.info('replacement step', { group: a.group, step: a.step, old: a.oldNode, new: a.newNode });
    try {
      await this.d.ctl.membership(leader, a.group, change);
    } catch (e) {
      // Already done (a retry after the group committed it): the catalog still has to follow.
      if (!isTesseraError(e, 'MEMBERSHIP_CONFLICT')) throw e;
    }
    await this.d.change(a.command);
    if (a.step === 'addLearner') await this.hostGroup(a.group, [a.newNode]);
  }

  /** Sends ctl.hostGroup with the catalog's view of the group to `nodes` (best effort). */
  private async hostGroup(group: GroupId, nodes: readonly NodeId[]): Promise<void> {
    const c = this.d.catalog();
    const g = c.group(group);
    if (g === undefined) return;
    const order = {
      group,
      membership: {
        voters: g.members.filter((m) => m.role === 'voter').map((m) => m.node),
        learners: g.members.filter((m) => m.role === 'learner').map((m) => m.node),
      },
      addresses: g.members.map((m) => ({ node: m.node, address: c.node(m.node)?.address ?? '' })),
      mode: 'directed' as const,
    };
    await Promise.all(
      nodes.map((n) =>
        this.d.ctl.hostGroup(n, order).catch((e: unknown) => {
          if (!isTesseraError(e)) throw e;
        }),
      ),
    );
  }

  /** Forms groups from live spares until the target is reached (one group at a time). */
  private formGroups(c: Catalog): void {
    if (c.state.groups.size >= this.d.groupsTarget) return;
    const live = c.state.spares.filter((id) => {
      const hb = this.heartbeats.get(id);
      return hb?.health.diskOk && this.d.now() - hb.lastSeenMs <= this.liveWindowMs();
    });
    if (live.length < this.d.replicas) return;
    const members = live.slice(0, this.d.replicas);
    this.once('formGroup', async () => {
      const r = (await this.d.change({ type: 'createGroup', members, atMs: Date.now() })) as {
        group: GroupId;
      };
      this.d.logger.info('group formed', { group: r.group, members });
      await this.hostGroup(r.group, members);
    });
  }

  private liveWindowMs(): number {
    return this.d.config.heartbeatIntervalMs * this.d.config.heartbeatsMissedMax;
  }

  /** Tables in state 'dropping': log the drop in every owning group, then finish it. */
  private finishDrops(c: Catalog): void {
    for (const t of c.state.tables.values()) {
      if (t.state !== 'dropping') continue;
      const groups = [...new Set(c.shardsOf(t.id).map((s) => s.group))];
      this.once(`drop:${t.id}`, async () => {
        for (const g of groups) await this.proposeToGroup(g, { type: 'dropTable', table: t.id });
        await this.d.change({ type: 'finishDropTable', table: t.id });
      });
    }
  }

  /** Re-sends every shard assignment once per leadership (idempotent on the storage side). */
  private async reconcileAssignments(): Promise<void> {
    const c = this.d.catalog();
    for (const t of c.listTables()) {
      for (const sh of c.shardsOf(t.id)) {
        if (!this.running) return;
        await this.assignShard(sh.id, 5_000).catch((e: unknown) => {
          if (!isTesseraError(e)) throw e;
        });
      }
    }
  }

  /**
   * Commits the shard's assignment in its group's log (ctl.propose assignShard). On failure the
   * shard is kept and retried by the loop while this node leads.
   */
  async assignShard(shard: ShardId, deadlineMs: number = limits.mmCallDeadlineMs): Promise<void> {
    try {
      await this.sendAssignment(shard, deadlineMs);
      this.unassigned.delete(shard);
    } catch (e) {
      if (this.running && this.unassigned.size < limits.mmCtlInflightMax) this.unassigned.add(shard);
      throw e;
    }
  }

  private async sendAssignment(shard: ShardId, deadlineMs: number): Promise<void> {
    const c = this.d.catalog();
    const sh = c.state.shards.get(shard);
    if (sh === undefined) return;
    const t = c.state.tables.get(sh.table);
    if (t === undefined) return;
    const entry: CatalogEntry = {
      type: 'assignShard',
      shard: sh.id,
      table: sh.table,
      engine: t.engine,
      start: sh.start,
      end: sh.end,
      epoch: sh.epoch,
      catalogVersion: c.version,
    };
    await this.proposeToGroup(sh.group, entry, deadlineMs);
  }

  /** Proposes a catalog entry through the group's leader, following hints, until the deadline. */
  async proposeToGroup(
    group: GroupId,
    entry: CatalogEntry,
    deadlineMs: number = limits.mmCallDeadlineMs,
  ): Promise<void> {
    const end = Date.now() + deadlineMs;
    let hint: NodeId | null = null;
    for (let attempt = 0; ; attempt++) {
      const g: GroupRecord | undefined = this.d.catalog().group(group);
      if (g === undefined) return;
      const target = hint ?? g.leader ?? g.members[attempt % g.members.length]?.node ?? null;
      hint = null;
      try {
        if (target === null) throw new TesseraError('UNAVAILABLE', `group ${group} has no member`);
        await this.d.ctl.propose(target, group, entry);
        return;
      } catch (e) {
        if (isTesseraError(e, 'NOT_LEADER')) {
          const h = Number(e.detail?.leader ?? 0);
          if (h !== 0 && h !== target) hint = h as NodeId;
        } else if (!isTesseraError(e) || !retryable(e.code)) {
          throw e;
        }
        if (Date.now() >= end) throw e;
        await sleep(Math.min(limits.mmRetryBackoffMaxMs, 20 * 2 ** Math.min(attempt, 5)));
      }
    }
  }
}

function retryable(code: string): boolean {
  return [
    'NOT_LEADER',
    'UNAVAILABLE',
    'TIMEOUT',
    'GROUP_NOT_FOUND',
    'OUTCOME_UNKNOWN',
    'SEND_QUEUE_FULL',
    'TOO_MANY_REQUESTS',
    'NODE_NOT_FOUND',
  ].includes(code);
}
