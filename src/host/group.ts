/**
 * One hosted replica: its core, state machine, sequencer, descriptor, and the clients waiting on it
 * (proposals by log index, reads by context). Pure bookkeeping; the host drives the I/O.
 */
import type { Replica } from '../consensus/replica.js';
import type { DroppedRange, Entry, HardState } from '../consensus/types.js';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import type { GroupDescriptor } from './descriptor.js';
import type { CommandOutcome, StateMachine } from './types.js';

interface PendingEntry<R> {
  readonly term: Term;
  readonly settle: (o: CommandOutcome<R>) => void;
}

interface PendingRead {
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** A snapshot received from a leader, waiting for the core to ask for its install. */
export interface StagedSnapshot {
  readonly index: LogIndex;
  readonly chunks: readonly Uint8Array[];
}

/** A snapshot being received from `from`. */
export interface IncomingSnapshot {
  readonly from: NodeId;
  readonly index: LogIndex;
  next: number;
  bytes: number;
  readonly chunks: Uint8Array[];
}

export class HostedGroup<R> {
  readonly id: GroupId;
  readonly replica: Replica;
  readonly sm: StateMachine<R>;
  descriptor: GroupDescriptor;
  /** A Ready of this group is being processed (one at a time, in order). */
  busy = false;
  /** New input since the last ready() check. */
  dirty = false;
  /** Stopped (removed or host closing): no more Readys are taken. */
  stopped = false;
  /**
   * The apply lane: the apply half of each Ready (snapshot captures, apply, answers, soft state)
   * runs here in Ready order, while the next Ready's append and messages already proceed.
   */
  applyTail: Promise<void> = Promise.resolve();
  /** Ready halves queued or running in the apply lane. */
  applyPending = 0;
  appliedSinceCheckpoint = 0;
  /** The hard state last written to the log, and a newer one that only moved the commit hint. */
  durableHard: HardState | null = null;
  commitHint: HardState | null = null;
  checkpointing: Promise<void> | null = null;
  /** Targets we are streaming a snapshot to. */
  readonly streaming = new Set<NodeId>();
  incoming: IncomingSnapshot | null = null;
  readonly staged = new Map<number, StagedSnapshot>();
  private readonly proposals = new Map<number, PendingEntry<R>>();
  private readonly reads = new Map<number, PendingRead>();
  private wasLeader = false;
  private leaderTerm = 0 as Term;

  constructor(id: GroupId, replica: Replica, sm: StateMachine<R>, descriptor: GroupDescriptor) {
    this.id = id;
    this.replica = replica;
    this.sm = sm;
    this.descriptor = descriptor;
  }

  get readsPending(): number {
    return this.reads.size;
  }

  /** Registers the entries [first, first + n) of `term` as waiting for their outcome. */
  expect(first: LogIndex, term: Term, n: number, settle: (k: number, o: CommandOutcome<R>) => void): void {
    for (let k = 0; k < n; k++) {
      const old = this.proposals.get(first + k);
      if (old !== undefined) {
        // A proposal of an older term at this index, never reported dropped: its fate is unknown.
        assert(old.term < term, `entry ${first + k} proposed twice in term ${term}`);
        old.settle({ ok: false, error: this.unknown('the entry was replaced') });
      }
      this.proposals.set(first + k, { term, settle: (o) => settle(k, o) });
    }
  }

  addRead(ctx: number, r: PendingRead): void {
    this.reads.set(ctx, r);
  }

  /** Committed entries were applied with these results. */
  applied(entries: readonly Entry[], results: readonly R[]): void {
    assert(results.length === entries.length, 'apply must return one result per entry');
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const p = this.proposals.get(e.index);
      if (p === undefined) continue;
      this.proposals.delete(e.index);
      if (p.term === e.term) {
        p.settle({ ok: true, index: e.index, term: e.term, seq: e.seq, result: results[k]! });
      } else {
        p.settle({ ok: false, error: this.notApplied(e.index) });
      }
    }
  }

  /** Entries removed from the log before they were committed: their proposals failed. */
  dropped(ranges: readonly DroppedRange[]): void {
    for (const r of ranges) {
      for (let i = r.first; i <= r.last; i++) {
        const p = this.proposals.get(i);
        if (p === undefined || p.term !== r.term) continue;
        this.proposals.delete(i);
        p.settle({ ok: false, error: this.notApplied(i) });
      }
    }
  }

  /** On losing leadership (or leading in a new term): what is still pending may or may not commit. */
  roleChanged(isLeader: boolean, term: Term): void {
    if (this.wasLeader && (!isLeader || term !== this.leaderTerm)) {
      this.failProposals('OUTCOME_UNKNOWN', 'leadership was lost');
    }
    this.wasLeader = isLeader;
    this.leaderTerm = term;
  }

  readDone(ctx: number, error?: TesseraError): void {
    const r = this.reads.get(ctx);
    if (r === undefined) return;
    this.reads.delete(ctx);
    if (error === undefined) r.resolve();
    else r.reject(error);
  }

  /** Fails everything waiting (host closing, group removed). */
  failAll(code: 'UNAVAILABLE' | 'OUTCOME_UNKNOWN', why: string): void {
    this.failProposals(code, why);
    for (const [ctx] of this.reads) this.readDone(ctx, new TesseraError('UNAVAILABLE', why));
  }

  private failProposals(code: 'UNAVAILABLE' | 'OUTCOME_UNKNOWN', why: string): void {
    const all = [...this.proposals.values()];
    this.proposals.clear();
    for (const p of all) p.settle({ ok: false, error: this.unknown(why, code) });
  }

  /** The entry is in the log (maybe replicated): its fate is unknown, whatever the code says. */
  private unknown(why: string, code: 'UNAVAILABLE' | 'OUTCOME_UNKNOWN' = 'OUTCOME_UNKNOWN'): TesseraError {
    return new TesseraError(code, `group ${this.id}: ${why}; the write may or may not be applied`, {
      maybeDelivered: true,
    });
  }

  private notApplied(index: number): TesseraError {
    const s = this.replica.status();
    return new TesseraError('NOT_LEADER', `group ${this.id}: entry ${index} was not committed; retry`, {
      leader: s.leader,
      term: s.term,
    });
  }
}
