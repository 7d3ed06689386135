import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { createBundleHandler } from '@tessera/spiffe/federation';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
import { bundleOf, type Running, startHttpServer, TD } from './fixtures.js';

function call(
  port: number,
  method: string,
): Promise<{ status: number; type: string | undefined; allow: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: '/' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'],
          allow: res.headers.allow as string | undefined,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('createBundleHandler', () => {
  const ca = TestCa.create({ trustDomain: 'example.org' });
  let current: SpiffeBundle | Error = bundleOf([ca.certificate], 3, 300);
  let server: Running;
  before(async () => {
    server = await startHttpServer(
      createBundleHandler(TD, {
        getBundleForTrustDomain: (td) => {
          assert.equal(td.name, 'example.org');
          if (current instanceof Error) throw current;
          return current;
        },
      }),
    );
  });
  after(() => server.close());

  it('serves the current bundle as application/json on GET', async () => {
    const r = await call(server.port, 'GET');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    const parsed = SpiffeBundle.parse(TD, r.body);
    assert.ok(parsed.equals(current as SpiffeBundle));
    assert.equal(parsed.sequenceNumber, 3n);
  });

  for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
    it(`answers ${method} with 405`, async () => {
      const r = await call(server.port, method);
      assert.equal(r.status, 405);
      assert.equal(r.allow, 'GET');
      if (method !== 'HEAD') assert.equal(r.body, 'method is not allowed');
    });
  }

  it('answers 500 when the source fails, without its error text', async () => {
    current = new Error('database is down: secret-dsn');
    try {
      const r = await call(server.port, 'GET');
      assert.equal(r.status, 500);
      assert.equal(r.body, 'unable to serve bundle for "example.org"');
    } finally {
      current = bundleOf([ca.certificate], 3, 300);
    }
  });

  it('answers 500 when the source returns a bundle of another trust domain', async () => {
    current = SpiffeBundle.fromAuthorities(TrustDomain.fromString('other.org'), {
      x509Authorities: [ca.certificate],
    });
    try {
      const r = await call(server.port, 'GET');
      assert.equal(r.status, 500);
      assert.equal(r.body, 'unable to serve bundle for "example.org"');
    } finally {
      current = bundleOf([ca.certificate], 3, 300);
    }
  });

  it('accepts a SpiffeBundle as the source of its own trust domain', async () => {
    const b = bundleOf([ca.certificate], 8);
    const s = await startHttpServer(createBundleHandler(TD, b));
    try {
      const r = await call(s.port, 'GET');
      assert.equal(r.status, 200);
      assert.equal(r.body, b.marshal());
    } finally {
      await s.close();
    }
  });

  it('throws TypeError for a source without getBundleForTrustDomain', () => {
    assert.throws(() => createBundleHandler(TD, {} as never), {
      name: 'TypeError',
      message: 'federation: the source must have getBundleForTrustDomain()',
    });
    assert.throws(() => createBundleHandler('example.org' as never, bundleOf([])), { name: 'TypeError' });
  });
});
