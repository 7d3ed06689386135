import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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

  it('rejects negative or fractional settings', () => {
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
});
