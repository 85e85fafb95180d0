/**
 * Transport micro-benchmark over loopback: one-way messages/s, pipelined request round trips/s,
 * single request latency, and large-message throughput. The server runs in a child process.
 *
 *   npx tsx bench/transport.ts [--messages N] [--requests N] [--inflight N]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { nodeId } from '../src/lib/ids.js';
import { Transport } from '../src/transport/transport.js';

const kMsg = 1;
const kEcho = 2;
const kCount = 3;
const quiet = { info() {}, warn() {} };

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

async function server(): Promise<void> {
  const secret = Buffer.from(process.env.BENCH_SECRET ?? '', 'hex');
  const t = await Transport.start({
    self: { nodeId: nodeId(2), role: 'storage' },
    secret,
    listen: { host: '127.0.0.1', port: 0 },
    log: quiet,
  });
  let received = 0;
  let bytes = 0;
  t.onMessage(kMsg, (_f, p) => {
    received++;
    bytes += p.length;
  });
  t.onRequest(kEcho, (_f, p) => p);
  t.onRequest(kCount, () => {
    const b = Buffer.alloc(16);
    b.writeDoubleBE(received, 0);
    b.writeDoubleBE(bytes, 8);
    return b;
  });
  process.stdout.write(`port ${t.address?.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void t.close().then(() => process.exit(0)));
}

async function pump(t: Transport, count: number, size: number): Promise<number> {
  const payload = Buffer.alloc(size, 7);
  const to = nodeId(2);
  const started = performance.now();
  for (let sent = 0; sent < count; ) {
    const n = Math.min(1000, count - sent);
    for (let i = 0; i < n; i++) t.send(to, kMsg, payload);
    sent += n;
    if (t.queuedBytes(to) > 8 * 1024 * 1024) await t.waitDrain(to);
    else await new Promise((r) => setImmediate(r));
  }
  await t.request(to, kCount, Buffer.alloc(0), { timeoutMs: 60_000 }); // ordered after every message
  return performance.now() - started;
}

async function pipelined(t: Transport, total: number, inflight: number): Promise<number> {
  const payload = Buffer.alloc(64, 1);
  const started = performance.now();
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued++;
      await t.request(nodeId(2), kEcho, payload, { timeoutMs: 60_000 });
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return performance.now() - started;
}

async function latency(t: Transport, n: number): Promise<{ p50: number; p99: number }> {
  const us: number[] = [];
  const payload = Buffer.alloc(64, 1);
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await t.request(nodeId(2), kEcho, payload);
    us.push((performance.now() - s) * 1000);
  }
  us.sort((a, b) => a - b);
  return { p50: us[Math.floor(n * 0.5)] ?? 0, p99: us[Math.floor(n * 0.99)] ?? 0 };
}

async function main(): Promise<void> {
  const messages = arg('messages', 300_000);
  const requests = arg('requests', 100_000);
  const inflight = arg('inflight', 256);
  const secret = randomBytes(32);
  const child = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, 'server'], {
    env: { ...process.env, BENCH_SECRET: secret.toString('hex') },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve) =>
    lines.once('line', (l) => resolve(Number(l.split(' ')[1]))),
  );
  const t = await Transport.start({ self: { nodeId: nodeId(1), role: 'request' }, secret, log: quiet });
  try {
    t.setPeer(nodeId(2), { host: '127.0.0.1', port });
    await t.waitConnected(nodeId(2), 10_000);
    await pipelined(t, 10_000, 64); // warm up
    const msgMs = await pump(t, messages, 64);
    const before = t.stats();
    const rpcMs = await pipelined(t, requests, inflight);
    const after = t.stats();
    const lat = await latency(t, 5000);
    const bigCount = 2000;
    const bigMs = await pump(t, bigCount, 64 * 1024);
    const framesPerWrite =
      (after.framesSent - before.framesSent) / Math.max(1, after.writeBatches - before.writeBatches);
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    console.log(`one-way messages (64 B):          ${fmt((messages / msgMs) * 1000)} msg/s`);
    console.log(`request round trips (64 B, ${inflight} in flight): ${fmt((requests / rpcMs) * 1000)} req/s`);
    console.log(`  frames per socket write (requests): ${framesPerWrite.toFixed(1)}`);
    console.log(`single request latency:           p50 ${fmt(lat.p50)} us, p99 ${fmt(lat.p99)} us`);
    console.log(`large messages (64 KiB):          ${fmt((bigCount * 64) / 1024 / (bigMs / 1000))} MiB/s`);
  } finally {
    await t.close();
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
  }
}

if (process.argv[2] === 'server') await server();
else await main();
