/**
 * Child of log.test.ts: a server process (dieOnUncaught) logging with its stderr on /dev/full,
 * where every write fails with ENOSPC. Prints "alive DROPPED" on stdout if it survives.
 */
import { dieOnUncaught } from '../../src/lib/fatal.js';
import { createLogger, logLinesDropped } from '../../src/lib/log.js';

dieOnUncaught('log-test');
const log = createLogger('log-test');
for (let i = 0; i < 50; i++) {
  log.warn('a line the full disk cannot take', { i });
  await new Promise((r) => setImmediate(r));
}
process.stdout.write(`alive ${logLinesDropped()}\n`);
