/**
 * Inputs and outputs of the control plane's pure decision function (decide.ts). The MM leader's
 * control loop (wired elsewhere) gathers heartbeats and deep-check results, calls decide() once per
 * tick with the monotonic time, carries the returned memory to the next tick, and carries out the
 * actions (catalog commands through the MM group, orders to storage nodes).
 */
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { CatalogCommand, CatalogState } from '../metadata/types.js';

export interface ControlConfig {
  heartbeatIntervalMs: number;
  /** A node that missed this many heartbeats in a row is down (its silence > interval * this). */
  heartbeatsMissedMax: number;
  /** A node silent (or failing its checks) for longer than this has its replicas replaced. */
  replaceAfterMs: number;
  /** A new MM leader judges nothing for this long after it took office. */
  gracePeriodMs: number;
  /** A deep check that has not answered within this is a failed check. */
  deepCheckTimeoutMs: number;
  /** A group's leader is not checked again sooner than this after a passed check. */
  deepCheckIntervalMinMs: number;
  /** How long to wait for an ordered campaign to produce a leader before ordering another. */
  campaignTimeoutMs: number;
  /** A learner is caught up when its applied index is at most this far behind the leader's commit. */
  learnerCatchUpEntriesMax: number;
}

export const defaultControlConfig: ControlConfig = {
  heartbeatIntervalMs: limits.heartbeatIntervalMs,
  heartbeatsMissedMax: limits.heartbeatsMissedMax,
  replaceAfterMs: limits.replaceAfterMs,
  gracePeriodMs: limits.heartbeatIntervalMs * limits.controlGraceHeartbeats,
  deepCheckTimeoutMs: limits.deepCheckTimeoutMs,
  deepCheckIntervalMinMs: limits.deepCheckIntervalMinMs,
  campaignTimeoutMs: limits.electionTimeoutMs,
  learnerCatchUpEntriesMax: limits.learnerCatchUpEntriesMax,
};

export type ReplicaRole = 'leader' | 'follower' | 'candidate' | 'learner';

/** What a storage node says about one replica it hosts. */
export interface ReplicaReport {
  readonly group: GroupId;
  readonly term: Term;
  readonly role: ReplicaRole;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
}

export interface NodeHealth {
  /** The node's disk write probe passed (false: broken or read-only disk; not the same as full). */
  readonly diskOk: boolean;
  /** The node's own watchdog saw an fsync stall or similar doubt: worth a deep check. */
  readonly stalled: boolean;
}

/** The latest heartbeat of a node, as the MM leader received it. */
export interface NodeHeartbeat {
  /** Monotonic time (of the MM leader's clock) when the heartbeat arrived. */
  readonly lastSeenMs: number;
  readonly health: NodeHealth;
  readonly replicas: readonly ReplicaReport[];
}

/** A deep health check of a group (a no-op entry committed through it, a disk write probe). */
export interface DeepCheck {
  readonly leader: NodeId;
  readonly term: Term;
  readonly requestedAtMs: number;
  /** null while it runs. */
  readonly ok: boolean | null;
  readonly doneAtMs: number | null;
}

export interface CampaignOrder {
  readonly node: NodeId;
  readonly term: Term;
  readonly atMs: number;
}

/** What the control loop carries from one tick to the next (returned updated by decide). */
export interface ControlMemory {
  readonly campaigns: ReadonlyMap<GroupId, CampaignOrder>;
  readonly deepChecks: ReadonlyMap<GroupId, DeepCheck>;
}

export const emptyControlMemory: ControlMemory = { campaigns: new Map(), deepChecks: new Map() };

export interface ControlInput {
  readonly catalog: Readonly<CatalogState>;
  readonly heartbeats: ReadonlyMap<NodeId, NodeHeartbeat>;
  /** Monotonic time now, same clock as lastSeenMs. */
  readonly nowMs: number;
  /** Monotonic time when this MM node became leader. */
  readonly leaderSinceMs: number;
  readonly config: ControlConfig;
  readonly memory: ControlMemory;
}

export type CampaignReason =
  | 'new-group'
  | 'no-leader'
  | 'leader-missed-heartbeats'
  | 'leader-unhealthy'
  | 'leader-failed-check';

export type DoubtReason = 'leader-late' | 'leader-stalled' | 'higher-term-seen';

/** abandon: the new replica itself failed before it was promoted; it is removed, and a new plan follows. */
export type ReplaceStep = 'addLearner' | 'waitCatchUp' | 'promote' | 'removeOld' | 'abandon';

export type ControlAction =
  /** Catalog follows liveness: propose `command` (markNode up/down). */
  | { kind: 'markNode'; node: NodeId; state: 'up' | 'down'; command: CatalogCommand }
  /** Catalog follows the group: a live leader the catalog does not know yet. */
  | { kind: 'recordLeader'; group: GroupId; leader: NodeId; term: Term; command: CatalogCommand }
  /** Tell `node` to campaign in `group` at a term of at least `minTerm`. */
  | { kind: 'campaign'; group: GroupId; node: NodeId; minTerm: Term; reason: CampaignReason }
  /** Run a deep health check of `group` through its leader (then report with recordDeepCheck). */
  | { kind: 'deepCheck'; group: GroupId; leader: NodeId; term: Term; reason: DoubtReason }
  /** Alert: fewer than a majority of the group's voters are live; nothing can elect a leader. */
  | { kind: 'noQuorum'; group: GroupId; liveVoters: number; voters: number }
  /**
   * One step of replacing `oldNode` by `newNode` in `group`. For addLearner/promote/removeOld the
   * driver asks the group's leader for the membership change, then proposes `command` so the catalog
   * follows. waitCatchUp carries no command. Re-issued every tick until the catalog moves on.
   */
  | {
      kind: 'replace';
      group: GroupId;
      oldNode: NodeId;
      newNode: NodeId;
      step: ReplaceStep;
      command: CatalogCommand | null;
    }
  /** Alert: `oldNode` should be replaced in `group` but the pool has no live, healthy spare. */
  | { kind: 'noSpare'; group: GroupId; oldNode: NodeId }
  /** A live storage node that hosts no replica goes (back) to the free pool. */
  | { kind: 'returnToPool'; node: NodeId; command: CatalogCommand };

export interface ControlDecision {
  readonly actions: ControlAction[];
  readonly memory: ControlMemory;
  /** True while the new MM leader's grace period runs (only facts are recorded, no judgement). */
  readonly inGrace: boolean;
}
