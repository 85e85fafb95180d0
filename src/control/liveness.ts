/**
 * Node liveness from heartbeats: who is live, who is down, who has been silent long enough to be
 * replaced, and which idle nodes go back to the free pool. Pure functions of the control input.
 */
import type { NodeId } from '../lib/ids.js';
import type { NodeRecord } from '../metadata/types.js';
import type { ControlAction, ControlInput, NodeHeartbeat } from './types.js';

/** How long the node has been silent. A node never heard from counts from the MM leader's start. */
export function silenceMs(input: ControlInput, node: NodeId): number {
  const hb = input.heartbeats.get(node);
  return input.nowMs - (hb?.lastSeenMs ?? input.leaderSinceMs);
}

/** Live: a heartbeat arrived within the last `heartbeatsMissedMax` intervals. */
export function isLive(input: ControlInput, node: NodeId): boolean {
  const hb = input.heartbeats.get(node);
  const windowMs = input.config.heartbeatIntervalMs * input.config.heartbeatsMissedMax;
  return hb !== undefined && input.nowMs - hb.lastSeenMs <= windowMs;
}

/** The latest heartbeat of a live node (undefined for a node that is not live). */
export function liveHeartbeat(input: ControlInput, node: NodeId): NodeHeartbeat | undefined {
  return isLive(input, node) ? input.heartbeats.get(node) : undefined;
}

/** Live and its disk probe passes: may lead, campaign or receive a replica. */
export function isHealthy(input: ControlInput, node: NodeId): boolean {
  return liveHeartbeat(input, node)?.health.diskOk === true;
}

/** Should have its replicas replaced: silent past replaceAfterMs, or live with a failing disk. */
export function needsReplacement(input: ControlInput, node: NodeRecord): boolean {
  if (node.role !== 'storage' || node.state === 'removed') return false;
  if (silenceMs(input, node.id) > input.config.replaceAfterMs) return true;
  const hb = liveHeartbeat(input, node.id);
  return hb !== undefined && !hb.health.diskOk;
}

function hostsReplicas(input: ControlInput, node: NodeId): boolean {
  for (const g of input.catalog.groups.values()) if (g.members.some((m) => m.node === node)) return true;
  return false;
}

/**
 * markNode actions (catalog follows liveness) and returnToPool actions. During the grace period
 * only facts are recorded: a node heard from is up; no node is judged down.
 */
export function livenessActions(input: ControlInput, inGrace: boolean): ControlAction[] {
  const out: ControlAction[] = [];
  const nodes = [...input.catalog.nodes.values()].sort((a, b) => a.id - b.id);
  for (const n of nodes) {
    if (n.state === 'removed') continue;
    const live = isLive(input, n.id);
    if (n.state === 'down' && live) {
      out.push({
        kind: 'markNode',
        node: n.id,
        state: 'up',
        command: { type: 'markNode', node: n.id, state: 'up' },
      });
    } else if ((n.state === 'up' || n.state === 'spare') && !live && !inGrace) {
      out.push({
        kind: 'markNode',
        node: n.id,
        state: 'down',
        command: { type: 'markNode', node: n.id, state: 'down' },
      });
    }
  }
  if (inGrace) return out;
  for (const n of nodes) {
    const idle = n.role === 'storage' && n.state === 'up' && isHealthy(input, n.id);
    if (idle && !hostsReplicas(input, n.id)) {
      out.push({ kind: 'returnToPool', node: n.id, command: { type: 'addSpare', node: n.id } });
    }
  }
  return out;
}
