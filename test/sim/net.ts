/**
 * The simulated network. Every message is delayed (so messages reorder), may be lost or duplicated,
 * and is dropped on a blocked link. Links are directed, so partitions can be asymmetric. Endpoints:
 * storage nodes 1..N, the metadata manager 0, clients 1000+. Partitions apply between nodes and
 * between a node and the metadata manager; clients reach every node (loss and delay still apply).
 */
import type { Prng } from '../../src/lib/prng.js';

export const mmEndpoint = 0;
export const clientEndpointBase = 1000;

export interface NetProfile {
  delayMsMin: number;
  delayMsMax: number;
  /** Probability of an extra long delay (reordering, slow links). */
  slowRate: number;
  slowMsMax: number;
  /** Probability of a message stuck for 0.5 s up to `stuckMsMax`. */
  stuckRate: number;
  stuckMsMax: number;
  lossRate: number;
  dupRate: number;
}

export class SimNet {
  private readonly blocked = new Set<number>();
  /** Faults off: no loss, no duplication (the liveness phase). */
  calm = false;
  lossBurst = 0;
  sent = 0;
  dropped = 0;

  constructor(
    private readonly prng: Prng,
    private readonly profile: NetProfile,
    private readonly schedule: (delayMs: number, fn: () => void) => void,
  ) {}

  private static link(from: number, to: number): number {
    return from * 4096 + to;
  }

  block(from: number, to: number): void {
    this.blocked.add(SimNet.link(from, to));
  }

  /** Blocks both directions between every node of `a` and every node of `b`. */
  split(a: readonly number[], b: readonly number[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y);
        this.block(y, x);
      }
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  isBlocked(from: number, to: number): boolean {
    return from < clientEndpointBase && to < clientEndpointBase && this.blocked.has(SimNet.link(from, to));
  }

  /** Sends one message: `deliver` runs at the receiver after the delay (zero, one or two times). */
  send(from: number, to: number, deliver: () => void): boolean {
    this.sent++;
    const p = this.profile;
    const lossRate = this.calm ? 0 : Math.max(p.lossRate, this.lossBurst);
    if (this.isBlocked(from, to) || (lossRate > 0 && this.prng.chance(lossRate))) {
      this.dropped++;
      return false;
    }
    const copies = !this.calm && this.prng.chance(p.dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = this.prng.int(p.delayMsMin, p.delayMsMax);
      if (!this.calm && this.prng.chance(p.slowRate)) delay += this.prng.int(0, p.slowMsMax);
      // A long tail: a message stuck in a queue arrives long after newer ones (stale terms).
      if (!this.calm && this.prng.chance(p.stuckRate)) delay += this.prng.int(500, p.stuckMsMax);
      this.schedule(delay, () => {
        // A partition that appeared while the message was in flight drops it too.
        if (!this.isBlocked(from, to)) deliver();
      });
    }
    return true;
  }
}
