/**
 * Gives the C heap's free memory back to the kernel after bursts of work (native/memory.c, glibc only).
 *
 * glibc keeps memory the process freed inside its arenas; after an entry sync of tens of thousands of entries
 * or a thousand SVIDs issued at once, megabytes stay resident as free chunks long after V8 has collected the
 * objects that held them. A periodic check trims the heap (`malloc_trim(0)`) when enough of it is free.
 *
 * @module
 */
import { createRequire } from 'node:module';

/** The functions of the memory addon (see native/memory.c). */
export interface HeapAddon {
  /** Bytes free inside malloc's arenas, or -1 when the C library cannot tell. */
  freeHeapBytes(): number;
  /** `malloc_trim(0)`: whether memory was released (false when unsupported). */
  trimHeap(): boolean;
}

/**
 * Loads the memory addon, or undefined when it was not built or cannot load. Trimming is an optimisation: the
 * agent runs the same without it.
 */
export function loadHeapAddon(): HeapAddon | undefined {
  // dist/heap-trim.js -> ../native/build/Release
  const path = new URL('../native/build/Release/tessera_memory.node', import.meta.url).pathname;
  try {
    return createRequire(import.meta.url)(path) as HeapAddon;
  } catch {
    return undefined;
  }
}

/** Options of {@link startHeapTrimmer}. */
export interface HeapTrimmerOptions {
  /** The addon; default {@link loadHeapAddon}. With none, the trimmer does nothing. */
  readonly addon?: HeapAddon | undefined;
  /** Check period in ms (default 15,000; 0 disables the timer, tests call `check`). */
  readonly intervalMs?: number;
  /** Trim only when at least this many bytes are free in the heap (default 2 MiB). */
  readonly minFreeBytes?: number;
  /** Called after each trim with the free bytes before and after. */
  readonly onTrim?: (freeBefore: number, freeAfter: number) => void;
}

/** A running heap trimmer. */
export interface HeapTrimmer {
  /** Trims now if enough of the heap is free; returns whether it trimmed. */
  check(): boolean;
  /** Stops the periodic check. Idempotent. */
  stop(): void;
}

/**
 * Starts checking the C heap every `intervalMs` and trimming it when at least `minFreeBytes` are free. The
 * timer never keeps the process alive.
 *
 * @throws {RangeError} when `intervalMs` or `minFreeBytes` is negative or not an integer.
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
  for (const [name, v] of [
    ['intervalMs', intervalMs],
    ['minFreeBytes', minFree],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`heap trimmer: ${name} must be a non-negative integer, got ${String(v)}`);
    }
  }
  const addon = 'addon' in options ? options.addon : loadHeapAddon();
  const check = (): boolean => {
    if (addon === undefined) return false;
    const before = addon.freeHeapBytes();
    if (before < minFree) return false;
    addon.trimHeap();
    options.onTrim?.(before, addon.freeHeapBytes());
    return true;
  };
  const timer = intervalMs > 0 && addon !== undefined ? setInterval(check, intervalMs) : undefined;
  timer?.unref();
  return {
    check,
    stop() {
      if (timer !== undefined) clearInterval(timer);
    },
  };
}
