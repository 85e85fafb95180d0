/**
 * The client commands of the tessera CLI (API.md): table, put, get, del, scan, cluster, token,
 * metadata backup/restore. Readable output by default, `--json` for scripts. Exit 0 on success;
 * on failure one line on stderr (JSON with --json) and exit 1 (2 for usage errors).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { TesseraClient } from '../client/client.js';
import type { Engine, TokenRole } from '../client/types.js';
import { TesseraError } from '../lib/errors.js';
import { keyToJson } from '../lib/urlbytes.js';
import { flagString, type ParsedArgs, parseArgs, positionals, UsageError } from './args.js';
import { printCluster, printTable, type Out } from './output.js';

const valued = ['url', 'token', 'timeout', 'engine', 'table', 'prefix', 'start', 'end', 'limit'];
const boolean = ['json', 'read-only', 'read-write', 'admin', 'help'];

export const defaultUrl = 'http://127.0.0.1:7070';
export const defaultTokenFile = 'tessera-data/admin.token';
/** How long a command may take, retries included (--timeout SECONDS). */
export const defaultTimeoutSeconds = 5;

/** --token, else TESSERA_TOKEN, else ./tessera-data/admin.token, else none. */
export function resolveToken(p: ParsedArgs, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  const flag = flagString(p, 'token');
  if (flag !== undefined) return flag;
  if (env.TESSERA_TOKEN) return env.TESSERA_TOKEN.trim();
  try {
    return readFileSync(`${cwd}/${defaultTokenFile}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

type Action = (c: TesseraClient, p: ParsedArgs, out: Out) => Promise<void>;

const readStdin = (): Uint8Array => new Uint8Array(readFileSync(0));

const actions: Record<string, Action> = {
  'table create': async (c, p, out) => {
    const [name] = positionals(p, 1, 'table create NAME [--engine btree|lsm]');
    const engine = flagString(p, 'engine');
    const t = await c.createTable(name as string, engine === undefined ? {} : { engine: engine as Engine });
    out.result(t, () => `created table ${t.name} (${t.engine}, ${t.shards.length} shards)`);
  },
  'table list': async (c, p, out) => {
    positionals(p, 0, 'table list');
    const tables = await c.listTables();
    out.result({ tables }, () =>
      printTable(
        ['NAME', 'ENGINE'],
        tables.map((t) => [t.name, t.engine]),
      ),
    );
  },
  'table describe': async (c, p, out) => {
    const [name] = positionals(p, 1, 'table describe NAME');
    const t = await c.describeTable(name as string);
    const rows = t.shards.map((s) => [
      JSON.stringify(s.start),
      JSON.stringify(s.end),
      String(s.group),
      String(s.epoch),
    ]);
    out.result(
      t,
      () => `table ${t.name} (${t.engine})\n${printTable(['START', 'END', 'GROUP', 'EPOCH'], rows)}`,
    );
  },
  'table drop': async (c, p, out) => {
    const [name] = positionals(p, 1, 'table drop NAME');
    await c.dropTable(name as string);
    out.result({ dropped: name }, () => `dropped table ${name}`);
  },
  put: async (c, p, out) => {
    const [table, key, value] = positionals(p, 3, "put TABLE KEY VALUE   (VALUE '-' reads stdin)") as [
      string,
      string,
      string,
    ];
    const r = await c.put(table, key, value === '-' ? readStdin() : value);
    out.result(r, () => r.seq);
  },
  get: async (c, p, out) => {
    const [table, key] = positionals(p, 2, 'get TABLE KEY') as [string, string];
    const item = await c.get(table, key);
    if (item === null)
      throw new TesseraError('KEY_NOT_FOUND', `no key ${JSON.stringify(key)} in table ${table}`);
    const v = keyToJson(item.value);
    out.result({ key, value: v.text, value_b64: v.b64, seq: item.seq }, () => item.value);
  },
  del: async (c, p, out) => {
    const [table, key] = positionals(p, 2, 'del TABLE KEY') as [string, string];
    const r = await c.delete(table, key);
    out.result(r, () => r.seq);
  },
  scan: async (c, p, out) => scanCommand(c, p, out),
  'cluster status': async (c, p, out) => {
    positionals(p, 0, 'cluster status');
    const view = await c.cluster();
    out.result(view, () => printCluster(view));
  },
  'token create': async (c, p, out) => {
    positionals(p, 0, 'token create [--read-only|--read-write|--admin] [--table T]');
    const roles = (['read-only', 'read-write', 'admin'] as const).filter((r) => p.flags.has(r));
    if (roles.length > 1) throw new UsageError('give one of --read-only, --read-write, --admin');
    const role: TokenRole = roles[0] ?? 'read-write';
    const t = await c.createToken({ role, table: flagString(p, 'table') ?? null });
    out.note(
      `created token ${t.id} (${t.role}${t.table === null ? '' : `, table ${t.table}`}); it is shown only once`,
    );
    out.result(t, () => t.token);
  },
  'token list': async (c, p, out) => {
    positionals(p, 0, 'token list');
    const tokens = await c.listTokens();
    const rows = tokens.map((t) => [t.id, t.role, t.table ?? '*', t.created_at]);
    out.result({ tokens }, () => printTable(['ID', 'ROLE', 'TABLE', 'CREATED'], rows));
  },
  'token revoke': async (c, p, out) => {
    const [id] = positionals(p, 1, 'token revoke ID');
    await c.revokeToken(id as string);
    out.result({ revoked: id }, () => `revoked token ${id}`);
  },
  'metadata backup': async (c, p, out) => {
    const [file] = positionals(p, 1, 'metadata backup FILE') as [string];
    const bytes = await c.backupMetadata();
    writeFileSync(file, bytes, { mode: 0o600 });
    out.result(
      { file, bytes: bytes.length },
      () => `wrote the metadata backup to ${file} (${bytes.length} bytes)`,
    );
  },
  'metadata restore': async (c, p, out) => {
    const [file] = positionals(p, 1, 'metadata restore FILE') as [string];
    const bytes = new Uint8Array(readFileSync(file));
    await c.restoreMetadata(bytes);
    out.result({ file, bytes: bytes.length, restored: true }, () => `restored the metadata from ${file}`);
  },
};

async function scanCommand(c: TesseraClient, p: ParsedArgs, out: Out): Promise<void> {
  const [table] = positionals(p, 1, 'scan TABLE [--prefix P] [--start S] [--end E] [--limit N]') as [string];
  const limitFlag = flagString(p, 'limit');
  const total = limitFlag === undefined ? Number.POSITIVE_INFINITY : Number(limitFlag);
  if (!Number.isSafeInteger(total) && total !== Number.POSITIVE_INFINITY)
    throw new UsageError('--limit takes a number');
  if (total < 1) throw new UsageError('--limit must be at least 1');
  const opts = { prefix: flagString(p, 'prefix'), start: flagString(p, 'start'), end: flagString(p, 'end') };
  const items: { key: string; key_b64: string; value: string; value_b64: string; seq: string }[] = [];
  for await (const it of c.scanAll(table, { ...strip(opts), limit: Math.min(1000, total) })) {
    const v = keyToJson(it.value);
    items.push({
      key: it.keyText,
      key_b64: Buffer.from(it.key).toString('base64'),
      value: v.text,
      value_b64: v.b64,
      seq: it.seq,
    });
    if (items.length >= total) break;
  }
  out.result({ items }, () => items.map((i) => `${i.key}\t${i.value}`).join('\n'));
}

function strip<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Runs a client command: `words` picks the action (e.g. ['table', 'create']). Returns the exit status. */
export async function runClientCommand(
  command: string,
  argv: readonly string[],
  env = process.env,
): Promise<number> {
  const json = argv.includes('--json');
  const out = makeOut(json);
  let client: TesseraClient | undefined;
  try {
    const p = parseArgs(argv, valued, boolean);
    const sub = ['table', 'cluster', 'token', 'metadata'].includes(command)
      ? p.positional.shift()
      : undefined;
    const name = sub === undefined ? command : `${command} ${sub}`;
    const action = actions[name];
    if (action === undefined) throw new UsageError(`unknown command: tessera ${name}`);
    const url = flagString(p, 'url') ?? env.TESSERA_URL ?? defaultUrl;
    const token = resolveToken(p, env, process.cwd());
    const timeout = Number(flagString(p, 'timeout') ?? defaultTimeoutSeconds);
    if (!(timeout > 0)) throw new UsageError('--timeout takes a number of seconds');
    client = new TesseraClient({
      url,
      deadlineMs: timeout * 1000,
      ...(token === undefined ? {} : { token }),
    });
    await action(client, p, out);
    return 0;
  } catch (e) {
    out.error(e);
    return e instanceof UsageError ? 2 : 1;
  } finally {
    client?.close();
  }
}

function makeOut(json: boolean): Out {
  return {
    result(value, readable) {
      if (json) return void process.stdout.write(`${JSON.stringify(value)}\n`);
      const r = readable();
      if (typeof r === 'string') process.stdout.write(r.length === 0 || r.endsWith('\n') ? r : `${r}\n`);
      else process.stdout.write(r);
    },
    note(line) {
      process.stderr.write(`${line}\n`);
    },
    error(e) {
      const code = e instanceof TesseraError ? e.code : e instanceof UsageError ? 'USAGE' : 'ERROR';
      const message = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
      if (json) process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
      else process.stderr.write(`tessera: ${code === 'USAGE' ? '' : `${code}: `}${message}\n`);
    },
  };
}
