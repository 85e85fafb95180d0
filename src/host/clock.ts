/** The host's clock: monotonic ms for the consensus timers and leases, wall ns for seqs. */
import type { Clock } from './types.js';

const wallBaseNs = BigInt(Date.now()) * 1_000_000n;
const hrBaseNs = process.hrtime.bigint();

/** performance.now() and a wall clock with ns resolution (Date.now() at start + hrtime since). */
export const systemClock: Clock = {
  monoMs: () => performance.now(),
  wallNs: () => wallBaseNs + (process.hrtime.bigint() - hrBaseNs),
};
