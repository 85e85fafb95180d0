import { describe, expect, it } from 'vitest';
import { buildRows, combine, compareTable, ratio } from '../../bench/compare.js';
import {
  lastJsonLine,
  parseLoadgenOutput,
  parseLoadgenProgress,
  parseWrkOutput,
  parseWrkRequestsPerSec,
} from '../../bench/lib/parse.js';
import { formatTable } from '../../src/bench/report.js';

// Real output of wrk 4.1.0 with bench/wrk/tessera.lua (against bench/stub.ts).
const wrkOutput = `Running 1s test @ http://127.0.0.1:17070
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   325.39us  228.67us   4.86ms   91.05%
    Req/Sec    26.12k     7.74k   51.89k    85.71%
  Latency Distribution
     50%  262.00us
     75%  322.00us
     90%  526.00us
     99%    1.30ms
  54492 requests in 1.10s, 13.77MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  49579.47
Transfer/sec:     12.53MB
{"tool":"wrk","version":1,"mode":"get","requests":54492,"errors":3,"status_errors":3,"socket_errors":0,"duration_us":1099084,"ops_per_sec":49577,"p50_us":262,"p90_us":526,"p99_us":1298,"max_us":4859,"mean_us":325}
`;

// Real output of bench/etcd/loadgen against the 3-member cluster.
const loadgenOutput =
  '{"version":1,"system":"etcd","workload":"put","dist":"uniform","clients":64,"conns":16,"ops":31893,' +
  '"reads":0,"writes":31893,"errors":0,"not_found":0,"elapsed_s":5.016249777,"ops_per_sec":6358,' +
  '"p50_ms":9.338,"p90_ms":15.69,"p99_ms":22.77,"max_ms":31.255}\n';

describe('output parsing', () => {
  it('reads the wrk JSON line and discounts non-2xx answers', () => {
    const m = parseWrkOutput(wrkOutput, 'get', 16);
    expect(m).toEqual({
      system: 'tessera',
      op: 'get',
      clients: 16,
      ops: 54489,
      errors: 3,
      elapsedS: 1.099084,
      opsPerSec: Math.round(54489 / 1.099084),
      p50Ms: 0.262,
      p99Ms: 1.298,
    });
    expect(parseWrkRequestsPerSec(wrkOutput)).toBeCloseTo(49579.47, 2);
    expect(parseWrkRequestsPerSec('Requests/sec:  12.5k')).toBe(12500);
  });

  it('refuses wrk output without the script line or with another version', () => {
    expect(() => parseWrkOutput(wrkOutput.split('{')[0]!, 'get', 16)).toThrow(/no JSON/);
    expect(() => parseWrkOutput(wrkOutput.replace('"version":1', '"version":2'), 'get', 16)).toThrow(
      /version/,
    );
  });

  it('reads the loadgen JSON line', () => {
    const m = parseLoadgenOutput(`noise\n${loadgenOutput}`, 'put');
    expect(m).toMatchObject({ system: 'etcd', op: 'put', clients: 64, ops: 31893, opsPerSec: 6358 });
    expect(m.p50Ms).toBe(9.338);
    expect(m.p99Ms).toBe(22.77);
    expect(() =>
      parseLoadgenOutput(loadgenOutput.replace('"ops_per_sec":6358', '"ops_per_sec":"x"'), 'put'),
    ).toThrow(/ops_per_sec/);
    expect(() => parseLoadgenOutput('', 'put')).toThrow();
  });

  it('reads loadgen progress lines and ignores others', () => {
    expect(parseLoadgenProgress('progress elapsed_s=3 ops=18763 ops_per_sec=6527')).toEqual({
      elapsedS: 3,
      ops: 18763,
      opsPerSec: 6527,
    });
    expect(parseLoadgenProgress('WARNING: something')).toBeUndefined();
  });

  it('lastJsonLine skips lines that are not JSON objects', () => {
    expect(lastJsonLine('{"a":1}\n{broken\n[1,2]\n')).toEqual({ a: 1 });
    expect(lastJsonLine('none')).toBeUndefined();
  });
});

describe('comparison table', () => {
  it('pairs the systems per operation and client count, with the ratio', () => {
    const etcd = parseLoadgenOutput(loadgenOutput, 'put');
    const tessera = { ...parseWrkOutput(wrkOutput, 'put', 64), opsPerSec: 12716 };
    const rows = buildRows({ clients: [16, 64], readClients: 64 }, [etcd, tessera]);
    expect(rows.map((r) => [r.op, r.clients])).toEqual([
      ['put', 16],
      ['put', 64],
      ['get', 64],
    ]);
    expect(rows[0]!.etcd).toBeUndefined();
    expect(ratio(rows[1]!)).toBeCloseTo(2, 5);
    expect(ratio(rows[2]!)).toBeUndefined();
    const text = compareTable(rows);
    expect(text).toContain('6,358');
    expect(text).toContain('12,716');
    expect(text).toContain('2.00x');
    expect(text.split('\n')).toHaveLength(5);
  });

  it('combines the rounds of one case: ops over the whole time, mean p50, worst p99', () => {
    const run = { system: 'tessera' as const, op: 'put', clients: 64 };
    const m = combine([
      { ...run, ops: 1000, errors: 0, elapsedS: 10, opsPerSec: 100, p50Ms: 2, p99Ms: 9 },
      { ...run, ops: 3000, errors: 2, elapsedS: 10, opsPerSec: 300, p50Ms: 4, p99Ms: 7 },
    ]);
    expect(m).toEqual({ ...run, ops: 4000, errors: 2, elapsedS: 20, opsPerSec: 200, p50Ms: 3, p99Ms: 9 });
    expect(() => combine([])).toThrow();
  });

  it('formatTable aligns columns', () => {
    const t = formatTable(
      ['name', 'n'],
      [
        ['a', '1'],
        ['bbb', '1,000'],
      ],
    ).split('\n');
    expect(t).toEqual(['name      n', '----  -----', 'a         1', 'bbb   1,000']);
  });
});
