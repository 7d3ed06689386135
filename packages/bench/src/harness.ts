/**
 * Benchmark harness. Every figure is measured beside a floor from the same run (a raw node:crypto
 * operation, a raw HTTP/2 call…), because absolute times on shared machines drift; the ratio says how
 * close the figure comes to its floor (1.0 = as fast as the floor, higher is better for every figure).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One reported figure. */
export interface Figure {
  /** Stable name, e.g. `x509svid.verify`. */
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The floor's value in the same unit. */
  readonly floor: number;
  /** What the floor measures. */
  readonly floorName: string;
  /** value/floor for rates, floor/value for times: always "fraction of the floor's speed". */
  readonly ratio: number;
  /** An optional target ratio or value, printed beside the figure. */
  readonly target?: string;
}

/** A benchmark suite: produces one or more figures. */
export interface Suite {
  readonly name: string;
  run(): Promise<Figure[]>;
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per second. */
export async function opsPerSecond(fn: () => unknown, ms = 1000, batch = 1): Promise<number> {
  const warmEnd = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warmEnd) await fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    await fn();
    n += batch;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/** Synchronous variant of {@link opsPerSecond}: no await between iterations. */
export function opsPerSecondSync(fn: () => unknown, ms = 1000): number {
  const warmEnd = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warmEnd) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/**
 * Runs a V8 minor GC of this (the benchmark's) process, to be called between latency samples, outside the timed
 * window: a sample then does not pay for the garbage of the samples before it. Used where a sample stands for a
 * new process (a new caller's first call), whose heap holds no such garbage.
 */
export function collectHarnessGarbage(): void {
  if (harnessGc === undefined) {
    setFlagsFromString('--expose-gc');
    harnessGc = runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;
  }
  harnessGc({ type: 'minor' });
}
let harnessGc: ((options: { type: 'minor' | 'major' }) => void) | undefined;

/** Collects latency samples (milliseconds) of `count` runs of `fn`, after `warmup` unmeasured runs. */
export async function latencies(fn: () => Promise<unknown>, count: number, warmup = 10): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** The p-th percentile (0–100) of `samples`. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

/** A rate figure: higher is better, ratio = value / floor. */
export function rate(name: string, value: number, floor: number, floorName: string, target?: string): Figure {
  return {
    name,
    value,
    unit: 'ops/s',
    floor,
    floorName,
    ratio: value / floor,
    ...(target ? { target } : {}),
  };
}

/** A time figure in milliseconds: lower is better, ratio = floor / value. */
export function time(name: string, value: number, floor: number, floorName: string, target?: string): Figure {
  return { name, value, unit: 'ms', floor, floorName, ratio: floor / value, ...(target ? { target } : {}) };
}
