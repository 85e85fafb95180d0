/**
 * Hybrid logical clock issuing seqs. Pure: the wall time is passed to `next()` by the caller.
 *
 * State: the last issued/observed (timestamp, counter). `next(wallNs)`:
 * - if wallNs > timestamp: timestamp = wallNs, counter = 0;
 * - else (clock stood still or went back): counter + 1; if the counter would pass 2^32 - 1 the
 *   timestamp's logical part takes over: timestamp + 1, counter = 0.
 * `observe(seq)` raises (timestamp, counter) to the seq's if it is higher, so the next id is above it
 * (the node id sits below the counter, so (ts, counter + 1, any node) > (ts, counter, other node)).
 */
import { assert } from '../lib/assert.js';
import type { NodeId, Seq } from '../lib/ids.js';
import { makeSeq, SEQ_COUNTER_MAX, SEQ_TIMESTAMP_NS_MAX, seqCounter, seqTimestampNs } from './seq.js';

export class Sequencer {
  readonly nodeId: NodeId;
  private timestampNs = -1n; // -1: nothing issued or observed yet
  private counter = 0;
  /** The 8 big-endian bytes of timestampNs, refreshed only when it changes (the hot path). */
  private readonly timestampBytes = new Uint8Array(8);
  private timestampBytesFor = -1n;

  constructor(nodeId: NodeId, initial?: Seq) {
    assert(Number.isInteger(nodeId) && nodeId > 0 && nodeId <= 0xffff_ffff, `bad node id ${nodeId}`);
    this.nodeId = nodeId;
    if (initial !== undefined) this.observe(initial);
  }

  /** A new seq, strictly above every seq issued or observed before. */
  next(wallNs: bigint): Seq {
    assert(wallNs >= 0n && wallNs <= SEQ_TIMESTAMP_NS_MAX, `wall time out of range: ${wallNs}`);
    if (wallNs > this.timestampNs) {
      this.timestampNs = wallNs;
      this.counter = 0;
    } else if (this.counter < SEQ_COUNTER_MAX) {
      this.counter += 1;
    } else {
      this.timestampNs += 1n;
      this.counter = 0;
    }
    return this.issue();
  }

  /** Builds the seq of the current (timestamp, counter) without BigInt work when the timestamp is unchanged. */
  private issue(): Seq {
    if (this.timestampBytesFor !== this.timestampNs) {
      new DataView(this.timestampBytes.buffer).setBigUint64(0, this.timestampNs);
      this.timestampBytesFor = this.timestampNs;
    }
    const b = new Uint8Array(16);
    b.set(this.timestampBytes, 0);
    const c = this.counter;
    b[8] = c >>> 24;
    b[9] = (c >>> 16) & 0xff;
    b[10] = (c >>> 8) & 0xff;
    b[11] = c & 0xff;
    const n = this.nodeId;
    b[12] = n >>> 24;
    b[13] = (n >>> 16) & 0xff;
    b[14] = (n >>> 8) & 0xff;
    b[15] = n & 0xff;
    return b as Seq;
  }

  /** Moves the clock past `seq`: every later `next()` returns a greater seq. */
  observe(seq: Seq): void {
    const ts = seqTimestampNs(seq);
    const counter = seqCounter(seq);
    assert(ts <= SEQ_TIMESTAMP_NS_MAX, 'observed seq has the top bit set');
    if (ts > this.timestampNs || (ts === this.timestampNs && counter > this.counter)) {
      this.timestampNs = ts;
      this.counter = counter;
    }
  }

  /** The highest (timestamp, counter) seen, as a seq with this node's id (for persisting). */
  high(): Seq | undefined {
    if (this.timestampNs < 0n) return undefined;
    return makeSeq(this.timestampNs, this.counter, this.nodeId);
  }
}
