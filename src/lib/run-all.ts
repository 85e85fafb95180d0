/**
 * Runs every step in order even if some fail, then throws the first failure: a close that must
 * release every resource although one of them cannot be flushed (a full disk).
 */
export async function runAll(steps: readonly (() => Promise<unknown>)[]): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const step of steps) {
    try {
      await step();
    } catch (e) {
      first ??= { error: e };
    }
  }
  if (first !== undefined) throw first.error;
}
