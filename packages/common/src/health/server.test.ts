import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { MetricsRegistry } from '../metrics/index.js';
import { probeHealth, startHealthServer } from './index.js';

function call(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startHealthServer', () => {
  it('answers /live and /ready with 200 or 503 and a JSON body, and serves /metrics', async () => {
    let ready = false;
    const reg = new MetricsRegistry();
    reg.counter('up_total', 'Up').inc();
    const hs = await startHealthServer({
      bindAddress: '127.0.0.1',
      bindPort: 0,
      ready: () => ({ ok: ready, details: { datastore: ready ? 'ok' : 'starting' } }),
      metrics: reg,
    });
    try {
      assert.deepEqual(await call(hs.port, '/live'), {
        status: 200,
        type: 'application/json; charset=utf-8',
        body: '{"status":"ok"}\n',
      });
      const notReady = await call(hs.port, '/ready');
      assert.equal(notReady.status, 503);
      assert.deepEqual(JSON.parse(notReady.body), { status: 'unavailable', datastore: 'starting' });
      ready = true;
      assert.equal((await call(hs.port, '/ready?x=1')).status, 200);
      const m = await call(hs.port, '/metrics');
      assert.equal(m.type, 'text/plain; version=0.0.4; charset=utf-8');
      assert.match(m.body, /^up_total 1$/m);
      assert.equal((await call(hs.port, '/other')).status, 404);
      assert.equal((await call(hs.port, '/live', 'POST')).status, 405);
      assert.deepEqual(await probeHealth({ host: '127.0.0.1', port: hs.port, path: '/ready' }), {
        ok: true,
        status: 200,
        body: { status: 'ok', datastore: 'ok' },
      });
    } finally {
      await hs.close();
    }
  });

  it('counts a throwing or hanging check as unavailable without leaking the error', async () => {
    const hs = await startHealthServer({
      bindAddress: '127.0.0.1',
      bindPort: 0,
      livePath: '/healthz',
      live: () => {
        throw new Error('secret detail');
      },
      ready: () => new Promise(() => {}),
      checkTimeoutMs: 50,
    });
    try {
      const live = await call(hs.port, '/healthz');
      assert.equal(live.status, 503);
      assert.doesNotMatch(live.body, /secret detail/);
      assert.deepEqual(JSON.parse((await call(hs.port, '/ready')).body), {
        status: 'unavailable',
        error: 'check timed out',
      });
      assert.equal((await call(hs.port, '/live')).status, 404);
      assert.equal((await call(hs.port, '/metrics')).status, 404);
    } finally {
      await hs.close();
    }
  });

  it('reports an unreachable endpoint from probeHealth', async () => {
    const hs = await startHealthServer({ bindAddress: '127.0.0.1', bindPort: 0 });
    const port = hs.port;
    await hs.close();
    const r = await probeHealth({ host: '127.0.0.1', port, path: '/live', timeoutMs: 1000 });
    assert.equal(r.ok, false);
    assert.equal(r.status, 0);
    assert.equal(r.error, 'ECONNREFUSED');
  });

  it('fails to start on a port in use', async () => {
    const a = await startHealthServer({ bindAddress: '127.0.0.1', bindPort: 0 });
    try {
      await assert.rejects(startHealthServer({ bindAddress: '127.0.0.1', bindPort: a.port }), {
        code: 'EADDRINUSE',
      });
    } finally {
      await a.close();
    }
  });
});
