/**
 * Structured JSON logs: one line per event on stderr, with a level and a component name.
 * The level comes from TESSERA_LOG_LEVEL (debug | info | warn | error; default info).
 * Example: {"ts":"2026-11-25T16:00:00.000Z","level":"info","component":"request","msg":"listening","port":7070}
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(s: string | undefined): s is LogLevel {
  return s !== undefined && Object.hasOwn(levelRank, s);
}

/** The level named by TESSERA_LOG_LEVEL, or info when it is unset or unknown. */
export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const s = env.TESSERA_LOG_LEVEL?.toLowerCase();
  return isLogLevel(s) ? s : 'info';
}

export type LogSink = (line: string) => void;

const stderrSink: LogSink = (line) => {
  process.stderr.write(line);
};

export class Logger {
  readonly component: string;
  private readonly minRank: number;
  private readonly sink: LogSink;
  private readonly base: LogFields;

  constructor(component: string, opts: { level?: LogLevel; sink?: LogSink; fields?: LogFields } = {}) {
    this.component = component;
    this.minRank = levelRank[opts.level ?? levelFromEnv()];
    this.sink = opts.sink ?? stderrSink;
    this.base = opts.fields ?? {};
  }

  enabled(level: LogLevel): boolean {
    return levelRank[level] >= this.minRank;
  }

  /** A logger for a sub-part that adds fixed fields to every line. */
  child(fields: LogFields): Logger {
    const level = (Object.keys(levelRank) as LogLevel[]).find((l) => levelRank[l] === this.minRank);
    return new Logger(this.component, {
      level: level ?? 'info',
      sink: this.sink,
      fields: { ...this.base, ...fields },
    });
  }

  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }

  private write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (levelRank[level] < this.minRank) return;
    const record: LogFields = {
      ts: new Date().toISOString(),
      level,
      component: this.component,
      msg,
      ...this.base,
    };
    // Errors are flattened here: JSON.stringify would call their toJSON before any replacer.
    for (const [k, v] of Object.entries(fields ?? {})) record[k] = v instanceof Error ? errorFields(v) : v;
    this.sink(`${JSON.stringify(record, replacer)}\n`);
  }
}

function errorFields(e: Error): LogFields {
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, ...(code === undefined ? {} : { code }), stack: e.stack };
}

/** Nested errors, bigints and byte arrays stay printable. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return errorFields(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

export function createLogger(component: string, opts?: { level?: LogLevel; sink?: LogSink }): Logger {
  return new Logger(component, opts);
}
