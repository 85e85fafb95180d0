/**
 * The Tessera side of the benchmarks: finding the URL and token, checking the cluster answers, and
 * the YCSB generator's client (`KvClient`, the minimal interface it needs, implemented over
 * Tessera's own TypeScript client in src/client).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TesseraClient } from '../client/client.js';
import { isTesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

export interface KvClient {
  put(table: string, key: string, value: Uint8Array): Promise<void>;
  /** The value, or undefined when the key is absent. */
  get(table: string, key: string): Promise<Uint8Array | undefined>;
  close(): void;
}

/** TESSERA_URL, else the dev cluster's request manager (as the CLI). */
export const urlDefault = process.env.TESSERA_URL ?? 'http://127.0.0.1:7070';

/** parseArgs options every benchmark command takes: the server, a token, a dev data dir (token). */
export const serverArgOptions = {
  url: { type: 'string', default: urlDefault },
  token: { type: 'string' },
  dir: { type: 'string' },
} as const;

/** --token, else TESSERA_TOKEN, else DIR/admin.token (DIR: --dir, TESSERA_DIR, ./tessera-data). */
export function resolveToken(token: string | undefined, dir: string | undefined): string | undefined {
  if (token !== undefined && token !== '') return token;
  const env = process.env.TESSERA_TOKEN;
  if (env !== undefined && env !== '') return env;
  const d = dir ?? process.env.TESSERA_DIR ?? 'tessera-data';
  try {
    return readFileSync(path.join(d, 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Why Tessera can't be benchmarked at url, or undefined when /v1/health answers 200. */
export async function unreachableReason(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(new URL('/v1/health', url), { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok ? undefined : `GET /v1/health answered ${res.status}`;
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    return `no answer from ${url} (${cause})`;
  }
}

/** Creates the table if it is missing (TABLE_EXISTS is fine). */
export async function ensureTable(url: string, token: string, table: string): Promise<void> {
  const client = new TesseraClient({ url, token, deadlineMs: limits.benchRequestTimeoutMs });
  try {
    await client.createTable(table, { engine: 'btree' });
  } catch (e) {
    if (!isTesseraError(e, 'TABLE_EXISTS'))
      throw new Error(`creating table ${table}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    client.close();
  }
}

/** The generator's client: Tessera's own TypeScript client (src/client), keep-alive, retries on 503. */
export class TesseraKvClient implements KvClient {
  private readonly client: TesseraClient;

  constructor(url: string, token: string, sockets: number) {
    this.client = new TesseraClient({
      url,
      token,
      socketsMax: sockets,
      deadlineMs: limits.benchRequestTimeoutMs,
    });
  }

  async put(table: string, key: string, value: Uint8Array): Promise<void> {
    await this.client.put(table, key, value);
  }

  async get(table: string, key: string): Promise<Uint8Array | undefined> {
    return (await this.client.get(table, key))?.value;
  }

  close(): void {
    this.client.close();
  }
}

/** The one place that picks the generator's client implementation. */
export function openClient(url: string, token: string, sockets: number): KvClient {
  return new TesseraKvClient(url, token, sockets);
}
