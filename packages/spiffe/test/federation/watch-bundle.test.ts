import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type SpiffeBundle, X509Bundle } from '@tessera/spiffe/bundle';
import { DEFAULT_REFRESH_SECONDS, fetchBundle, watchBundle } from '@tessera/spiffe/federation';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
import {
  bundleOf,
  ENDPOINT_ID,
  MutableSvid,
  type Running,
  redirectTo,
  startSpiffeEndpoint,
  startWebServer,
  stepper,
  svidOf,
  TD,
  webPki,
} from './fixtures.js';

const endpointId = SpiffeId.require(ENDPOINT_ID);

interface Seen {
  updates: SpiffeBundle[];
  errors: Error[];
}

function recorder(nextRefresh?: (hint: number) => number): Seen & {
  watcher: Parameters<typeof watchBundle>[2];
} {
  const seen: Seen = { updates: [], errors: [] };
  return {
    ...seen,
    watcher: {
      onUpdate: (b) => seen.updates.push(b),
      onError: (e) => seen.errors.push(e),
      ...(nextRefresh === undefined ? {} : { nextRefresh }),
    },
  };
}

describe('watchBundle', () => {
  const ca = TestCa.create({ trustDomain: 'example.org' });
  const bootstrap = X509Bundle.fromAuthorities(TD, [ca.certificate]);
  let queue: SpiffeBundle[] = [];
  let last: SpiffeBundle = bundleOf([ca.certificate], 1);
  let endpoint: Running;
  const svid = new MutableSvid(svidOf(ca, ENDPOINT_ID));
  before(async () => {
    endpoint = await startSpiffeEndpoint(svid, () => {
      const b = queue.shift();
      if (b !== undefined) last = b;
      return last;
    });
  });
  after(() => endpoint.close());

  it('calls onUpdate only when the bundle changed and refreshes at the refresh hint (FED-03)', async () => {
    const b1 = bundleOf([ca.certificate], 1, 30);
    const b2 = bundleOf([ca.certificate], 2, 45);
    queue = [b1, b1, b2, b2];
    const s = stepper(4);
    const r = recorder();
    await watchBundle(TD, endpoint.url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: s.signal,
      sleep: s.sleep,
    });
    assert.equal(r.updates.length, 2);
    assert.ok(r.updates[0]?.equals(b1));
    assert.ok(r.updates[1]?.equals(b2));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(s.delays, [30_000, 30_000, 45_000, 45_000]);
  });

  it('defaults to 5 minutes without a refresh hint (BND-15)', async () => {
    queue = [bundleOf([ca.certificate], 3)];
    const s = stepper(1);
    const r = recorder();
    await watchBundle(TD, endpoint.url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: s.signal,
      sleep: s.sleep,
    });
    assert.equal(r.updates.length, 1);
    assert.deepEqual(s.delays, [DEFAULT_REFRESH_SECONDS * 1000]);
  });

  it('FED-04: keeps the higher sequence when an older bundle is served, and reports it', async () => {
    const b5 = bundleOf([ca.certificate], 5, 10);
    const b4 = bundleOf([ca.certificate, TestCa.create({ trustDomain: 'example.org' }).certificate], 4, 10);
    const b6 = bundleOf([ca.certificate], 6, 10);
    queue = [b5, b4, b6];
    const s = stepper(3);
    const r = recorder();
    await watchBundle(TD, endpoint.url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: s.signal,
      sleep: s.sleep,
    });
    assert.deepEqual(
      r.updates.map((b) => b.sequenceNumber),
      [5n, 6n],
    );
    assert.equal(r.errors.length, 1);
    assert.equal((r.errors[0] as { code?: string }).code, 'ERR_FEDERATION_FAILED');
    assert.equal(
      r.errors[0]?.message,
      'federation: ignoring bundle for "example.org" with sequence 4 older than 5',
    );
  });

  it('FED-04: without sequence numbers the most recent fetch wins', async () => {
    const a = bundleOf([ca.certificate]);
    const b = bundleOf([ca.certificate, TestCa.create({ trustDomain: 'example.org' }).certificate]);
    queue = [a, b, a];
    const s = stepper(3);
    const r = recorder();
    await watchBundle(TD, endpoint.url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: s.signal,
      sleep: s.sleep,
    });
    assert.equal(r.updates.length, 3);
    assert.ok(r.updates[2]?.equals(a));
  });

  it('FED-16: authenticates later fetches of a self-serving endpoint with the latest fetched bundle', async () => {
    const oldCa = TestCa.create({ trustDomain: 'example.org' });
    const newCa = TestCa.create({ trustDomain: 'example.org' });
    const rotating = new MutableSvid(svidOf(oldCa, ENDPOINT_ID));
    const v2 = bundleOf([oldCa.certificate, newCa.certificate], 2, 10);
    const v3 = bundleOf([newCa.certificate, oldCa.certificate], 3, 10);
    const served = [v2, v3];
    let current = v2;
    const ep = await startSpiffeEndpoint(rotating, () => {
      current = served.shift() ?? current;
      return current;
    });
    const oldOnly = X509Bundle.fromAuthorities(TD, [oldCa.certificate]);
    try {
      const ac = new AbortController();
      const r = recorder();
      const delays: number[] = [];
      await watchBundle(TD, ep.url, r.watcher, {
        spiffeAuth: { bundleSource: oldOnly, endpointId },
        signal: ac.signal,
        sleep: async (ms) => {
          delays.push(ms);
          if (delays.length === 1) {
            // The server CA rotated: the endpoint now presents an SVID signed by the new CA only.
            rotating.svid = svidOf(newCa, ENDPOINT_ID);
          } else {
            ac.abort();
          }
        },
      });
      assert.deepEqual(r.errors, []);
      assert.deepEqual(
        r.updates.map((b) => b.sequenceNumber),
        [2n, 3n],
      );
      // Control: the bootstrap bundle alone no longer authenticates the endpoint.
      await assert.rejects(fetchBundle(TD, ep.url, { spiffeAuth: { bundleSource: oldOnly, endpointId } }), {
        code: 'ERR_FEDERATION_FAILED',
      });
    } finally {
      await ep.close();
    }
  });

  it('FED-18: keeps the normal interval when the endpoint is down (no tight retry loop)', async () => {
    const down = await startSpiffeEndpoint(svid, () => last);
    const url = down.url;
    await down.close();
    const s = stepper(3);
    const r = recorder();
    await watchBundle(TD, url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: s.signal,
      sleep: s.sleep,
    });
    assert.equal(r.updates.length, 0);
    assert.equal(r.errors.length, 3);
    for (const e of r.errors) {
      assert.equal((e as { code?: string }).code, 'ERR_FEDERATION_FAILED');
      assert.match(e.message, /^federation: could not GET bundle from ".*": connect ECONNREFUSED/);
    }
    assert.deepEqual(s.delays, [300_000, 300_000, 300_000]);
  });

  it('FED-18: after a failure, waits the interval of the latest good bundle', async () => {
    let fail = false;
    const web = webPki();
    const good = bundleOf([ca.certificate], 9, 20);
    const srv = await startWebServer(web, (_req, res) => {
      if (fail) {
        res.writeHead(500);
        res.end('boom');
        return;
      }
      res.end(good.marshal());
    });
    try {
      const ac = new AbortController();
      const r = recorder();
      const delays: number[] = [];
      await watchBundle(TD, srv.url, r.watcher, {
        webPkiRoots: [web.root.certificate],
        signal: ac.signal,
        sleep: async (ms) => {
          delays.push(ms);
          fail = true;
          if (delays.length === 3) ac.abort();
        },
      });
      assert.equal(r.updates.length, 1);
      assert.deepEqual(
        r.errors.map((e) => e.message),
        [
          'federation: unexpected status 500 fetching bundle: boom',
          'federation: unexpected status 500 fetching bundle: boom',
        ],
      );
      assert.deepEqual(delays, [20_000, 20_000, 20_000]);
    } finally {
      await srv.close();
    }
  });

  it('never waits less than a second, whatever nextRefresh returns', async () => {
    queue = [bundleOf([ca.certificate], 11, 1)];
    const s = stepper(3);
    const hints: number[] = [];
    const results = [0, -5, Number.NaN];
    const r = recorder((hint) => {
      hints.push(hint);
      return results[hints.length - 1] ?? 1;
    });
    await watchBundle(TD, endpoint.url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: s.signal,
      sleep: s.sleep,
    });
    assert.deepEqual(hints, [1, 1, 1]);
    assert.deepEqual(s.delays, [1000, 1000, 1000]);
  });

  it('FED-12: polls the original URL again after following a redirect', async () => {
    const web = webPki();
    const b = bundleOf([ca.certificate], 1, 10);
    const target = await startWebServer(web, (_req, res) => res.end(b.marshal()));
    const origin = await startWebServer(web, redirectTo(`https://localhost:${target.port}/cdn`, 301));
    try {
      const s = stepper(2);
      const r = recorder();
      await watchBundle(TD, origin.url, r.watcher, {
        webPkiRoots: [web.root.certificate],
        signal: s.signal,
        sleep: s.sleep,
      });
      assert.deepEqual(r.errors, []);
      assert.equal(r.updates.length, 1);
      assert.deepEqual(origin.requests, ['GET /', 'GET /']);
      assert.deepEqual(target.requests, ['GET /cdn', 'GET /cdn']);
    } finally {
      await origin.close();
      await target.close();
    }
  });

  it('FED-19: stops polling once aborted', async () => {
    const ac = new AbortController();
    const before = endpoint.requests.length;
    const r = recorder();
    await watchBundle(TD, endpoint.url, r.watcher, {
      spiffeAuth: { bundleSource: bootstrap, endpointId },
      signal: ac.signal,
      sleep: async () => {
        ac.abort();
      },
    });
    assert.equal(endpoint.requests.length - before, 1);
    const again = endpoint.requests.length;
    await new Promise((res) => setImmediate(res));
    assert.equal(endpoint.requests.length, again);
  });

  it('ends at once with the default timer when aborted while waiting', async () => {
    const ac = new AbortController();
    const r = recorder();
    const p = watchBundle(
      TD,
      endpoint.url,
      {
        ...r.watcher,
        onUpdate: (b) => {
          r.watcher.onUpdate(b);
          ac.abort();
        },
      },
      { spiffeAuth: { bundleSource: bootstrap, endpointId }, signal: ac.signal },
    );
    await p;
    assert.equal(r.updates.length, 1);
  });

  it('reports an exception thrown by onUpdate to onError and keeps watching', async () => {
    queue = [bundleOf([ca.certificate], 21, 10), bundleOf([ca.certificate], 22, 10)];
    const s = stepper(2);
    const errors: Error[] = [];
    let calls = 0;
    await watchBundle(
      TD,
      endpoint.url,
      {
        onUpdate: () => {
          calls++;
          throw new Error('consumer failed');
        },
        onError: (e) => errors.push(e),
      },
      { spiffeAuth: { bundleSource: bootstrap, endpointId }, signal: s.signal, sleep: s.sleep },
    );
    assert.equal(calls, 2);
    assert.deepEqual(
      errors.map((e) => e.message),
      ['consumer failed', 'consumer failed'],
    );
  });

  const misuse: { name: string; run: () => Promise<void> }[] = [
    {
      name: 'rejects a missing watcher with TypeError',
      run: () => watchBundle(TD, endpoint.url, null as never, { signal: new AbortController().signal }),
    },
    {
      name: 'rejects a watcher without onError with TypeError',
      run: () =>
        watchBundle(TD, endpoint.url, { onUpdate: () => {} } as never, {
          signal: new AbortController().signal,
        }),
    },
    {
      name: 'rejects a missing signal with TypeError',
      run: () => watchBundle(TD, endpoint.url, { onUpdate: () => {}, onError: () => {} }, {} as never),
    },
  ];
  for (const tc of misuse) {
    it(tc.name, async () => {
      await assert.rejects(tc.run(), { name: 'TypeError', message: /^federation: / });
    });
  }

  it('FED-09: rejects an http URL before any fetch', async () => {
    await assert.rejects(
      watchBundle(
        TD,
        'http://127.0.0.1:1/',
        { onUpdate: () => {}, onError: () => {} },
        {
          signal: new AbortController().signal,
        },
      ),
      {
        code: 'ERR_FEDERATION_FAILED',
        message: 'federation: bundle endpoint URL "http://127.0.0.1:1/" must use the https scheme',
      },
    );
  });
});
