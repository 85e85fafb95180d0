/** Test helper: replica timing for in-process clusters (short timeouts; fallbacks out of the way). */
export const fastTiming = {
  heartbeatIntervalMs: 50,
  electionTimeoutMs: 400,
  leaseDriftMarginMs: 80,
  directedFallbackMs: 60_000,
  fsyncStallMaxMs: 5_000,
};
