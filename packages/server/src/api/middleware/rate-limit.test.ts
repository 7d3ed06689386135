import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from './rate-limit.js';

describe('RateLimiter', () => {
  it('allows a burst, refuses beyond it, and refills with time', () => {
    let now = 0;
    const l = new RateLimiter({ perSecond: 2, nowMs: () => now });
    assert.equal(l.take('a'), true);
    assert.equal(l.take('a'), true);
    assert.equal(l.take('a'), false);
    assert.equal(l.take('b'), true);
    now = 500;
    assert.equal(l.take('a'), true);
    assert.equal(l.take('a'), false);
  });

  it('lets a batch larger than the bucket through only when the bucket is full', () => {
    let now = 0;
    const l = new RateLimiter({ perSecond: 10, nowMs: () => now });
    assert.equal(l.take('a', 50), true);
    assert.equal(l.take('a', 1), false);
    now = 10_000;
    assert.equal(l.take('a', 50), true);
  });

  it('is off at 0 per second', () => {
    const l = new RateLimiter({ perSecond: 0 });
    for (let i = 0; i < 1000; i++) assert.equal(l.take('a'), true);
  });
});
