/** Shared set-up for the request manager tests: a memory backend, tokens of every kind, an Api. */
import { Api } from '../../src/request/api.js';
import { newToken } from '../../src/request/auth.js';
import type { TokenRole } from '../../src/request/backend.js';
import type { ApiResponse } from '../../src/request/format.js';
import { Logger } from '../../src/lib/log.js';
import { Registry } from '../../src/lib/metrics.js';
import { MemoryBackend } from './memory-backend.js';

export const quietLogger = (): Logger => new Logger('request', { level: 'error', sink: () => {} });

export interface Tokens {
  admin: string;
  rw: string;
  ro: string;
  /** read-write, limited to table "scoped" */
  scoped: string;
}

export async function makeTokens(backend: MemoryBackend): Promise<Tokens> {
  const mk = async (role: TokenRole, table: string | null) => {
    const t = newToken(role, table);
    await backend.createToken(t.record);
    return t.secret;
  };
  return {
    admin: await mk('admin', null),
    rw: await mk('read-write', null),
    ro: await mk('read-only', null),
    scoped: await mk('read-write', 'scoped'),
  };
}

export interface Call {
  token?: string | undefined;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

export interface Fixture {
  backend: MemoryBackend;
  api: Api;
  tokens: Tokens;
  registry: Registry;
  call(method: string, url: string, opts?: Call): Promise<ApiResponse>;
}

export async function fixture(): Promise<Fixture> {
  const backend = new MemoryBackend();
  const registry = new Registry();
  const api = new Api(backend, { registry, logger: quietLogger(), instanceId: 'test' });
  const tokens = await makeTokens(backend);
  const call = (method: string, url: string, opts: Call = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    const body = typeof opts.body === 'string' ? new Uint8Array(Buffer.from(opts.body)) : opts.body;
    return api.handle({ method, url, headers, ...(body === undefined ? {} : { body }) });
  };
  return { backend, api, tokens, registry, call };
}

// biome-ignore lint/suspicious/noExplicitAny: test helper over arbitrary JSON responses
export function bodyJson(res: ApiResponse): any {
  return JSON.parse(typeof res.body === 'string' ? res.body : Buffer.from(res.body).toString('utf8'));
}

export function bodyBytes(res: ApiResponse): Buffer {
  return typeof res.body === 'string' ? Buffer.from(res.body) : Buffer.from(res.body);
}
