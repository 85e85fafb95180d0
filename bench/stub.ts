/**
 * A do-nothing stand-in for Tessera's request manager: the API.md subset the benchmarks use
 * (health, create table, put, get) over an in-memory map, with bearer-token checks. It proves the
 * Tessera side of the harness end to end before the cluster exists, and measures the ceiling of a
 * Node HTTP server on this machine (issue 5: ~26,000 PUT/s from wrk).
 *
 *   npx tsx bench/stub.ts [--port 7070] [--token T]
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface Stub {
  url: string;
  /** Items stored, per table. */
  tables: Map<string, Map<string, Buffer>>;
  close(): Promise<void>;
}

interface Reply {
  status: number;
  /** JSON to send, or raw bytes. */
  body: unknown;
}

const err = (status: number, code: string): Reply => ({ status, body: { error: { code, message: code } } });

let seqCounter = 0n;

function route(stub: Stub, token: string, req: http.IncomingMessage, body: Buffer): Reply {
  const url = req.url ?? '/';
  if (url === '/v1/health') return { status: 200, body: { status: 'ok' } };
  if (req.headers.authorization !== `Bearer ${token}`) return err(401, 'UNAUTHORIZED');
  const m = /^\/v1\/tables\/([^/?]+)(?:\/items\/([^/?]+))?$/.exec(url);
  if (m === null) return err(404, 'NOT_FOUND');
  const table = decodeURIComponent(m[1] ?? '');
  if (m[2] === undefined) {
    if (req.method !== 'PUT') return err(405, 'METHOD_NOT_ALLOWED');
    if (stub.tables.has(table)) return err(409, 'TABLE_EXISTS');
    stub.tables.set(table, new Map());
    return { status: 201, body: { name: table } };
  }
  const items = stub.tables.get(table);
  if (items === undefined) return err(404, 'TABLE_NOT_FOUND');
  const key = decodeURIComponent(m[2]);
  if (req.method === 'PUT') {
    items.set(key, body);
    seqCounter++;
    return { status: 200, body: { seq: seqCounter.toString(16).padStart(32, '0') } };
  }
  if (req.method !== 'GET') return err(405, 'METHOD_NOT_ALLOWED');
  const value = items.get(key);
  return value === undefined ? err(404, 'KEY_NOT_FOUND') : { status: 200, body: value };
}

function send(res: http.ServerResponse, r: Reply): void {
  const raw = Buffer.isBuffer(r.body);
  const data = raw ? (r.body as Buffer) : Buffer.from(JSON.stringify(r.body));
  const type = raw ? 'application/octet-stream' : 'application/json';
  res.writeHead(r.status, { 'content-type': type, 'content-length': data.byteLength });
  res.end(data);
}

export function startStub(token: string, port = 0): Promise<Stub> {
  const stub: Stub = { url: '', tables: new Map(), close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => send(res, route(stub, token, req, Buffer.concat(chunks))));
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      stub.close = () =>
        new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        });
      resolve(stub);
    });
  });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '7070' }, token: { type: 'string', default: 'stub-token' } },
  });
  const stub = await startStub(values.token, Number(values.port));
  console.log(`stub Tessera API ready at ${stub.url} (token ${values.token}); Ctrl-C stops it`);
  process.once('SIGINT', () => void stub.close().then(() => process.exit(0)));
}
