/** The leader's replication progress for one peer (etcd's tracker.Progress, simplified). */
import type { LogIndex, NodeId } from '../lib/ids.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  readonly id: NodeId;
  voter: boolean;
  /** Highest index known to be durably replicated on the peer. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** Probe: an append is outstanding; wait for its answer or the next heartbeat answer. */
  probeSent = false;
  /** Replicate: last index of each unacknowledged append, in send order. */
  inflight: number[] = [];
  pendingSnapshot = 0;
  snapshotSentMs = 0;
  /** Last monoMs we heard from the peer (check-quorum). */
  lastAckMs: number;
  /** Highest heartbeat round the peer acknowledged in this term. */
  ackedRound = 0;
  /** Commit index last sent to the peer. */
  sentCommit = 0;
  /** match at the previous heartbeat answer (a replicate stream that stopped moving is re-probed). */
  matchAtLastHeartbeat = -1;

  constructor(id: NodeId, voter: boolean, next: number, nowMs: number) {
    this.id = id;
    this.voter = voter;
    this.next = next;
    this.lastAckMs = nowMs;
  }

  becomeProbe(next: number): void {
    this.state = 'probe';
    this.next = Math.max(next, this.match + 1);
    this.probeSent = false;
    this.inflight.length = 0;
    this.pendingSnapshot = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflight.length = 0;
  }

  becomeSnapshot(index: LogIndex, nowMs: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotSentMs = nowMs;
    this.inflight.length = 0;
  }

  /** Forget in-flight appends acknowledged up to `index`. */
  freeTo(index: number): void {
    let k = 0;
    while (k < this.inflight.length && this.inflight[k]! <= index) k++;
    if (k > 0) this.inflight.splice(0, k);
  }

  /** True when an append may be sent now. */
  canSend(inflightMax: number): boolean {
    switch (this.state) {
      case 'probe':
        return !this.probeSent;
      case 'replicate':
        return this.inflight.length < inflightMax;
      case 'snapshot':
        return false;
    }
  }
}
