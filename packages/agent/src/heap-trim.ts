/**
 * Gives memory back to the kernel after bursts of work: the JavaScript heap (native/v8heap.cc) and the C heap
 * (native/memory.c, glibc only).
 *
 * - V8 keeps the heap it grew to during a burst (an entry sync of thousands of entries, a periodic resync, a
 *   thousand SVIDs issued at once): a larger young generation and committed old-generation pages, megabytes of
 *   RSS. Its own memory reducer acts only after some full collections, which a mostly idle agent may not reach
 *   for minutes. When the heap has grown by `minGrowthBytes` since it was last reduced, a periodic check sends
 *   V8 a moderate memory-pressure notification: an incremental collection in "reduce memory" mode.
 * - glibc keeps memory the process freed inside its arenas, as free chunks. When at least `minFreeBytes` are
 *   free, the check trims the heap (`malloc_trim(0)`). glibc still counts trimmed pages as free, so a loaded agent
 *   trims at every check: that also returns pages used and freed again since the last one. It trims once more
 *   shortly after a V8 reduction, which frees C memory too.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { getHeapStatistics } from 'node:v8';

/** The functions of the memory addons (see native/memory.c and native/v8heap.cc). */
export interface HeapAddon {
  /** Bytes free inside malloc's arenas, or -1 when the C library cannot tell. */
  freeHeapBytes(): number;
  /** `malloc_trim(0)`: whether memory was released (false when unsupported). */
  trimHeap(): boolean;
  /**
   * Starts an incremental V8 collection that shrinks the heap (a moderate memory-pressure notification).
   * Absent when the V8 addon did not load (built for another Node version).
   */
  reduceHeap?: () => void;
}

/**
 * Loads the memory addons, or undefined when neither was built or can load. Both are an optimisation: the agent
 * runs the same without them.
 */
export function loadHeapAddon(): HeapAddon | undefined {
  // dist/heap-trim.js -> ../native/build/Release
  const load = (name: string): unknown => {
    try {
      return createRequire(import.meta.url)(
        new URL(`../native/build/Release/${name}.node`, import.meta.url).pathname,
      );
    } catch {
      return undefined;
    }
  };
  const memory = load('tessera_memory') as HeapAddon | undefined;
  const reduceHeap = (load('tessera_v8heap') as Pick<HeapAddon, 'reduceHeap'> | undefined)?.reduceHeap;
  if (reduceHeap === undefined) return memory;
  // Either part works without the other: without the C heap one, the free bytes are unknown and nothing is trimmed.
  return { ...(memory ?? { freeHeapBytes: () => -1, trimHeap: () => false }), reduceHeap };
}

/** Options of {@link startHeapTrimmer}. */
export interface HeapTrimmerOptions {
  /** The addon; default {@link loadHeapAddon}. With none, the trimmer does nothing. */
  readonly addon?: HeapAddon | undefined;
  /** Check period in ms (default 15,000; 0 disables the timer, tests call `check`). */
  readonly intervalMs?: number;
  /** Trim when at least this many bytes are free in the C heap (default 2 MiB). */
  readonly minFreeBytes?: number;
  /** Reduce the V8 heap when it has grown by this many bytes since it was last reduced (default 2 MiB; > 0). */
  readonly minGrowthBytes?: number;
  /** Least time between two V8 reductions, in ms (default 30,000): a busy agent is not collected over and over. */
  readonly minReduceIntervalMs?: number;
  /**
   * Delay from a V8 reduction to the C heap trim that follows it, and to reading the heap size it left (the floor
   * growth is counted from), in ms (default 2,000; 0: both at the next check).
   */
  readonly trimAfterReduceMs?: number;
  /** Size of the V8 heap in bytes; default `v8.getHeapStatistics().total_heap_size` (tests inject one). */
  readonly heapSize?: () => number;
  /** Called after each trim with the free bytes before and after. */
  readonly onTrim?: (freeBefore: number, freeAfter: number) => void;
  /** Called when a V8 reduction starts, with the heap size and the size it has grown from. */
  readonly onReduce?: (heapBytes: number, fromBytes: number) => void;
}

/** A running heap trimmer. */
export interface HeapTrimmer {
  /** Reduces the V8 heap and trims the C heap now, each if it is worth it; returns whether it trimmed. */
  check(): boolean;
  /** Stops the periodic check. Idempotent. */
  stop(): void;
}

/**
 * Starts checking the V8 and C heaps every `intervalMs`, reducing and trimming them after bursts. The timers
 * never keep the process alive.
 *
 * @throws {RangeError} when a size or period is negative or not an integer.
 * @example
 * ```ts
 * const trimmer = startHeapTrimmer({ onTrim: (a, b) => log.debug({ free_before: a, free_after: b }, 'Heap trimmed') });
 * // on shutdown
 * trimmer.stop();
 * ```
 */
export function startHeapTrimmer(options: HeapTrimmerOptions = {}): HeapTrimmer {
  const intervalMs = options.intervalMs ?? 15_000;
  const minFree = options.minFreeBytes ?? 2 * 1024 * 1024;
  const minGrowth = options.minGrowthBytes ?? 2 * 1024 * 1024;
  const trimAfterReduceMs = options.trimAfterReduceMs ?? 2000;
  const minReduceIntervalMs = options.minReduceIntervalMs ?? 30_000;
  for (const [name, v] of [
    ['intervalMs', intervalMs],
    ['minFreeBytes', minFree],
    ['minGrowthBytes', minGrowth],
    ['trimAfterReduceMs', trimAfterReduceMs],
    ['minReduceIntervalMs', minReduceIntervalMs],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`heap trimmer: ${name} must be a non-negative integer, got ${String(v)}`);
    }
  }
  if (minGrowth === 0) throw new RangeError('heap trimmer: minGrowthBytes must be positive, got 0');
  const addon = 'addon' in options ? options.addon : loadHeapAddon();
  const heapSize = options.heapSize ?? (() => getHeapStatistics().total_heap_size);

  // The V8 heap size after the last reduction (or the lowest seen since): growth is counted from it. It starts at
  // zero, so the first check reduces the heap: the agent's start and first entry sync are its first burst.
  let heapFloor = 0;
  // A reduction was started and the heap size it left is not read yet (then growth is not measured).
  let reducing = false;
  let lastReduceAt = Number.NEGATIVE_INFINITY;
  let followUp: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const trim = (): boolean => {
    if (addon === undefined) return false;
    const before = addon.freeHeapBytes();
    if (before < minFree) return false;
    addon.trimHeap();
    options.onTrim?.(before, addon.freeHeapBytes());
    return true;
  };

  /** After a reduction: the heap size it left becomes the floor, and the C memory it freed is trimmed. */
  const settle = (): void => {
    reducing = false;
    heapFloor = heapSize();
    trim();
  };

  const reduce = (): void => {
    if (addon?.reduceHeap === undefined) return;
    if (reducing) {
      if (followUp === undefined) settle(); // no timer (trimAfterReduceMs 0, or stopped): at this check
      return;
    }
    const size = heapSize();
    heapFloor = Math.min(heapFloor, size);
    if (size - heapFloor < minGrowth || performance.now() - lastReduceAt < minReduceIntervalMs) return;
    options.onReduce?.(size, heapFloor);
    addon.reduceHeap();
    reducing = true;
    lastReduceAt = performance.now();
    if (trimAfterReduceMs > 0 && !stopped) {
      followUp = setTimeout(() => {
        followUp = undefined;
        settle();
      }, trimAfterReduceMs);
      followUp.unref();
    }
  };

  const check = (): boolean => {
    reduce();
    return trim();
  };
  const timer = intervalMs > 0 && addon !== undefined ? setInterval(check, intervalMs) : undefined;
  timer?.unref();
  return {
    check,
    stop() {
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      if (followUp !== undefined) clearTimeout(followUp);
    },
  };
}
