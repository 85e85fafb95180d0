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

describe('logs on a full disk', () => {
  it('a server process whose stderr cannot be written (ENOSPC) drops the lines and lives on', async () => {
    const { spawn } = await import('node:child_process');
    const { openSync, closeSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const child = fileURLToPath(new URL('./log-full-child.ts', import.meta.url));
    const full = openSync('/dev/full', 'w'); // every write fails with ENOSPC
    try {
      const p = spawn(process.execPath, ['--import', 'tsx', child], { stdio: ['ignore', 'pipe', full] });
      let out = '';
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
      expect(code).toBe(0);
      const dropped = Number(/^alive (\d+)$/m.exec(out)?.[1]);
      expect(dropped).toBe(50);
    } finally {
      closeSync(full);
    }
  });
});
