/**
 * Structured JSON logs: one line per event on stderr, with a level and a component name.
 * The level comes from TESSERA_LOG_LEVEL (debug | info | warn | error; default info).
 * Example: {"ts":"2026-11-25T16:00:00.000Z","level":"info","component":"request","msg":"listening","port":7070}
 */
import { writeSync } from 'node:fs';

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

/**
 * Lines go to process.stderr until a write to it fails (its file's disk is full: the stream then
 * emits 'error', which unhandled would end the process), then straight to fd 2, where a failed
 * write drops the line and later ones go through once the disk has room again.
 */
let stderrFailed = false;
let stderrWatched = false;
let dropped = 0;
/** The last write failed, perhaps half done. */
let broken = false;

/** Log lines dropped because stderr could not take them. */
export function logLinesDropped(): number {
  return dropped;
}

const stderrSink: LogSink = (line) => {
  if (!stderrWatched) {
    stderrWatched = true;
    process.stderr.on('error', () => {
      stderrFailed = true;
      broken = true;
      dropped++;
    });
  }
  if (!stderrFailed) {
    process.stderr.write(line);
    return;
  }
  try {
    // After a failed write the file may end in part of a line: start on a fresh one.
    writeSync(2, broken ? `\n${line}` : line);
    broken = false;
  } catch {
    dropped++;
    broken = true;
  }
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
