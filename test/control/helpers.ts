import type { GroupId, NodeId } from '../../src/lib/ids.js';
import { logIndex, term } from '../../src/lib/ids.js';
import {
  type ControlAction,
  type ControlDecision,
  type ControlInput,
  type ControlMemory,
  decide,
  defaultControlConfig,
  emptyControlMemory,
  type NodeHeartbeat,
  type ReplicaReport,
} from '../../src/control/index.js';
import { Catalog } from '../../src/metadata/catalog.js';
import type { CatalogCommand } from '../../src/metadata/types.js';
import { cluster } from '../metadata/helpers.js';

export { cluster };

export interface RepOpts {
  term?: number;
  role?: ReplicaReport['role'];
  last?: number;
  lastTerm?: number;
  commit?: number;
  applied?: number;
}

export function rep(group: GroupId, o: RepOpts = {}): ReplicaReport {
  const t = o.term ?? 1;
  return {
    group,
    term: term(t),
    role: o.role ?? 'follower',
    lastLogIndex: logIndex(o.last ?? 10),
    lastLogTerm: term(o.lastTerm ?? t),
    commitIndex: logIndex(o.commit ?? o.last ?? 10),
    appliedIndex: logIndex(o.applied ?? o.commit ?? o.last ?? 10),
  };
}

export function beat(
  lastSeenMs: number,
  replicas: ReplicaReport[] = [],
  diskOk = true,
  stalled = false,
): NodeHeartbeat {
  return { lastSeenMs, health: { diskOk, stalled }, replicas };
}

export const NOW = 100_000;

export function input(
  c: Catalog,
  heartbeats: readonly (readonly [NodeId, NodeHeartbeat])[],
  opts: { nowMs?: number; leaderSinceMs?: number; memory?: ControlMemory } = {},
): ControlInput {
  return {
    catalog: c.state,
    heartbeats: new Map(heartbeats),
    nowMs: opts.nowMs ?? NOW,
    leaderSinceMs: opts.leaderSinceMs ?? 0,
    config: defaultControlConfig,
    memory: opts.memory ?? emptyControlMemory,
  };
}

/** The actions without their catalog commands (easier to compare in tables). */
export function brief(d: ControlDecision): Record<string, unknown>[] {
  return d.actions.map((a) => {
    const { command: _c, ...rest } = a as ControlAction & { command?: CatalogCommand | null };
    return rest;
  });
}

export function run(i: ControlInput): ControlDecision {
  return decide(i);
}

/** Applies the catalog command of every action (as the control loop would once executed). */
export function follow(c: Catalog, d: ControlDecision): void {
  for (const a of d.actions) {
    const cmd = 'command' in a ? a.command : null;
    if (cmd === null) continue;
    const r = c.apply(cmd);
    if (!r.ok) throw new Error(`${cmd.type}: ${r.code} ${r.message}`);
  }
}

export { Catalog };
