/**
 * The MM leader's control loop, one pure step: decide(input) -> actions + memory for the next tick.
 * Deterministic: the same input gives the same actions in the same order: node actions by node id,
 * then per group (by id) its leader actions then its replacement step, then returnToPool by node id.
 *
 * A new MM leader makes no judgement during its grace period (nowMs - leaderSinceMs < gracePeriodMs):
 * it only records facts (a node heard from is up; a live leader is recorded in the catalog).
 */
import { assert } from '../lib/assert.js';
import { analyzeGroup, leaderActions, type MutableMemory } from './leaders.js';
import { livenessActions } from './liveness.js';
import { type Claims, replacementActions } from './replace.js';
import type { ControlAction, ControlDecision, ControlInput } from './types.js';

function checkConfig(input: ControlInput): void {
  const c = input.config;
  assert(c.heartbeatIntervalMs > 0 && c.heartbeatsMissedMax >= 1, 'heartbeat config');
  assert(
    c.replaceAfterMs > c.heartbeatIntervalMs * c.heartbeatsMissedMax,
    'replaceAfterMs above the down window',
  );
  assert(c.gracePeriodMs >= 0 && c.deepCheckTimeoutMs > 0 && c.campaignTimeoutMs > 0, 'timeouts');
  assert(Number.isFinite(input.nowMs) && input.nowMs >= input.leaderSinceMs, 'monotonic time');
}

export function decide(input: ControlInput): ControlDecision {
  checkConfig(input);
  const inGrace = input.nowMs - input.leaderSinceMs < input.config.gracePeriodMs;
  const memory: MutableMemory = {
    campaigns: new Map(input.memory.campaigns),
    deepChecks: new Map(input.memory.deepChecks),
  };
  // Forget orders and checks of groups that no longer exist.
  for (const id of [...memory.campaigns.keys()])
    if (!input.catalog.groups.has(id)) memory.campaigns.delete(id);
  for (const id of [...memory.deepChecks.keys()])
    if (!input.catalog.groups.has(id)) memory.deepChecks.delete(id);

  const nodeActions = livenessActions(input, inGrace);
  const actions: ControlAction[] = nodeActions.filter((a) => a.kind !== 'returnToPool');
  const claims: Claims = new Map();
  const groups = [...input.catalog.groups.values()].sort((a, b) => a.id - b.id);
  for (const g of groups) {
    const analysis = analyzeGroup(input, g, memory);
    actions.push(...leaderActions(input, analysis, memory, inGrace));
    if (!inGrace) actions.push(...replacementActions(input, analysis, claims));
  }
  actions.push(...nodeActions.filter((a) => a.kind === 'returnToPool'));
  return { actions, memory, inGrace };
}
