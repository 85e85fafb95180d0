/**
 * Assertions for programmer errors (TigerBeetle style). A failed assertion is a bug: it throws an
 * AssertionError that must never be mapped to a client response. Operating errors (bad input, lost
 * peer, full disk) are TesseraErrors instead (see errors.ts).
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
