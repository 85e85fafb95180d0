/**
 * Membership: one change at a time, effective when committed (add a learner, promote a caught-up
 * learner, remove a replica). A removed replica never campaigns; a removed leader steps down.
 */
import { TesseraError } from '../lib/errors.js';
import type { LogIndex, NodeId } from '../lib/ids.js';
import { decodeMembershipChange, encodeMembershipChange } from './codec.js';
import type { Core } from './core.js';
import { applyMembershipChange, membershipChangeError } from './quorum.js';
import type { Membership, MembershipChange, ProposeResult, SnapshotMeta } from './types.js';

export interface MembershipState {
  /** The committed membership. */
  membership: Membership;
  /** Committed changes after the snapshot point: (index, membership from that index on). */
  history: { index: number; membership: Membership }[];
  /** Index of the last config entry appended (a new change waits until it is committed). */
  pendingIndex: number;
  removed: boolean;
}

export function initialMembershipState(snap: SnapshotMeta): MembershipState {
  return { membership: snap.membership, history: [], pendingIndex: snap.index, removed: false };
}

/** Apply the config entries in (from, commit]. */
export function commitMembershipChanges(c: Core, from: number): void {
  const log = c.log;
  let changed = false;
  for (let i = Math.max(from, log.snap.index) + 1; i <= log.commit; i++) {
    const e = log.entry(i);
    if (e === undefined || e.kind !== 'config') continue;
    const change = decodeMembershipChange(e.data);
    c.ms.membership = applyMembershipChange(c.ms.membership, change);
    c.ms.history.push({ index: i, membership: c.ms.membership });
    if (change.type === 'remove' && change.node === c.id) c.ms.removed = true;
    changed = true;
  }
  if (!changed || c.role !== 'leader') return;
  if (c.ms.removed) {
    c.becomeFollower(c.term, 0 as NodeId);
    return;
  }
  const before = [...c.prs.values()];
  c.rebuildProgress();
  // A removed replica gets one last heartbeat carrying the commit of its removal (if it has it).
  for (const pr of before) {
    if (c.prs.has(pr.id)) continue;
    const commit = Math.min(c.log.commit, pr.match) as LogIndex;
    c.send({ type: 'heartbeat', group: c.group, from: c.id, to: pr.id, term: c.term, commit, round: 0 });
  }
}

/** The membership in force at index i (i >= the snapshot point). */
export function membershipAt(c: Core, i: number): Membership {
  let m = c.log.snap.membership;
  for (const h of c.ms.history) {
    if (h.index > i) break;
    m = h.membership;
  }
  return m;
}

/** After compaction to `meta`: forget history at or below it. */
export function compactMembership(c: Core, meta: SnapshotMeta): void {
  c.ms.history = c.ms.history.filter((h) => h.index > meta.index);
}

/** After installing a snapshot. */
export function restoreMembership(c: Core, meta: SnapshotMeta): void {
  c.ms.membership = meta.membership;
  c.ms.history = [];
  c.ms.pendingIndex = meta.index;
  // `removed` changes only with a committed removal of this replica: a snapshot taken before this
  // replica was added (the leader's applied index may lag its commit) must not disable it.
}

export function proposeMembership(c: Core, change: MembershipChange, wallNs: bigint): ProposeResult {
  if (c.role !== 'leader') return { ok: false, error: c.notLeader('membership change') };
  const busy = (why: string): ProposeResult => ({ ok: false, error: new TesseraError('UNAVAILABLE', why) });
  if (c.transfer !== null) return busy('leadership transfer in progress');
  if (!c.committedInTerm()) return busy('the new leader has not committed its first entry yet');
  if (c.ms.pendingIndex > c.log.commit) return busy('another membership change is in progress');
  const err = membershipChangeError(c.ms.membership, change);
  if (err !== null) return { ok: false, error: new TesseraError('BAD_REQUEST', err) };
  if (change.type === 'promote') {
    const pr = c.prs.get(change.node);
    if (pr === undefined || pr.match < c.log.commit) return busy(`learner ${change.node} has not caught up`);
  }
  c.wallNs = wallNs;
  const [e] = c.appendLocal('config', [encodeMembershipChange(change)], wallNs);
  c.ms.pendingIndex = e!.index;
  return { ok: true, term: c.term, firstIndex: e!.index, seqs: [e!.seq] };
}
