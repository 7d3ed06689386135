import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abortableSleep, linearBackoff } from '@tessera/spiffe/workloadapi';

describe('linearBackoff', () => {
  it('grows by one second per retry and caps at thirty seconds', () => {
    const b = linearBackoff().newBackoff();
    const delays = Array.from({ length: 32 }, () => b.next());
    assert.deepEqual(delays.slice(0, 4), [1000, 2000, 3000, 4000]);
    assert.equal(delays[29], 30_000);
    assert.equal(delays[30], 30_000);
    assert.equal(delays[31], 30_000);
  });

  it('starts over after reset', () => {
    const b = linearBackoff().newBackoff();
    b.next();
    b.next();
    b.reset();
    assert.equal(b.next(), 1000);
  });

  it('gives every watch an independent sequence', () => {
    const s = linearBackoff({ step: 10, max: 25 });
    const a = s.newBackoff();
    const b = s.newBackoff();
    assert.deepEqual([a.next(), a.next(), a.next(), a.next()], [10, 20, 25, 25]);
    assert.equal(b.next(), 10);
  });

  for (const opts of [{ step: 0 }, { step: -1 }, { step: Number.NaN }, { step: 10, max: 5 }]) {
    it(`refuses options ${JSON.stringify(opts)}`, () => {
      assert.throws(() => linearBackoff(opts), RangeError);
    });
  }
});

describe('abortableSleep', () => {
  it('resolves only after the delay elapses', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let done = false;
    const p = abortableSleep(1000).then(() => {
      done = true;
    });
    t.mock.timers.tick(999);
    await Promise.resolve();
    assert.equal(done, false);
    t.mock.timers.tick(1);
    await p;
    assert.equal(done, true);
  });

  it('resolves early when the signal aborts', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const ac = new AbortController();
    let done = false;
    const p = abortableSleep(30_000, ac.signal).then(() => {
      done = true;
    });
    await Promise.resolve();
    assert.equal(done, false);
    ac.abort();
    await p;
    assert.equal(done, true);
  });

  it('resolves at once for an already aborted signal', async () => {
    await abortableSleep(60_000, AbortSignal.abort());
  });
});
