/** Test helper for the host tests: waits for a group's replicas to hold the leader's data. */
import { expect } from 'vitest';
import type { GroupId } from '../../src/lib/ids.js';
import { type Cluster, waitFor } from './harness.js';

/**
 * Waits until every listed node's state machine of g is at the leader's applied index with as many
 * keys, then expects the same data on each.
 */
export async function converged(
  c: Cluster,
  g: GroupId,
  ids: number[],
  leader: number,
  timeoutMs = 15_000,
): Promise<void> {
  await waitFor(
    () => {
      const ref = c.sm(leader, g);
      return ids.every((id) => {
        const sm = c.node(id).sms.get(g);
        return sm !== undefined && sm.applied.index === ref.applied.index && sm.data.size === ref.data.size;
      });
    },
    timeoutMs,
    `group ${g} to converge`,
  );
  const ref = [...c.sm(leader, g).data].sort();
  for (const id of ids) expect([...c.sm(id, g).data].sort()).toEqual(ref);
}
