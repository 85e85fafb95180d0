/**
 * Replica replacement plans. A replica on a node that is silent past replaceAfterMs, or whose disk
 * fails, is replaced by a spare, one replica per group at a time, in steps the catalog follows:
 *   addLearner(new, replaces old) -> waitCatchUp -> promote(new) -> removeMember(old).
 * The plan's progress is read back from the catalog (the learner's `replaces` mark), so the loop
 * needs no memory of it. Steps run only while the group has a valid leader (it makes the change).
 */
import type { NodeId } from '../lib/ids.js';
import type { GroupRecord, Member, NodeRecord } from '../metadata/types.js';
import type { GroupAnalysis } from './leaders.js';
import { isHealthy, liveHeartbeat, needsReplacement } from './liveness.js';
import type { ControlAction, ControlInput } from './types.js';

/** Which replacement node each old node gets in this tick (one spare serves all of its groups). */
export type Claims = Map<NodeId, NodeId>;

function caughtUp(input: ControlInput, a: GroupAnalysis, learner: NodeId): boolean {
  const leader = a.leader;
  const r = liveHeartbeat(input, learner)?.replicas.find((x) => x.group === a.group.id);
  if (leader === null || r === undefined) return false;
  return r.appliedIndex + input.config.learnerCatchUpEntriesMax >= leader.report.commitIndex;
}

function continuePlan(input: ControlInput, a: GroupAnalysis, m: Member, old: NodeId): ControlAction {
  const g = a.group;
  const base = { kind: 'replace' as const, group: g.id, oldNode: old, newNode: m.node };
  if (m.role === 'voter') {
    return { ...base, step: 'removeOld', command: { type: 'removeMember', group: g.id, node: old } };
  }
  const newNode = input.catalog.nodes.get(m.node);
  if (newNode === undefined || needsReplacement(input, newNode)) {
    return { ...base, step: 'abandon', command: { type: 'removeMember', group: g.id, node: m.node } };
  }
  if (caughtUp(input, a, m.node)) {
    return { ...base, step: 'promote', command: { type: 'promote', group: g.id, node: m.node } };
  }
  return { ...base, step: 'waitCatchUp', command: null };
}

/** A node already replacing `old` in another group, if it can take this group too. */
function reusedTarget(input: ControlInput, g: GroupRecord, old: NodeId): NodeId | undefined {
  for (const other of [...input.catalog.groups.values()].sort((x, y) => x.id - y.id)) {
    for (const m of other.members) {
      if (m.replaces !== old || g.members.some((x) => x.node === m.node)) continue;
      if (isHealthy(input, m.node)) return m.node;
    }
  }
  return undefined;
}

/** Live, healthy spares, most room first, lowest id on a tie. */
function sparesByRoom(input: ControlInput): NodeRecord[] {
  return input.catalog.spares
    .map((id) => input.catalog.nodes.get(id))
    .filter((n): n is NodeRecord => n !== undefined && isHealthy(input, n.id))
    .sort((x, y) => y.capacity.replicasMax - x.capacity.replicasMax || x.id - y.id);
}

function chooseTarget(input: ControlInput, g: GroupRecord, old: NodeId, claims: Claims): NodeId | undefined {
  const claimed = claims.get(old);
  if (claimed !== undefined && !g.members.some((x) => x.node === claimed)) return claimed;
  const reused = reusedTarget(input, g, old);
  if (reused !== undefined) return reused;
  const taken = new Set(claims.values());
  const spare = sparesByRoom(input).find((n) => !taken.has(n.id) && !g.members.some((x) => x.node === n.id));
  if (spare !== undefined) claims.set(old, spare.id);
  return spare?.id;
}

/** The next replacement step for this group, if any (at most one replacement per group at a time). */
export function replacementActions(input: ControlInput, a: GroupAnalysis, claims: Claims): ControlAction[] {
  const g = a.group;
  if (a.leader === null) return [];
  const running = g.members.find((m) => m.replaces !== null);
  if (running !== undefined && running.replaces !== null)
    return [continuePlan(input, a, running, running.replaces)];
  const bad = g.members.find((m) => {
    const n = input.catalog.nodes.get(m.node);
    return m.role === 'voter' && m.node !== a.leader?.node && n !== undefined && needsReplacement(input, n);
  });
  if (bad === undefined) return [];
  const target = chooseTarget(input, g, bad.node, claims);
  if (target === undefined) return [{ kind: 'noSpare', group: g.id, oldNode: bad.node }];
  return [
    {
      kind: 'replace',
      group: g.id,
      oldNode: bad.node,
      newNode: target,
      step: 'addLearner',
      command: { type: 'addLearner', group: g.id, node: target, replaces: bad.node },
    },
  ];
}
