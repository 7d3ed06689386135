/**
 * A small metrics registry (counters, gauges, histograms with labels) rendered in the Prometheus text
 * exposition format 0.0.4.
 *
 * @module
 */

/** Content type of the Prometheus text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label values of one series, keyed by label name. */
export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function escapeHelp(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
}

/** Formats a sample value as Prometheus expects (`+Inf`, `-Inf`, `NaN`, plain numbers). */
export function formatSampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i] as string)}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** One labelled series of a metric: its label values (in label-name order) and its state. */
interface Series<S> {
  readonly values: readonly string[];
  readonly state: S;
}

/** Series by label values: one level of maps per label name, the series at the last level. */
type SeriesIndex<S> = Map<string, SeriesIndex<S> | Series<S>>;

function isEmpty(labels: Labels): boolean {
  for (const _ in labels) return false;
  return true;
}

/** Whether `labels` has exactly the keys `names` (which are distinct). */
function hasExactly(labels: Labels, names: readonly string[]): boolean {
  let n = 0;
  for (const k in labels) {
    if (!Object.hasOwn(labels, k) || !names.includes(k)) return false;
    n++;
  }
  return n === names.length;
}

abstract class Metric<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** Every series, in the order they were first used (the order of rendering). */
  protected readonly series: Series<S>[] = [];
  #index: SeriesIndex<S> = new Map();
  #unlabelled: Series<S> | undefined;

  constructor(name: string, help: string, labelNames: readonly string[], reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`metrics: invalid metric name "${name}"`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || reserved.includes(l)) {
        throw new TypeError(`metrics: invalid label name "${l}" for "${name}"`);
      }
    }
    if (new Set(labelNames).size !== labelNames.length)
      throw new TypeError(`metrics: duplicate label names for "${name}"`);
    this.name = name;
    this.help = help;
    this.labelNames = Object.freeze([...labelNames]);
  }

  protected abstract initial(): S;

  /**
   * The state of the series of `labels`, created on first use. Looked up on every observation (per call on the
   * agent's hot paths), so it walks one map per label instead of building a key string.
   *
   * @throws {TypeError} unless `labels` has exactly the metric's label names.
   */
  protected get(labels: Labels | undefined): S {
    const names = this.labelNames;
    if (names.length === 0) {
      if (labels !== undefined && !isEmpty(labels)) throw this.#badLabels(labels);
      this.#unlabelled ??= this.#add([]);
      return this.#unlabelled.state;
    }
    if (labels === undefined || !hasExactly(labels, names)) throw this.#badLabels(labels ?? {});
    let level = this.#index;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const value = String(labels[names[i] as string]);
      let next = level.get(value) as SeriesIndex<S> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const value = String(labels[names[last] as string]);
    let s = level.get(value) as Series<S> | undefined;
    if (s === undefined) {
      s = this.#add(names.map((n) => String(labels[n])));
      level.set(value, s);
    }
    return s.state;
  }

  #add(values: readonly string[]): Series<S> {
    const s = { values, state: this.initial() };
    this.series.push(s);
    return s;
  }

  #badLabels(labels: Labels): TypeError {
    return new TypeError(
      `metrics: "${this.name}" takes labels [${this.labelNames.join(', ')}], got [${Object.keys(labels).join(', ')}]`,
    );
  }

  /** Forgets every series (values restart from zero). */
  reset(): void {
    this.series.length = 0;
    this.#index = new Map();
    this.#unlabelled = undefined;
  }

  /** @internal renders the metric family. */
  abstract render(): string[];

  protected header(type: string): string[] {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${type}`];
  }
}

/** A monotonically increasing counter. */
export class Counter extends Metric<{ v: number }> {
  protected initial(): { v: number } {
    return { v: 0 };
  }

  /**
   * Adds `by` (default 1) to the series of `labels`.
   *
   * @throws {RangeError} for a negative or non-finite increment
   */
  inc(labels?: Labels, by = 1): void {
    if (!Number.isFinite(by) || by < 0)
      throw new RangeError(`metrics: counter "${this.name}" cannot increase by ${by}`);
    this.get(labels).v += by;
  }

  /** Current value of a series (0 when never incremented). */
  value(labels?: Labels): number {
    return this.get(labels).v;
  }

  render(): string[] {
    const out = this.header('counter');
    for (const s of this.series)
      out.push(`${this.name}${renderLabels(this.labelNames, s.values)} ${formatSampleValue(s.state.v)}`);
    return out;
  }
}

/** A value that goes up and down. */
export class Gauge extends Metric<{ v: number }> {
  protected initial(): { v: number } {
    return { v: 0 };
  }

  /** Sets the series of `labels` to `value`. */
  set(labels: Labels | undefined, value: number): void {
    this.get(labels).v = value;
  }

  /** Adds `by` (default 1). */
  inc(labels?: Labels, by = 1): void {
    this.get(labels).v += by;
  }

  /** Subtracts `by` (default 1). */
  dec(labels?: Labels, by = 1): void {
    this.get(labels).v -= by;
  }

  /** Current value of a series. */
  value(labels?: Labels): number {
    return this.get(labels).v;
  }

  render(): string[] {
    const out = this.header('gauge');
    for (const s of this.series)
      out.push(`${this.name}${renderLabels(this.labelNames, s.values)} ${formatSampleValue(s.state.v)}`);
    return out;
  }
}

/** Default histogram buckets, in seconds (suited to request latencies). */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

/** A histogram with cumulative buckets (`le`), `_sum` and `_count`. */
export class Histogram extends Metric<HistogramState> {
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames, ['le']);
    if (buckets.length === 0) throw new TypeError(`metrics: histogram "${name}" needs at least one bucket`);
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i] as number;
      if (!Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] as number))) {
        throw new TypeError(`metrics: histogram "${name}" buckets must be finite and increasing`);
      }
    }
    this.buckets = Object.freeze([...buckets]);
  }

  protected initial(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  /** Records one observation in the series of `labels`. */
  observe(labels: Labels | undefined, value: number): void {
    if (Number.isNaN(value)) throw new RangeError(`metrics: histogram "${this.name}" cannot observe NaN`);
    const s = this.get(labels);
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= (this.buckets[i] as number)) (s.counts[i] as number)++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const out = this.header('histogram');
    for (const s of this.series) {
      this.buckets.forEach((b, i) => {
        out.push(
          `${this.name}_bucket${renderLabels(this.labelNames, s.values, ['le', formatSampleValue(b)])} ${s.state.counts[i]}`,
        );
      });
      out.push(
        `${this.name}_bucket${renderLabels(this.labelNames, s.values, ['le', '+Inf'])} ${s.state.count}`,
      );
      out.push(
        `${this.name}_sum${renderLabels(this.labelNames, s.values)} ${formatSampleValue(s.state.sum)}`,
      );
      out.push(`${this.name}_count${renderLabels(this.labelNames, s.values)} ${s.state.count}`);
    }
    return out;
  }
}

/** Options of the metric factories of {@link MetricsRegistry}. */
export interface MetricOptions {
  /** Names of the labels every observation gives. */
  readonly labelNames?: readonly string[];
}

/**
 * A set of metrics rendered together on `/metrics`. Names are unique within a registry; `collect` callbacks run
 * before each render (to refresh gauges such as cache sizes).
 *
 * @example
 * ```ts
 * const reg = new MetricsRegistry();
 * const calls = reg.counter('tessera_rpc_total', 'RPCs served', { labelNames: ['method', 'code'] });
 * calls.inc({ method: 'FetchX509SVID', code: 'OK' });
 * reg.render(); // '# HELP tessera_rpc_total RPCs served\n# TYPE tessera_rpc_total counter\n…'
 * ```
 */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric<unknown>>();
  readonly #collectors: (() => void)[] = [];

  #add<M extends Metric<unknown>>(m: M): M {
    if (this.#metrics.has(m.name)) throw new TypeError(`metrics: "${m.name}" is already registered`);
    this.#metrics.set(m.name, m);
    return m;
  }

  /** Registers a counter. @throws {TypeError} for a bad or duplicate name */
  counter(name: string, help: string, opts: MetricOptions = {}): Counter {
    return this.#add(new Counter(name, help, opts.labelNames ?? []));
  }

  /** Registers a gauge. @throws {TypeError} for a bad or duplicate name */
  gauge(name: string, help: string, opts: MetricOptions = {}): Gauge {
    return this.#add(new Gauge(name, help, opts.labelNames ?? []));
  }

  /** Registers a histogram (default buckets {@link DEFAULT_BUCKETS}). @throws {TypeError} for bad buckets */
  histogram(
    name: string,
    help: string,
    opts: MetricOptions & { readonly buckets?: readonly number[] } = {},
  ): Histogram {
    return this.#add(new Histogram(name, help, opts.labelNames ?? [], opts.buckets ?? DEFAULT_BUCKETS));
  }

  /** Adds a callback run before every render. */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** Renders every metric in the Prometheus text format 0.0.4 (ends with a newline). */
  render(): string {
    for (const c of this.#collectors) c();
    const lines: string[] = [];
    for (const m of this.#metrics.values()) lines.push(...m.render());
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }
}
