/**
 * Snapshot METADATA (the driver moves the data): sending a snapshot to a follower behind the
 * leader's first retained index, installing one, and log compaction.
 */
import { assert } from '../lib/assert.js';
import type { LogIndex, NodeId } from '../lib/ids.js';
import type { Core } from './core.js';
import { compactMembership, membershipAt, restoreMembership } from './membership.js';
import type { Progress } from './progress.js';
import type { OpResult, SnapshotMeta, SnapshotMsg } from './types.js';

/** The state machine's description at `index` (the snapshot point <= index <= last). */
export function metaAt(c: Core, index: number): SnapshotMeta {
  const term = c.log.term(index);
  assert(term !== undefined, `no term for index ${index}`);
  return {
    index: index as LogIndex,
    term,
    membership: membershipAt(c, index),
    highestSeq: c.log.seqAt(index),
  };
}

/** Leader: the follower needs entries we no longer have; describe our applied state machine. */
export function sendSnapshot(c: Core, pr: Progress): void {
  const meta = metaAt(c, c.log.applied);
  pr.becomeSnapshot(meta.index, c.nowMs);
  const m: SnapshotMsg = { type: 'snapshot', group: c.group, from: c.id, to: pr.id, term: c.term, meta };
  c.send(m);
}

/** The driver finished streaming (ok) or gave up; either way probe again from there. */
export function reportSnapshot(c: Core, to: NodeId, ok: boolean): void {
  const pr = c.prs.get(to);
  if (c.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
  const next = ok ? pr.pendingSnapshot + 1 : pr.match + 1;
  pr.becomeProbe(next);
  if (!ok) pr.probeSent = true; // wait for the next heartbeat answer before retrying
}

/** Follower: install the snapshot unless our log already covers it. */
export function handleSnapshot(c: Core, m: SnapshotMsg): void {
  c.lastLeaderContactMs = c.nowMs;
  const meta = m.meta;
  const log = c.log;
  let index: number = meta.index;
  if (meta.index <= log.commit) {
    index = log.commit;
  } else if (log.term(meta.index) === meta.term) {
    c.commitTo(meta.index);
  } else {
    log.restore(meta);
    restoreMembership(c, meta);
    if (!c.bugs.has('no-new-leader-seq-observe')) c.seqr.observe(meta.highestSeq);
    c.snapshotToInstall = meta;
  }
  c.sendAfterPersist(c.appendResp(m.from, false, index as LogIndex, 0 as LogIndex));
}

/** The state machine holds `index` durably: drop the log up to it. */
export function compact(c: Core, index: number): OpResult {
  assert(index <= c.log.applied, `compact(${index}) beyond the applied index ${c.log.applied}`);
  if (index <= c.log.snap.index) return { ok: true };
  const meta = metaAt(c, index);
  c.log.compact(meta);
  compactMembership(c, meta);
  return { ok: true };
}
