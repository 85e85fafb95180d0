/**
 * A tiny metrics registry with the Prometheus text exposition format (version 0.0.4).
 * Counters, gauges (set, or read by a callback at scrape time) and histograms with fixed buckets,
 * each with a fixed list of label names. Any module registers its own metrics on `defaultRegistry`
 * (or a registry of its own) and the request manager serves it at GET /metrics.
 *
 * Hot path: resolve a child once with `.labels(...)` and keep it; `inc`/`observe` are then a few
 * additions with no allocation.
 */
import { assert } from './assert.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';

const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelRe = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Label combinations per metric: labels come from code, never from user input, so this is a bug net. */
export const metricSeriesMax = 10_000;

/** Latency buckets in seconds, 100 µs to 10 s. */
export const latencyBucketsSeconds: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return '+Inf';
  if (n === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(n);
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? '')}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

abstract class Metric<Child> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricType;
  protected readonly children = new Map<string, { values: string[]; child: Child }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    assert(nameRe.test(name), `bad metric name ${name}`);
    for (const l of labelNames) assert(labelRe.test(l) && l !== 'le', `bad label name ${l}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected abstract newChild(): Child;

  /** The series for these label values (in labelNames order), created on first use. */
  labels(...values: string[]): Child {
    assert(values.length === this.labelNames.length, `${this.name}: wants ${this.labelNames.length} labels`);
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (entry === undefined) {
      assert(this.children.size < metricSeriesMax, `${this.name}: too many label combinations`);
      entry = { values, child: this.newChild() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  abstract expose(): string[];

  protected header(): string[] {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
  }
}

export class CounterChild {
  value = 0;
  inc(n = 1): void {
    assert(n >= 0, 'a counter only goes up');
    this.value += n;
  }
}

export class Counter extends Metric<CounterChild> {
  readonly type = 'counter';
  protected newChild(): CounterChild {
    return new CounterChild();
  }
  /** Increment the series with no labels (or these label values). */
  inc(n = 1, ...values: string[]): void {
    this.labels(...values).inc(n);
  }
  expose(): string[] {
    const lines = this.header();
    for (const { values, child } of this.children.values())
      lines.push(`${this.name}${labelText(this.labelNames, values)} ${formatNumber(child.value)}`);
    return lines;
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

export class Gauge extends Metric<GaugeChild> {
  readonly type = 'gauge';
  private collector: (() => void) | undefined;
  protected newChild(): GaugeChild {
    return new GaugeChild();
  }
  set(v: number, ...values: string[]): void {
    this.labels(...values).set(v);
  }
  /** Called at each scrape before the values are read (e.g. to sample a queue length). */
  onCollect(fn: () => void): this {
    this.collector = fn;
    return this;
  }
  expose(): string[] {
    this.collector?.();
    const lines = this.header();
    for (const { values, child } of this.children.values())
      lines.push(`${this.name}${labelText(this.labelNames, values)} ${formatNumber(child.value)}`);
    return lines;
  }
}

export class HistogramChild {
  /** counts[i] = observations in (bounds[i-1], bounds[i]]; the last slot is (last bound, +Inf). */
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > (this.bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += v;
    this.count += 1;
  }
}

export class Histogram extends Metric<HistogramChild> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    assert(buckets.length > 0, 'a histogram needs buckets');
    for (let i = 1; i < buckets.length; i++) assert(buckets[i - 1]! < buckets[i]!, 'buckets must increase');
    this.buckets = [...buckets];
  }
  protected newChild(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  observe(v: number, ...values: string[]): void {
    this.labels(...values).observe(v);
  }
  /** Every series with its label values, for JSON views (e.g. the dashboard stats). */
  series(): { values: readonly string[]; child: HistogramChild }[] {
    return [...this.children.values()];
  }
  expose(): string[] {
    const lines = this.header();
    for (const { values, child } of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += child.counts[i] as number;
        const le = i < this.buckets.length ? formatNumber(this.buckets[i] as number) : '+Inf';
        lines.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${le}"`)} ${cumulative}`);
      }
      lines.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatNumber(child.sum)}`);
      lines.push(`${this.name}_count${labelText(this.labelNames, values)} ${child.count}`);
    }
    return lines;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = latencyBucketsSeconds,
  ): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  get(name: string): Metric<unknown> | undefined {
    return this.metrics.get(name);
  }

  /** The Prometheus text exposition (Content-Type: text/plain; version=0.0.4). */
  expose(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) lines.push(...m.expose());
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  private add<M extends Metric<unknown>>(m: M): M {
    assert(!this.metrics.has(m.name), `metric ${m.name} registered twice`);
    this.metrics.set(m.name, m as Metric<unknown>);
    return m;
  }
}

export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** The process-wide registry that every module registers on. */
export const defaultRegistry = new Registry();
