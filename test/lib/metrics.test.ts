import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/lib/assert.js';
import { Registry } from '../../src/lib/metrics.js';

describe('metrics registry', () => {
  it('exposes counters and gauges in Prometheus text with escaped labels', () => {
    const r = new Registry();
    const c = r.counter('tessera_commits_total', 'Entries committed.', ['group']);
    c.inc(1, '1');
    c.labels('1').inc(2);
    c.inc(5, 'a"b\\c\nd');
    let sampled = 0;
    r.gauge('tessera_queue_length', 'Queue length.').onCollect(function (this: void) {
      sampled++;
    });
    const g = r.get('tessera_queue_length') as import('../../src/lib/metrics.js').Gauge;
    g.set(42);
    const text = r.expose();
    expect(text).toBe(
      [
        '# HELP tessera_commits_total Entries committed.',
        '# TYPE tessera_commits_total counter',
        'tessera_commits_total{group="1"} 3',
        'tessera_commits_total{group="a\\"b\\\\c\\nd"} 5',
        '# HELP tessera_queue_length Queue length.',
        '# TYPE tessera_queue_length gauge',
        'tessera_queue_length 42',
        '',
      ].join('\n'),
    );
    expect(sampled).toBe(1);
  });

  it('histograms have cumulative buckets, +Inf, sum and count', () => {
    const r = new Registry();
    const h = r.histogram('lat_seconds', 'Latency.', ['op'], [0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 2]) h.observe(v, 'get');
    expect(r.expose().split('\n').slice(2, 7)).toEqual([
      'lat_seconds_bucket{op="get",le="0.1"} 2',
      'lat_seconds_bucket{op="get",le="1"} 3',
      'lat_seconds_bucket{op="get",le="+Inf"} 4',
      'lat_seconds_sum{op="get"} 2.65',
      'lat_seconds_count{op="get"} 4',
    ]);
  });

  it('refuses programmer errors: duplicate names, bad names, wrong label count, falling counters', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'x', ['a']);
    expect(() => r.counter('x_total', 'again')).toThrow(AssertionError);
    expect(() => r.counter('bad name', 'x')).toThrow(AssertionError);
    expect(() => c.inc(1)).toThrow(AssertionError);
    expect(() => c.inc(-1, 'v')).toThrow(AssertionError);
    expect(() => r.histogram('h', 'h', [], [1, 1])).toThrow(AssertionError);
  });
});
