/** The records a consensus driver appends to the log, and what it reads back. */
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { encodeVote, type HardState, type RecordHeader, RecordType, type SnapshotMark } from './format.js';

export type LogRecord =
  | { kind: 'entry'; group: GroupId; term: Term; index: LogIndex; payload: Uint8Array }
  | { kind: 'hardState'; group: GroupId; term: Term; vote: NodeId | 0; commit: LogIndex }
  | { kind: 'snapshot'; group: GroupId; term: Term; index: LogIndex }
  | { kind: 'dropGroup'; group: GroupId };

export interface LogEntry {
  index: LogIndex;
  term: Term;
  payload: Buffer;
}

/** Consecutive entries from `first`: entry first+k's payload is buf[starts[k], ends[k]). */
export interface PayloadRun {
  readonly first: LogIndex;
  readonly buf: Buffer;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
}

export interface GroupState {
  group: GroupId;
  /** First live entry (entries below it were released, snapshotted or deleted). */
  firstIndex: LogIndex;
  lastIndex: LogIndex;
  lastTerm: Term;
  hardState: HardState | undefined;
  snapshot: SnapshotMark | undefined;
}

export function header(r: LogRecord): RecordHeader {
  switch (r.kind) {
    case 'entry':
      return { type: RecordType.Entry, group: r.group, term: r.term, index: r.index };
    case 'hardState':
      return { type: RecordType.HardState, group: r.group, term: r.term, index: r.commit };
    case 'snapshot':
      return { type: RecordType.Snapshot, group: r.group, term: r.term, index: r.index };
    case 'dropGroup':
      return { type: RecordType.GroupDrop, group: r.group, term: 0, index: 0 };
  }
}

export function payloadOf(r: LogRecord): Uint8Array {
  if (r.kind === 'entry') return r.payload;
  if (r.kind === 'hardState') return encodeVote(r.vote);
  return new Uint8Array(0);
}
