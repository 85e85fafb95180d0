import { describe, expect, it } from 'vitest';
import { Logger, levelFromEnv } from '../../src/lib/log.js';
import { TesseraError } from '../../src/lib/errors.js';

describe('structured logs', () => {
  it('writes one JSON line per event with level, component and fields, above the minimum level', () => {
    const lines: string[] = [];
    const log = new Logger('request', { level: 'info', sink: (l) => lines.push(l) });
    log.debug('hidden');
    log.info('listening', { port: 7070 });
    log.child({ conn: 3 }).error('failed', { err: new TesseraError('DISK_FULL', 'full') });
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const a = JSON.parse(lines[0]!);
    expect(a).toMatchObject({ level: 'info', component: 'request', msg: 'listening', port: 7070 });
    expect(Number.isNaN(Date.parse(a.ts))).toBe(false);
    const b = JSON.parse(lines[1]!);
    expect(b).toMatchObject({
      level: 'error',
      conn: 3,
      err: { name: 'TesseraError', code: 'DISK_FULL', message: 'full' },
    });
  });

  it('takes the level from TESSERA_LOG_LEVEL, defaulting to info', () => {
    expect(levelFromEnv({ TESSERA_LOG_LEVEL: 'debug' })).toBe('debug');
    expect(levelFromEnv({ TESSERA_LOG_LEVEL: 'WARN' })).toBe('warn');
    expect(levelFromEnv({ TESSERA_LOG_LEVEL: 'loud' })).toBe('info');
    expect(levelFromEnv({})).toBe('info');
  });
});
