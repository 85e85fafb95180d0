/**
 * A simulated storage node: its clocks, its disk, the replicas it hosts, and its process state
 * (up, crashed, paused). Everything that runs "on" the node goes through `schedule`, which drops
 * the work if the process died since and defers it while the process is paused.
 */
import type { NodeId } from '../../src/lib/ids.js';
import type { Prng } from '../../src/lib/prng.js';
import { SimDisk } from './disk.js';
import type { ReplicaHost } from './host.js';
import type { EventQueue } from './queue.js';

/** 2023-11-14 in ns: wall clocks start near a realistic epoch. */
const epochNs = 1_700_000_000_000_000_000n;

/**
 * Monotonic time advances at `rate` (1 +- the drift bound) of real time; wall time follows the
 * monotonic clock plus an offset that jumps (forwards or backwards).
 */
export class NodeClock {
  private baseReal = 0;
  private baseMono = 0;
  rate = 1;
  wallOffsetMs = 0;

  constructor(private readonly now: () => number) {}

  monoMs(): number {
    return this.baseMono + (this.now() - this.baseReal) * this.rate;
  }

  wallNs(): bigint {
    const ms = this.monoMs() + this.wallOffsetMs;
    return epochNs + BigInt(Math.max(0, Math.floor(ms * 1e6)));
  }

  setRate(rate: number): void {
    this.baseMono = this.monoMs();
    this.baseReal = this.now();
    this.rate = rate;
  }
}

export type NodeState = 'up' | 'down' | 'paused';

export class SimNode {
  readonly clock: NodeClock;
  readonly disk: SimDisk;
  readonly hosts: ReplicaHost[] = [];
  state: NodeState = 'up';
  incarnation = 0;
  /** Starts the node's periodic work (ticks, heartbeats); called on boot and on every restart. */
  onStart: () => void = () => {};
  /** Work that piled up while paused: timers (ticks, fsync completions) and I/O (messages, requests). */
  private deferredTimers: (() => void)[] = [];
  private deferredIo: (() => void)[] = [];

  constructor(
    readonly id: NodeId,
    private readonly queue: EventQueue,
    private readonly now: () => number,
    private readonly prng: Prng,
    fsync: { min: number; max: number },
  ) {
    this.clock = new NodeClock(now);
    this.disk = new SimDisk({
      now,
      schedule: (d, fn) => this.schedule(d, fn),
      prng,
      fsyncMsMin: fsync.min,
      fsyncMsMax: fsync.max,
    });
  }

  /** Runs `fn` on this node after `delayMs` unless it crashed meanwhile; deferred while paused. */
  schedule(delayMs: number, fn: () => void): void {
    const inc = this.incarnation;
    this.queue.push(this.now() + delayMs, () => this.run(inc, fn));
  }

  /** Delivers work from outside (a message) now: dropped if down, deferred if paused. */
  deliver(fn: () => void): void {
    if (this.state === 'down') return;
    if (this.state === 'paused') this.deferredIo.push(fn);
    else fn();
  }

  private run(inc: number, fn: () => void): void {
    if (inc !== this.incarnation || this.state === 'down') return;
    if (this.state === 'paused') this.deferredTimers.push(fn);
    else fn();
  }

  crash(prng: Prng): { kept: number; lost: number; torn: boolean } {
    this.state = 'down';
    this.incarnation++;
    this.deferredTimers = [];
    this.deferredIo = [];
    for (const h of this.hosts) h.crash();
    return this.disk.crash(prng);
  }

  restart(): void {
    this.state = 'up';
    for (const h of this.hosts) h.start();
    this.onStart();
  }

  pause(): void {
    if (this.state === 'up') this.state = 'paused';
  }

  /**
   * Resumes: the work that piled up runs now (the monotonic clock has jumped). Like an event loop
   * after SIGCONT, it may handle the queued I/O before or after its overdue timers.
   */
  resume(): void {
    if (this.state !== 'paused') return;
    this.state = 'up';
    const ioFirst = this.prng.chance(0.5);
    const work = ioFirst
      ? [...this.deferredIo, ...this.deferredTimers]
      : [...this.deferredTimers, ...this.deferredIo];
    this.deferredTimers = [];
    this.deferredIo = [];
    for (const fn of work) {
      if (this.state !== 'up') break;
      fn();
    }
  }
}
