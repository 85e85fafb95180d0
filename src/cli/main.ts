/**
 * The `tessera` command line. A dispatch table maps the first word to a command; role commands
 * (dev, storage, metadata, request, bench) are loaded lazily from their modules, so a client
 * command starts fast. To add a role: give its entry a `load` that imports a module exporting
 * `run(args: string[]): Promise<number>` (the exit status).
 */
import { runClientCommand } from './client-commands.js';

type Run = (args: string[]) => Promise<number>;

interface CommandEntry {
  usage: string;
  run: Run;
}

/** A role command, loaded from its module when it runs. */
function role(usage: string, load: () => Promise<{ run: Run }>): CommandEntry {
  return { usage, run: async (args) => (await load()).run(args) };
}

const client =
  (name: string): Run =>
  (args) =>
    runClientCommand(name, args);

const metadataRole = role(
  'metadata [options]       run a metadata manager node',
  () => import('../metadata/main.js'),
);

export const commands: Record<string, CommandEntry> = {
  // Roles (real processes), each loaded from its module.
  dev: role('dev [options]            start a local cluster (as npm start)', () => import('./dev.js')),
  storage: role('storage [options]        run a storage node', () => import('../storage/main.js')),
  request: role('request [options]        run a request manager', () => import('../request/node.js')),
  bench: role('bench [...]              load generator with live progress', () => import('../bench/ycsb.js')),
  // `metadata backup|restore FILE` is a client command; `metadata ...` otherwise is the role.
  metadata: {
    usage: 'metadata backup FILE | metadata restore FILE',
    run: (args) =>
      args[0] === 'backup' || args[0] === 'restore'
        ? runClientCommand('metadata', args)
        : metadataRole.run(args),
  },
  // Client commands over the HTTP API (--url, --token, --json).
  table: {
    usage: 'table create NAME [--engine btree|lsm] | table list | describe NAME | drop NAME',
    run: client('table'),
  },
  put: { usage: "put TABLE KEY VALUE       (VALUE '-' reads stdin)", run: client('put') },
  get: { usage: 'get TABLE KEY', run: client('get') },
  del: { usage: 'del TABLE KEY', run: client('del') },
  scan: { usage: 'scan TABLE [--prefix P] [--start S] [--end E] [--limit N]', run: client('scan') },
  cluster: { usage: 'cluster status', run: client('cluster') },
  token: {
    usage: 'token create [--read-only|--read-write|--admin] [--table T] | token list | token revoke ID',
    run: client('token'),
  },
};

function usage(): string {
  const lines = Object.values(commands).map((c) => `  tessera ${c.usage}`);
  return [
    'usage:',
    ...lines,
    '',
    'client options: --url URL (default http://127.0.0.1:7070, or TESSERA_URL), --token T (default',
    '  TESSERA_TOKEN, else ./tessera-data/admin.token), --timeout SECONDS (default 5), --json',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (entry === undefined) {
    process.stderr.write(`tessera: unknown command ${name} (try tessera help)\n`);
    return 2;
  }
  return entry.run(rest);
}

/**
 * A child of `tessera dev` runs in its own process group (a terminal's Ctrl-C goes to the
 * supervisor only, which stops the children in order); if the supervisor vanishes (kill -9), the
 * child stops itself with SIGTERM instead of living on as an orphan.
 */
function watchDevParent(): void {
  const parent = Number(process.env.TESSERA_DEV_PARENT_PID ?? 0);
  if (!Number.isInteger(parent) || parent <= 0) return;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1_000).unref();
}

watchDevParent();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`tessera: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
