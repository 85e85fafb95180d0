/**
 * What the host writes and sends for a Ready: its log records (snapshot mark, entries, hard state)
 * and snapshot messages brought up to the state machine's applied index.
 */
import { encodeEntry } from '../consensus/codec.js';
import type { Ready, SnapshotMsg } from '../consensus/types.js';
import { assert } from '../lib/assert.js';
import type { LogRecord } from '../log/log.js';
import type { HostedGroup } from './group.js';

/**
 * The snapshot message for the state machine as it is now: the applies queued in the lane before
 * the capture moved it past the index the core described when it emitted the message.
 */
export function atApplied<R>(hg: HostedGroup<R>, m: SnapshotMsg): SnapshotMsg {
  const applied = hg.replica.status().applied;
  if (applied === m.meta.index) return m;
  assert(applied > m.meta.index, `group ${hg.id}: applied ${applied} below snapshot ${m.meta.index}`);
  return { ...m, meta: hg.replica.appliedMeta() };
}

/**
 * Step 2's records: snapshot mark, entries (codec v1 as payload), hard state. A hard state whose
 * term and vote are already durable only moves the commit hint: it waits for the group's next
 * record instead of costing an fsync of its own.
 */
export function readyRecords<R>(hg: HostedGroup<R>, rd: Ready): LogRecord[] {
  const group = hg.id;
  const out: LogRecord[] = [];
  if (rd.snapshot !== null)
    out.push({ kind: 'snapshot', group, term: rd.snapshot.term, index: rd.snapshot.index });
  for (const e of rd.entries)
    out.push({ kind: 'entry', group, term: e.term, index: e.index, payload: encodeEntry(e) });
  const h = rd.hardState ?? hg.commitHint;
  if (h === null) return out;
  const p = hg.durableHard;
  if (out.length === 0 && p !== null && h.term === p.term && h.vote === p.vote) {
    hg.commitHint = h;
    return out;
  }
  hg.commitHint = null;
  hg.durableHard = h;
  out.push({ kind: 'hardState', group, term: h.term, vote: h.vote, commit: h.commit });
  return out;
}
