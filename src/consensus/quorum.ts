/** Majority quorums and membership arithmetic (pure helpers). */
import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import type { Membership, MembershipChange } from './types.js';

export function quorumSize(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** The highest value that a majority of `values` (one per voter) is at or above. */
export function quorumValue(values: number[]): number {
  assert(values.length > 0, 'quorum of no voters');
  values.sort((a, b) => b - a);
  return values[quorumSize(values.length) - 1]!;
}

export function isVoter(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id);
}

export function isMember(m: Membership, id: NodeId): boolean {
  return m.voters.includes(id) || m.learners.includes(id);
}

/** Why `change` can't apply to `m`, or null if it can. */
export function membershipChangeError(m: Membership, change: MembershipChange): string | null {
  switch (change.type) {
    case 'add-learner':
      return isMember(m, change.node) ? `node ${change.node} is already a member` : null;
    case 'promote':
      return m.learners.includes(change.node) ? null : `node ${change.node} is not a learner`;
    case 'remove':
      if (!isMember(m, change.node)) return `node ${change.node} is not a member`;
      if (m.voters.length === 1 && m.voters[0] === change.node) return 'cannot remove the last voter';
      return null;
  }
}

/** The membership after `change` (which must be valid; an invalid committed change is ignored). */
export function applyMembershipChange(m: Membership, change: MembershipChange): Membership {
  if (membershipChangeError(m, change) !== null) return m;
  const n = change.node;
  switch (change.type) {
    case 'add-learner':
      return { voters: m.voters, learners: [...m.learners, n] };
    case 'promote':
      return { voters: [...m.voters, n], learners: m.learners.filter((x) => x !== n) };
    case 'remove':
      return { voters: m.voters.filter((x) => x !== n), learners: m.learners.filter((x) => x !== n) };
  }
}
