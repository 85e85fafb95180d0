/**
 * Crash-only handling of an uncaught exception or an unhandled rejection in a server process:
 * log it (one JSON line written synchronously to stderr) and end the process at once with
 * SIGKILL. Node's own exit path after an uncaught error joins the libuv thread pool, and lmdb-js's
 * write thread can sit in an open transaction waiting for the JS thread forever: measured here, a
 * storage node then hung instead of exiting, so its supervisor never restarted it. A node's state
 * is in its fsynced log; restarting from a kill is the path recovery is built and tested for.
 */
import { writeSync } from 'node:fs';

export function dieOnUncaught(component: string): void {
  const die = (what: string, e: unknown): void => {
    try {
      const err = e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : String(e);
      const line = {
        ts: new Date().toISOString(),
        level: 'error',
        component,
        msg: `fatal: ${what}`,
        error: err,
      };
      writeSync(2, `${JSON.stringify(line)}\n`);
    } finally {
      process.kill(process.pid, 'SIGKILL');
    }
  };
  process.on('uncaughtException', (e) => die('uncaught exception', e));
  process.on('unhandledRejection', (e) => die('unhandled rejection', e));
}
