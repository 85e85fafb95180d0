import { afterEach, describe, expect, it } from 'vitest';
import { startStub, type Stub } from '../../bench/stub.js';
import { TesseraKvClient, type KvClient, resolveToken, unreachableReason } from '../../src/bench/tessera.js';
import {
  parseYcsbArgs,
  runPhase,
  runYcsb,
  ycsbDefaults,
  type YcsbOptions,
  ycsbTable,
} from '../../src/bench/ycsb.js';
import { ProgressLine } from '../../src/bench/report.js';

/** An in-memory client that records what it was asked. */
class MemoryClient implements KvClient {
  readonly data = new Map<string, Uint8Array>();
  gets = 0;
  puts = 0;
  failWith: string | undefined;

  async put(table: string, key: string, value: Uint8Array): Promise<void> {
    await Promise.resolve();
    if (this.failWith !== undefined) throw new Error(this.failWith);
    this.puts++;
    this.data.set(`${table}/${key}`, value);
  }

  async get(table: string, key: string): Promise<Uint8Array | undefined> {
    await Promise.resolve();
    if (this.failWith !== undefined) throw new Error(this.failWith);
    this.gets++;
    return this.data.get(`${table}/${key}`);
  }

  close(): void {}
}

const quiet = new ProgressLine(process.stderr, true);
const opts = (o: Partial<YcsbOptions>): YcsbOptions => ({ ...ycsbDefaults, keys: 500, durationS: 0.2, ...o });

describe('ycsb generator', () => {
  it('the load phase writes every key exactly once, 100-byte values', async () => {
    const c = new MemoryClient();
    const r = await runPhase(c, opts({}), { workload: 'load', dist: 'uniform', clients: 7 });
    expect(r.ops).toBe(500);
    expect(c.puts).toBe(500);
    expect(c.data.size).toBe(500);
    expect(c.data.get('ycsb/user0000000499')?.byteLength).toBe(100);
    expect(r.errors).toBe(0);
  });

  it('workloads A, B, C mix reads and updates as YCSB does', async () => {
    const c = new MemoryClient();
    const o = opts({ clients: [4], dists: ['zipfian'] });
    const results = await runYcsb(c, o, quiet);
    expect(results.map((r) => r.workload)).toEqual(['load', 'a', 'b', 'c']);
    const [, a, b, cr] = results;
    expect(a!.reads / a!.ops).toBeGreaterThan(0.4);
    expect(a!.reads / a!.ops).toBeLessThan(0.6);
    expect(b!.reads / b!.ops).toBeGreaterThan(0.9);
    expect(cr!.writes).toBe(0);
    for (const r of results) {
      expect(r.ops).toBeGreaterThan(0);
      expect(r.notFound).toBe(0);
      expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
    }
    expect(ycsbTable(results)).toContain('zipfian');
  });

  it('stops and reports when every request fails', async () => {
    const c = new MemoryClient();
    c.failWith = 'connection refused';
    await expect(
      runYcsb(c, opts({ clients: [2], workloads: ['a'], dists: ['uniform'] }), quiet),
    ).rejects.toThrow(/every request failed: connection refused/);
  });

  it('parses its options and refuses bad ones', () => {
    const o = parseYcsbArgs(['--clients', '1,16', '--workloads', 'A,c', '--dist', 'zipfian', '--no-load']);
    expect(o.clients).toEqual([1, 16]);
    expect(o.workloads).toEqual(['a', 'c']);
    expect(o.dists).toEqual(['zipfian']);
    expect(o.load).toBe(false);
    expect(() => parseYcsbArgs(['--workloads', 'd'])).toThrow(/workload/);
    expect(() => parseYcsbArgs(['--clients', '0'])).toThrow(/clients/);
  });
});

describe('HTTP client against the API stub', () => {
  let stub: Stub | undefined;
  afterEach(async () => {
    await stub?.close();
    stub = undefined;
  });

  it('puts and gets over keep-alive with the bearer token; absent keys are undefined', async () => {
    stub = await startStub('secret');
    expect(await unreachableReason(stub.url)).toBeUndefined();
    stub.tables.set('t', new Map());
    const c = new TesseraKvClient(stub.url, 'secret', 4);
    try {
      await c.put('t', 'a/b c', new Uint8Array([1, 2, 3]));
      expect(stub.tables.get('t')?.get('a/b c')).toEqual(Buffer.from([1, 2, 3]));
      expect(await c.get('t', 'a/b c')).toEqual(new Uint8Array([1, 2, 3]));
      expect(await c.get('t', 'missing')).toBeUndefined();
      const r = await runYcsb(
        c,
        opts({ table: 't', clients: [8], workloads: ['a'], dists: ['uniform'] }),
        quiet,
      );
      expect(r[1]!.ops).toBeGreaterThan(0);
      expect(r[1]!.errors).toBe(0);
    } finally {
      c.close();
    }
    const bad = new TesseraKvClient(stub.url, 'wrong', 1);
    await expect(bad.get('t', 'a')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    bad.close();
  });

  it('says why a URL is unreachable, and resolves the token', async () => {
    stub = await startStub('x');
    const url = stub.url;
    await stub.close();
    stub = undefined;
    expect(await unreachableReason(url)).toMatch(/no answer/);
    expect(resolveToken('given', undefined)).toBe('given');
  });
});
