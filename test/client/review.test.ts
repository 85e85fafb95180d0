/**
 * Correctness review (wave 3): a write whose request may have reached the server must never end
 * as a plain failure (UNAVAILABLE) at the client's deadline: its outcome is unknown.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { rejection } from '../support/rejection.js';

let server: http.Server | undefined;
let client: TesseraClient | undefined;
afterEach(async () => {
  client?.close();
  client = undefined;
  await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
  server = undefined;
});

/** A server that reads the first request and drops the connection, then answers 503 to the rest. */
async function flakyServer(): Promise<{ url: string; ids: string[] }> {
  const ids: string[] = [];
  server = http.createServer((req, res) => {
    ids.push(String(req.headers['tessera-request-id']));
    req.resume();
    req.on('end', () => {
      if (ids.length === 1) {
        req.socket.destroy(); // the request arrived; the answer is lost
        return;
      }
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' });
      res.end(JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'no leader now' } }));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server!.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, ids };
}

describe('client review: deadline of a write that may have been delivered', () => {
  it('answers OUTCOME_UNKNOWN (not UNAVAILABLE) after a lost answer then 503s, with one request id', async () => {
    const { url, ids } = await flakyServer();
    client = new TesseraClient({ url, deadlineMs: 400 });
    const e = await rejection(client.put('t', 'k', 'v'));
    expect(ids.length).toBeGreaterThan(1);
    expect(new Set(ids).size).toBe(1);
    expect(e.code).toBe('OUTCOME_UNKNOWN');
  });

  it('a read in the same situation keeps its last error', async () => {
    const { url } = await flakyServer();
    client = new TesseraClient({ url, deadlineMs: 400 });
    const e = await rejection(client.get('t', 'k'));
    expect(e.code).toBe('UNAVAILABLE');
  });
});
