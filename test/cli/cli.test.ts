/** The tessera CLI as a child process (tsx src/cli/main.ts) against a real server: output, --json, exit codes. */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../src/lib/metrics.js';
import { type RunningServer, startHttpServer } from '../../src/request/http.js';
import { makeTokens, quietLogger, type Tokens } from '../request/fixture.js';
import { MemoryBackend } from '../request/memory-backend.js';

const root = path.resolve(import.meta.dirname, '../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');
const mainTs = path.join(root, 'src/cli/main.ts');

let backend: MemoryBackend;
let server: RunningServer;
let tokens: Tokens;
let dir: string;

beforeAll(async () => {
  backend = new MemoryBackend();
  tokens = await makeTokens(backend);
  server = await startHttpServer(backend, { registry: new Registry(), logger: quietLogger() });
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-'));
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; input?: string; auth?: boolean } = {},
): Promise<Run> {
  const auth = opts.auth === false ? [] : ['--url', server.url, '--token', tokens.admin];
  const env = { ...process.env, TESSERA_TOKEN: '', TESSERA_LOG_LEVEL: 'error', ...opts.env };
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, [mainTs, ...args, ...auth], { cwd: opts.cwd ?? dir, env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

const oneLine = (s: string) => s.trimEnd().split('\n').length === 1;

describe('tessera CLI', () => {
  it('tables: create (--json), list, describe, drop, and 409 as exit 1 with one line', async () => {
    const created = await cli(['table', 'create', 'people', '--engine', 'lsm', '--json']);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'people', engine: 'lsm' });
    const [list, describe, again] = await Promise.all([
      cli(['table', 'list']),
      cli(['table', 'describe', 'people']),
      cli(['table', 'create', 'people']),
    ]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+ENGINE\npeople\s+lsm/);
    expect(describe.stdout).toContain('table people (lsm)');
    expect(again.code).toBe(1);
    expect(oneLine(again.stderr)).toBe(true);
    expect(again.stderr).toContain('TABLE_EXISTS');
    const dropped = await cli(['table', 'drop', 'people']);
    expect(dropped.code).toBe(0);
    expect(backend.tables.has('people')).toBe(false);
  });

  it('items: put (also from stdin), get, scan, del, and a missing key', async () => {
    await backend.createTable('t', 'btree');
    const put = await cli(['put', 't', 'k1', 'hello']);
    expect(put.code).toBe(0);
    expect(put.stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
    const [stdin, missing, missingJson] = await Promise.all([
      cli(['put', 't', 'k2', '-'], { input: 'from stdin' }),
      cli(['get', 't', 'nope']),
      cli(['get', 't', 'nope', '--json']),
    ]);
    expect(stdin.code).toBe(0);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^tessera: KEY_NOT_FOUND: /);
    expect(oneLine(missing.stderr)).toBe(true);
    expect(JSON.parse(missingJson.stderr).error.code).toBe('KEY_NOT_FOUND');
    const [get, getJson, scan, scanLimited] = await Promise.all([
      cli(['get', 't', 'k2']),
      cli(['get', 't', 'k1', '--json']),
      cli(['scan', 't', '--prefix', 'k', '--json']),
      cli(['scan', 't', '--limit', '1']),
    ]);
    expect(get.stdout).toBe('from stdin');
    expect(JSON.parse(getJson.stdout)).toMatchObject({ key: 'k1', value: 'hello', value_b64: 'aGVsbG8=' });
    expect(JSON.parse(scan.stdout).items.map((i: { key: string }) => i.key)).toEqual(['k1', 'k2']);
    expect(scanLimited.stdout).toBe('k1\thello\n');
    const del = await cli(['del', 't', 'k1']);
    expect(del.code).toBe(0);
    expect(await backend.get('t', new Uint8Array(Buffer.from('k1')))).toBeNull();
  });

  it('tokens: create read-only for a table, refused write, list, revoke', async () => {
    await backend.createTable('tt', 'btree').catch(() => undefined);
    const created = await cli(['token', 'create', '--read-only', '--table', 'tt', '--json']);
    expect(created.code).toBe(0);
    const t = JSON.parse(created.stdout);
    expect(t).toMatchObject({ role: 'read-only', table: 'tt' });
    const [refused, list] = await Promise.all([
      cli(['put', 'tt', 'a', 'b', '--url', server.url, '--token', t.token], { auth: false }),
      cli(['token', 'list']),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('FORBIDDEN');
    expect(list.stdout).toMatch(new RegExp(`${t.id}\\s+read-only\\s+tt`));
    const revoked = await cli(['token', 'revoke', t.id]);
    expect(revoked.code).toBe(0);
    expect(backend.tokens.has(t.id)).toBe(false);
  });

  it('metadata backup and restore through files', async () => {
    const file = path.join(dir, 'meta.backup');
    const backup = await cli(['metadata', 'backup', file]);
    expect(backup.code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(1);
    await backend.createTable('afterbackup', 'btree');
    const restore = await cli(['metadata', 'restore', file, '--json']);
    expect(restore.code).toBe(0);
    expect(JSON.parse(restore.stdout).restored).toBe(true);
    expect(backend.tables.has('afterbackup')).toBe(false);
  });

  it('reads the token from TESSERA_TOKEN or ./tessera-data/admin.token; cluster status', async () => {
    const cwd = mkdtempSync(path.join(dir, 'cwd-'));
    mkdirSync(path.join(cwd, 'tessera-data'));
    writeFileSync(path.join(cwd, 'tessera-data/admin.token'), `${tokens.ro}\n`);
    const [fromFile, fromEnv, none] = await Promise.all([
      cli(['cluster', 'status', '--url', server.url], { auth: false, cwd }),
      cli(['cluster', 'status', '--json', '--url', server.url], {
        auth: false,
        env: { TESSERA_TOKEN: tokens.ro },
      }),
      cli(['table', 'list', '--url', server.url], { auth: false }),
    ]);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toContain('metadata: leader 2, members 1, 2, 3');
    expect(fromFile.stdout).toMatch(/GROUP\s+MEMBERS\s+LEADER\s+TERM\n1\s+11,12,13\s+12\s+7/);
    expect(JSON.parse(fromEnv.stdout).metadata.leader).toBe(2);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('UNAUTHORIZED');
  });

  it('usage errors exit 2; an unreachable server exits 1 with one line', async () => {
    const [usage, unknown, badFlag, down] = await Promise.all([
      cli(['table', 'create']),
      cli(['frobnicate'], { auth: false }),
      cli(['table', 'list', '--nope']),
      cli(['table', 'list', '--url', 'http://127.0.0.1:1', '--timeout', '0.3'], { auth: false }),
    ]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: tessera table create NAME');
    expect(unknown.code).toBe(2);
    expect(badFlag.code).toBe(2);
    expect(down.code).toBe(1);
    expect(oneLine(down.stderr)).toBe(true);
    expect(down.stderr).toContain('UNAVAILABLE');
  });
});
