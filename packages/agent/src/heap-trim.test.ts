import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { type HeapAddon, loadHeapAddon, startHeapTrimmer } from './heap-trim.js';

/** A fake addon whose free bytes the test sets; counts trims. */
function fakeAddon(free: number[]): HeapAddon & { trims: number } {
  const fake = {
    trims: 0,
    freeHeapBytes: () => free[Math.min(fake.trims, free.length - 1)] as number,
    trimHeap: () => {
      fake.trims++;
      return true;
    },
  };
  return fake;
}

describe('startHeapTrimmer', () => {
  it('trims only when at least minFreeBytes are free, and reports the free bytes before and after', () => {
    const addon = fakeAddon([5_000_000, 100_000]);
    const seen: [number, number][] = [];
    const t = startHeapTrimmer({
      addon,
      intervalMs: 0,
      minFreeBytes: 1_000_000,
      onTrim: (a, b) => seen.push([a, b]),
    });
    assert.equal(t.check(), true);
    assert.deepEqual(seen, [[5_000_000, 100_000]]);
    assert.equal(t.check(), false, 'only 100,000 bytes free now');
    assert.equal(addon.trims, 1);
    t.stop();
  });

  it('does nothing without the addon, or when the C library cannot tell the free bytes', () => {
    assert.equal(startHeapTrimmer({ addon: undefined, intervalMs: 0 }).check(), false);
    const unknown = fakeAddon([-1]);
    assert.equal(startHeapTrimmer({ addon: unknown, intervalMs: 0 }).check(), false);
    assert.equal(unknown.trims, 0);
  });

  it('checks on its own every intervalMs', async () => {
    const addon = fakeAddon([10_000_000, 0]);
    const t = startHeapTrimmer({ addon, intervalMs: 5 });
    try {
      const until = Date.now() + 5000;
      while (addon.trims === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      assert.equal(addon.trims, 1);
    } finally {
      t.stop();
    }
  });

  /** A fake addon with settable free bytes that counts trims and reductions. */
  function fakeV8Addon(): HeapAddon & { trims: number; reductions: number; free: number } {
    const a = {
      trims: 0,
      reductions: 0,
      free: 0,
      freeHeapBytes: () => a.free,
      trimHeap: () => {
        a.trims++;
        return true;
      },
      reduceHeap: () => {
        a.reductions++;
      },
    };
    return a;
  }

  it('reduces the V8 heap at the first check, then once it has grown by minGrowthBytes since the last reduction', () => {
    let heap = 10_000_000;
    const addon = fakeV8Addon();
    const seen: [number, number][] = [];
    const t = startHeapTrimmer({
      addon,
      intervalMs: 0,
      minGrowthBytes: 2_000_000,
      trimAfterReduceMs: 0,
      minReduceIntervalMs: 0,
      heapSize: () => heap,
      onReduce: (size, from) => seen.push([size, from]),
    });
    t.check();
    assert.deepEqual(seen, [[10_000_000, 0]], 'the start (and first sync) is a burst');
    heap = 9_000_000; // what the reduction left: read at the next check, the floor
    t.check();
    heap = 10_000_000;
    t.check();
    assert.equal(addon.reductions, 1, 'grown by 1 MB only');
    heap = 11_500_000;
    t.check();
    assert.deepEqual(seen.at(-1), [11_500_000, 9_000_000]);
    heap = 9_500_000; // the new floor
    t.check();
    heap = 11_000_000;
    t.check();
    assert.equal(addon.reductions, 2, 'grown by 1.5 MB from the new floor');
    heap = 8_000_000; // V8 shrank by itself: growth counts from there
    t.check();
    heap = 10_100_000;
    t.check();
    assert.deepEqual(seen.at(-1), [10_100_000, 8_000_000]);
    assert.equal(addon.reductions, 3);
    t.stop();
  });

  it('reads the floor and trims the C heap trimAfterReduceMs after a reduction', async () => {
    let heap = 10_000_000;
    const addon = fakeV8Addon();
    const t = startHeapTrimmer({
      addon,
      intervalMs: 0,
      minGrowthBytes: 2_000_000,
      trimAfterReduceMs: 5,
      minReduceIntervalMs: 0,
      heapSize: () => heap,
    });
    try {
      t.check();
      assert.equal(addon.reductions, 1);
      // The collection shrinks the heap and frees C memory; the follow-up reads one and trims the other.
      heap = 7_000_000;
      addon.free = 3_000_000;
      const until = Date.now() + 5000;
      while (addon.trims === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      assert.equal(addon.trims, 1);
      heap = 8_900_000;
      t.check();
      assert.equal(addon.reductions, 1, 'grown by 1.9 MB from the 7 MB floor');
      heap = 9_100_000;
      t.check();
      assert.equal(addon.reductions, 2);
    } finally {
      t.stop();
    }
  });

  it('leaves minReduceIntervalMs between two reductions', () => {
    let heap = 10_000_000;
    const addon = fakeV8Addon();
    const t = startHeapTrimmer({
      addon,
      intervalMs: 0,
      trimAfterReduceMs: 0,
      minReduceIntervalMs: 60_000,
      heapSize: () => heap,
    });
    t.check();
    heap = 9_000_000;
    t.check();
    heap = 50_000_000;
    t.check();
    assert.equal(addon.reductions, 1);
    t.stop();
  });

  it('does not reduce without the V8 addon', () => {
    let heap = 1_000_000;
    const addon = fakeAddon([0]);
    const seen: number[] = [];
    const t = startHeapTrimmer({ addon, intervalMs: 0, heapSize: () => heap, onReduce: (s) => seen.push(s) });
    heap = 100_000_000;
    t.check();
    assert.deepEqual(seen, []);
    t.stop();
  });

  it('rejects negative or fractional settings, and a zero minGrowthBytes', () => {
    assert.throws(
      () => startHeapTrimmer({ minGrowthBytes: 0 }),
      /heap trimmer: minGrowthBytes must be positive, got 0/,
    );
    assert.throws(
      () => startHeapTrimmer({ intervalMs: -1 }),
      /heap trimmer: intervalMs must be a non-negative integer/,
    );
    assert.throws(
      () => startHeapTrimmer({ minFreeBytes: 1.5 }),
      /heap trimmer: minFreeBytes must be a non-negative integer/,
    );
  });
});

describe('the memory addon', () => {
  const addon = loadHeapAddon();
  it('is built, and on glibc reports free heap bytes and trims', {
    skip: addon === undefined ? 'not built' : false,
  }, () => {
    const a = addon as HeapAddon;
    // Free a few megabytes of small chunks, then trim: the free bytes must not grow.
    let keep: Buffer[] = Array.from({ length: 20_000 }, () => Buffer.allocUnsafeSlow(200));
    keep = [];
    const before = a.freeHeapBytes();
    assert.equal(typeof before, 'number');
    if (before === -1) return; // not glibc: unsupported, nothing more to check
    assert.ok(before >= 0);
    assert.equal(typeof a.trimHeap(), 'boolean');
    assert.ok(a.freeHeapBytes() <= before + 1024 * 1024, 'trimming did not grow the free heap');
    assert.equal(keep.length, 0);
  });

  it('is built with the V8 part, whose reduction shrinks a heap full of garbage', {
    skip: addon === undefined ? 'not built' : false,
  }, async () => {
    const reduceHeap = (addon as HeapAddon).reduceHeap;
    assert.equal(typeof reduceHeap, 'function', 'native/build/Release/tessera_v8heap.node did not load');
    let garbage: { n: number; s: string }[] | undefined = Array.from({ length: 400_000 }, (_, n) => ({
      n,
      s: `entry-${n}`,
    }));
    const grown = getHeapStatistics().total_heap_size;
    assert.equal(garbage.length, 400_000);
    garbage = undefined;
    (reduceHeap as () => void)();
    // The collection is incremental: it finishes in steps on the event loop.
    const until = Date.now() + 10_000;
    while (getHeapStatistics().total_heap_size > grown - 8 * 1024 * 1024 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(
      getHeapStatistics().total_heap_size <= grown - 8 * 1024 * 1024,
      `heap ${getHeapStatistics().total_heap_size} still near ${grown}`,
    );
    assert.equal(garbage, undefined);
  });
});
