import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoalescingRunner } from './coalescing-runner.js';

/** A round that waits until released (or failed); counts its starts. */
function gatedRounds() {
  let release: () => void = () => {};
  let fail: (err: Error) => void = () => {};
  const state = {
    starts: 0,
    release: () => release(),
    fail: (err: Error) => fail(err),
    round: () =>
      new Promise<void>((resolve, reject) => {
        state.starts++;
        release = resolve;
        fail = reject;
      }),
  };
  return state;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('CoalescingRunner', () => {
  it('runs one round at a time and turns every call made meanwhile into one more round', async () => {
    const g = gatedRounds();
    let idle = 0;
    const r = new CoalescingRunner({
      round: g.round,
      stopped: () => false,
      onError: () => {},
      onIdle: () => idle++,
    });
    const first = r.run();
    const second = r.run();
    const third = r.run();
    assert.equal(second, first, 'callers share the running promise');
    assert.equal(third, first);
    assert.equal(g.starts, 1);
    g.release();
    await tick();
    assert.equal(g.starts, 2, 'exactly one more round for the two calls');
    g.release();
    await first;
    assert.equal(g.starts, 2);
    assert.equal(idle, 1);
    assert.equal(r.running, undefined);
  });

  it('settled() waits for the current run and never rejects', async () => {
    const g = gatedRounds();
    const r = new CoalescingRunner({
      round: g.round,
      stopped: () => false,
      onError: () => {
        throw new Error('the error handler failed');
      },
    });
    await r.settled(); // nothing running
    const run = r.run();
    let settled = false;
    const waiting = r.settled().then(() => {
      settled = true;
    });
    await tick();
    assert.equal(settled, false, 'the round is still running');
    g.fail(new Error('round failed'));
    await waiting;
    assert.equal(settled, true);
    await assert.rejects(run, /the error handler failed/);
  });

  it('reports a failing round and goes on; starts nothing once stopped', async () => {
    const errors: unknown[] = [];
    let stopped = false;
    let rounds = 0;
    const r = new CoalescingRunner({
      round: async () => {
        rounds++;
        throw new Error(`round ${rounds}`);
      },
      stopped: () => stopped,
      onError: (err) => errors.push(err),
    });
    await r.run();
    await r.run();
    assert.equal(rounds, 2);
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['round 1', 'round 2'],
    );
    stopped = true;
    await r.run();
    assert.equal(rounds, 2);
  });

  it('does not repeat a round asked for meanwhile once stopped', async () => {
    const g = gatedRounds();
    let stopped = false;
    const r = new CoalescingRunner({ round: g.round, stopped: () => stopped, onError: () => {} });
    const run = r.run();
    void r.run();
    stopped = true;
    g.release();
    await run;
    assert.equal(g.starts, 1);
  });
});
