import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { FederationError } from '@tessera/spiffe/errors';
import { fetchBundle } from '@tessera/spiffe/federation';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
import {
  bundleOf,
  ENDPOINT_ID,
  MutableSvid,
  type Running,
  redirectTo,
  startHttpServer,
  startSpiffeEndpoint,
  startSpiffeServer,
  startWebServer,
  svidOf,
  TD,
  webPki,
} from './fixtures.js';

const ca = TestCa.create({ trustDomain: 'example.org' });
const served = bundleOf([ca.certificate], 7, 60);
const bootstrap = X509Bundle.fromAuthorities(TD, [ca.certificate]);
const spiffeAuth = { bundleSource: bootstrap, endpointId: SpiffeId.require(ENDPOINT_ID) };

describe('fetchBundle over https_spiffe', () => {
  let endpoint: Running;
  let impostor: Running;
  before(async () => {
    endpoint = await startSpiffeEndpoint(new MutableSvid(svidOf(ca, ENDPOINT_ID)), () => served);
    impostor = await startSpiffeEndpoint(
      new MutableSvid(svidOf(ca, 'spiffe://example.org/other')),
      () => served,
    );
  });
  after(async () => {
    await endpoint.close();
    await impostor.close();
  });

  it('FED-01: GET / returns the SPIFFE bundle of the trust domain', async () => {
    const b = await fetchBundle(TD, endpoint.url, { spiffeAuth });
    assert.ok(b.equals(served));
    assert.equal(b.sequenceNumber, 7n);
    assert.equal(b.refreshHint, 60);
    assert.equal(b.trustDomain.name, 'example.org');
    assert.deepEqual(endpoint.requests.at(-1), 'GET /');
  });

  it('FED-15: rejects a server whose SVID is not the configured endpoint ID', async () => {
    await assert.rejects(fetchBundle(TD, impostor.url, { spiffeAuth }), (err: FederationError) => {
      assert.equal(err.code, 'ERR_FEDERATION_FAILED');
      assert.match(
        err.message,
        /^federation: could not GET bundle from ".*": tls: unexpected ID "spiffe:\/\/example\.org\/other"$/,
      );
      return true;
    });
    assert.equal(impostor.requests.length, 0, 'no request reaches a refused server');
  });

  it('FED-15: rejects a server whose SVID does not chain to the bundle of the endpoint ID', async () => {
    const otherCa = TestCa.create({ trustDomain: 'example.org' });
    const wrong = {
      bundleSource: X509Bundle.fromAuthorities(TD, [otherCa.certificate]),
      endpointId: spiffeAuth.endpointId,
    };
    await assert.rejects(fetchBundle(TD, endpoint.url, { spiffeAuth: wrong }), {
      code: 'ERR_FEDERATION_FAILED',
      message: /^federation: could not GET bundle from /,
    });
  });

  it('fails when the bundle source has no bundle for the endpoint ID trust domain', async () => {
    const auth = { bundleSource: bootstrap, endpointId: SpiffeId.require('spiffe://other.org/spire/server') };
    await assert.rejects(fetchBundle(TD, endpoint.url, { spiffeAuth: auth }), {
      code: 'ERR_FEDERATION_FAILED',
      message: /^federation: no bundle to authenticate endpoint "spiffe:\/\/other\.org\/spire\/server": /,
    });
  });

  it('FED-07: binds the bundle to the given trust domain, never to the URL host', async () => {
    const b = await fetchBundle(TD, endpoint.url.replace('127.0.0.1', 'localhost'), { spiffeAuth });
    assert.equal(b.trustDomain.name, 'example.org');
  });
});

describe('fetchBundle argument checks', () => {
  const cases: { name: string; url: string; message: RegExp }[] = [
    {
      name: 'FED-09: rejects an http URL',
      url: 'http://h.example/b',
      message: /^federation: bundle endpoint URL "http:\/\/h\.example\/b" must use the https scheme$/,
    },
    {
      name: 'FED-09: rejects a URL with user info',
      url: 'https://u:secret@h.example/b',
      message: /^federation: bundle endpoint URL must not contain user info$/,
    },
    {
      name: 'FED-09: rejects a URL with a user name only',
      url: 'https://u@h.example/b',
      message: /^federation: bundle endpoint URL must not contain user info$/,
    },
    {
      name: 'rejects a string that is not a URL',
      url: 'not a url',
      message: /^federation: bundle endpoint URL "not a url" is not a valid URL$/,
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      await assert.rejects(fetchBundle(TD, tc.url), (err: FederationError) => {
        assert.ok(err instanceof FederationError);
        assert.equal(err.code, 'ERR_FEDERATION_FAILED');
        assert.match(err.message, tc.message);
        assert.doesNotMatch(err.message, /secret/);
        return true;
      });
    });
  }

  it('throws TypeError when both SPIFFE and Web PKI authentication are given', async () => {
    await assert.rejects(
      fetchBundle(TD, 'https://h.example/', { spiffeAuth, webPkiRoots: [ca.certificate] }),
      {
        name: 'TypeError',
        message: 'federation: cannot use both SPIFFE and Web PKI authentication',
      },
    );
  });

  it('FED-07: throws TypeError without a trust domain', async () => {
    await assert.rejects(fetchBundle('example.org' as never, 'https://h.example/'), { name: 'TypeError' });
  });

  it('throws RangeError for an out-of-range limit', async () => {
    await assert.rejects(fetchBundle(TD, 'https://h.example/', { maxRedirects: 11 }), { name: 'RangeError' });
    await assert.rejects(fetchBundle(TD, 'https://h.example/', { timeoutMs: 0 }), { name: 'RangeError' });
  });
});

describe('fetchBundle over https_web', () => {
  const web = webPki();
  let server: Running;
  let status = 200;
  let body = served.marshal();
  before(async () => {
    server = await startWebServer(web, (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  after(() => server.close());

  it('FED-10/FED-11: accepts a server whose certificate matches the host and chains to the roots', async () => {
    const b = await fetchBundle(TD, `https://localhost:${server.port}/`, {
      webPkiRoots: [web.root.certificate],
    });
    assert.ok(b.equals(served));
    const b2 = await fetchBundle(TD, server.url, { webPkiRoots: web.root.pem() });
    assert.ok(b2.equals(served));
  });

  it('FED-11: rejects a server certificate issued for another host', async () => {
    const other = webPki({ dnsNames: ['other.example'], ipAddresses: [] });
    const s = await startWebServer(other, (_req, res) => res.end(body));
    try {
      await assert.rejects(
        fetchBundle(TD, `https://localhost:${s.port}/`, { webPkiRoots: [other.root.certificate] }),
        {
          code: 'ERR_FEDERATION_FAILED',
          message:
            /^federation: could not GET bundle from ".*": Hostname\/IP does not match certificate's altnames/,
        },
      );
      assert.equal(s.requests.length, 0);
    } finally {
      await s.close();
    }
  });

  it('FED-11: hints at https_spiffe when the mismatching certificate carries a SPIFFE ID', async () => {
    const other = webPki({ dnsNames: [], ipAddresses: [], uris: ['spiffe://example.org/spire/server'] });
    const s = await startWebServer(other, (_req, res) => res.end(body));
    try {
      await assert.rejects(fetchBundle(TD, s.url, { webPkiRoots: [other.root.certificate] }), {
        code: 'ERR_FEDERATION_FAILED',
        message: /bundle endpoint profile may be https_spiffe instead of https_web/,
      });
    } finally {
      await s.close();
    }
  });

  it('FED-11: rejects a server certificate that does not chain to the roots', async () => {
    await assert.rejects(fetchBundle(TD, server.url, { webPkiRoots: [ca.certificate] }), {
      code: 'ERR_FEDERATION_FAILED',
      message: /^federation: could not GET bundle from ".*": /,
    });
  });

  it('§2.8: fails on a non-200 status with an excerpt of the body, like SPIRE', async () => {
    status = 503;
    body = 'maintenance\nin progress';
    try {
      await assert.rejects(fetchBundle(TD, server.url, { webPkiRoots: [web.root.certificate] }), {
        code: 'ERR_FEDERATION_FAILED',
        message: 'federation: unexpected status 503 fetching bundle: maintenance in progress',
      });
    } finally {
      status = 200;
      body = served.marshal();
    }
  });

  it('truncates a long non-200 body in the message', async () => {
    status = 404;
    body = 'x'.repeat(5000);
    try {
      await assert.rejects(
        fetchBundle(TD, server.url, { webPkiRoots: [web.root.certificate] }),
        (err: Error) => {
          assert.match(err.message, /^federation: unexpected status 404 fetching bundle: x{256}…$/);
          return true;
        },
      );
    } finally {
      status = 200;
      body = served.marshal();
    }
  });

  it('wraps an invalid bundle document, keeping the bundle error as cause', async () => {
    body = '{"nokeys":[]}';
    try {
      await assert.rejects(
        fetchBundle(TD, server.url, { webPkiRoots: [web.root.certificate] }),
        (err: FederationError) => {
          assert.equal(err.code, 'ERR_FEDERATION_FAILED');
          assert.equal(err.message, 'federation: spiffebundle: no authorities found');
          assert.equal((err.cause as { code?: string }).code, 'ERR_BUNDLE_INVALID');
          return true;
        },
      );
    } finally {
      body = served.marshal();
    }
  });

  it('refuses a body over the size limit', async () => {
    await assert.rejects(
      fetchBundle(TD, server.url, { webPkiRoots: [web.root.certificate], maxBytes: 100 }),
      {
        code: 'ERR_FEDERATION_FAILED',
        message: 'federation: bundle response exceeds 100 bytes',
      },
    );
  });

  it('refuses a streamed body over the size limit (no content-length)', async () => {
    const s = await startWebServer(web, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
      res.end(`${' '.repeat(300)}]}`);
    });
    try {
      await assert.rejects(fetchBundle(TD, s.url, { webPkiRoots: [web.root.certificate], maxBytes: 200 }), {
        code: 'ERR_FEDERATION_FAILED',
        message: 'federation: bundle response exceeds 200 bytes',
      });
    } finally {
      await s.close();
    }
  });

  it('gives up after the time limit when the server does not answer', async () => {
    const s = await startWebServer(web, () => {
      // never answers
    });
    try {
      await assert.rejects(fetchBundle(TD, s.url, { webPkiRoots: [web.root.certificate], timeoutMs: 200 }), {
        code: 'ERR_FEDERATION_FAILED',
        message: /^federation: timed out after 200 ms fetching bundle from /,
      });
    } finally {
      await s.close();
    }
  });

  it('rejects at once with a signal that is already aborted, sending nothing', async () => {
    const before = server.requests.length;
    await assert.rejects(
      fetchBundle(TD, server.url, { webPkiRoots: [web.root.certificate], signal: AbortSignal.abort() }),
      { code: 'ERR_FEDERATION_FAILED', message: 'federation: fetch was aborted' },
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.requests.length, before);
  });

  it('stops when the caller aborts', async () => {
    const s = await startWebServer(web, () => {});
    const ac = new AbortController();
    try {
      const p = fetchBundle(TD, s.url, { webPkiRoots: [web.root.certificate], signal: ac.signal });
      setImmediate(() => ac.abort());
      await assert.rejects(p, { code: 'ERR_FEDERATION_FAILED', message: 'federation: fetch was aborted' });
    } finally {
      await s.close();
    }
  });
});

describe('fetchBundle redirects (FED-12)', () => {
  const web = webPki();
  let target: Running;
  let origin: Running;
  let plain: Running;
  let location = '';
  let code = 301;
  before(async () => {
    target = await startWebServer(web, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(served.marshal());
    });
    plain = await startHttpServer((_req, res) => res.end(served.marshal()));
    origin = await startWebServer(web, (_req, res) => {
      res.writeHead(code, { location });
      res.end();
    });
  });
  after(async () => {
    await target.close();
    await origin.close();
    await plain.close();
  });
  const opts = () => ({ webPkiRoots: [web.root.certificate] });

  it('refuses a 302 to an http URL without contacting it', async () => {
    code = 302;
    location = `http://127.0.0.1:${plain.port}/bundle`;
    await assert.rejects(fetchBundle(TD, origin.url, opts()), {
      code: 'ERR_FEDERATION_FAILED',
      message: `federation: redirect target "http://127.0.0.1:${plain.port}/bundle" must use the https scheme`,
    });
    assert.equal(plain.requests.length, 0);
  });

  it('follows a 301 to an https URL once, with the same TLS checks', async () => {
    code = 301;
    location = `https://localhost:${target.port}/cdn/bundle`;
    const before = target.requests.length;
    const b = await fetchBundle(TD, origin.url, opts());
    assert.ok(b.equals(served));
    assert.deepEqual(target.requests.slice(before), ['GET /cdn/bundle']);
  });

  it('applies the same TLS checks to the redirect target', async () => {
    const other = webPki();
    const foreign = await startWebServer(other, (_req, res) => res.end(served.marshal()));
    code = 307;
    location = `https://localhost:${foreign.port}/`;
    try {
      await assert.rejects(fetchBundle(TD, origin.url, opts()), {
        code: 'ERR_FEDERATION_FAILED',
        message: new RegExp(`^federation: could not GET bundle from "https://localhost:${foreign.port}/": `),
      });
      assert.equal(foreign.requests.length, 0);
    } finally {
      await foreign.close();
    }
  });

  it('resolves a relative location against the current URL', async () => {
    code = 308;
    location = '/elsewhere';
    // The origin redirects every path, so a relative redirect loops until the limit.
    await assert.rejects(fetchBundle(TD, origin.url, { ...opts(), maxRedirects: 2 }), {
      code: 'ERR_FEDERATION_FAILED',
      message: `federation: too many redirects fetching bundle from "${origin.url}" (limit 2)`,
    });
    assert.deepEqual(origin.requests.slice(-3), ['GET /', 'GET /elsewhere', 'GET /elsewhere']);
  });

  it('refuses every redirect with maxRedirects 0', async () => {
    code = 302;
    location = `https://localhost:${target.port}/`;
    await assert.rejects(fetchBundle(TD, origin.url, { ...opts(), maxRedirects: 0 }), {
      code: 'ERR_FEDERATION_FAILED',
      message: /too many redirects/,
    });
  });

  it('fails on a redirect without a location', async () => {
    code = 302;
    location = '';
    await assert.rejects(fetchBundle(TD, origin.url, opts()), {
      code: 'ERR_FEDERATION_FAILED',
      message: 'federation: redirect 302 without a location fetching bundle',
    });
  });

  it('FED-17: an https_spiffe redirect target must present the same SPIFFE ID', async () => {
    const good = await startSpiffeEndpoint(new MutableSvid(svidOf(ca, ENDPOINT_ID)), () => served);
    const other = await startSpiffeEndpoint(
      new MutableSvid(svidOf(ca, 'spiffe://example.org/cdn')),
      () => served,
    );
    const endpointSvid = new MutableSvid(svidOf(ca, ENDPOINT_ID));
    const toOther = await startSpiffeServer(endpointSvid, redirectTo(`https://127.0.0.1:${other.port}/`));
    const toGood = await startSpiffeServer(endpointSvid, redirectTo(`https://127.0.0.1:${good.port}/b`));
    try {
      await assert.rejects(fetchBundle(TD, toOther.url, { spiffeAuth }), {
        code: 'ERR_FEDERATION_FAILED',
        message: /tls: unexpected ID "spiffe:\/\/example\.org\/cdn"/,
      });
      assert.equal(other.requests.length, 0);
      const b = await fetchBundle(TD, toGood.url, { spiffeAuth });
      assert.ok(b.equals(served));
      assert.deepEqual(good.requests, ['GET /b']);
    } finally {
      await Promise.all([good.close(), other.close(), toOther.close(), toGood.close()]);
    }
  });
});
