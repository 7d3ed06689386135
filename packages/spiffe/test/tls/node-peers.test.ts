import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import {
  authorizeAny,
  authorizeId,
  authorizeMemberOf,
  connectSpiffeTls,
  createSpiffeHttpsAgent,
  createSpiffeHttpsServer,
  createSpiffeTlsServer,
  MIN_TLS_VERSION,
  mtlsClientOptions,
  mtlsServerOptions,
  mtlsWebServerOptions,
  peerIdFromSocket,
  tlsClientOptions,
  tlsServerOptions,
} from '@tessera/spiffe/tls';
import { TestCa } from '@tessera/testing';
import { caAsLeaf, listen, MutableBundles, MutableSvidSource, svid } from './fixtures.js';

const caA = TestCa.create({ trustDomain: 'a.org' });
const caB = TestCa.create({ trustDomain: 'b.org' });
const interA = caA.createIntermediate();
const serverId = 'spiffe://a.org/server';
const clientId = 'spiffe://a.org/client';

interface Result {
  status?: number;
  body?: string;
  error?: Error & { code?: string };
}

function get(port: number, agent: https.Agent): Promise<Result> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
  });
}

/** An mTLS https server whose handler counts calls and answers with the client's verified ID. */
async function helloServer(
  svidSource: MutableSvidSource,
  bundles: MutableBundles,
  authorizer = authorizeMemberOf(TrustDomain.fromString('a.org')),
) {
  let calls = 0;
  const refusals: (Error & { code?: string })[] = [];
  const server = createSpiffeHttpsServer(
    mtlsServerOptions(svidSource, bundles, authorizer),
    {},
    (req, res) => {
      calls++;
      res.end(`hello ${peerIdFromSocket(req.socket as TLSSocket).toString()}`);
    },
  );
  server.on('tlsClientError', (err: Error & { code?: string }) => refusals.push(err));
  const port = await listen(server);
  return {
    port,
    calls: () => calls,
    refusals,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('SPIFFE TLS between node peers', () => {
  const serverSvid = new MutableSvidSource(svid(caA, serverId));
  const clientSvid = new MutableSvidSource(svid(interA, clientId));
  const bundles = new MutableBundles(caA, caB);
  let srv: Awaited<ReturnType<typeof helloServer>>;

  before(async () => {
    srv = await helloServer(serverSvid, bundles);
  });
  after(() => srv.close());

  it('authenticates both sides by SPIFFE ID over https (client SVID issued by an intermediate)', async () => {
    const agent = createSpiffeHttpsAgent(() =>
      mtlsClientOptions(clientSvid, bundles, authorizeId(SpiffeId.require(serverId))),
    );
    const r = await get(srv.port, agent);
    agent.destroy();
    assert.equal(r.error, undefined);
    assert.equal(r.status, 200);
    assert.equal(r.body, `hello ${clientId}`);
  });

  it('exposes the verified server ID on the client socket', async () => {
    const socket = connectSpiffeTls(() => mtlsClientOptions(clientSvid, bundles, authorizeAny()), {
      host: '127.0.0.1',
      port: srv.port,
    });
    await once(socket, 'secureConnect');
    assert.equal(peerIdFromSocket(socket).toString(), serverId);
    socket.destroy();
  });

  it('refuses a server whose ID the client does not authorize', async () => {
    const agent = createSpiffeHttpsAgent(() =>
      mtlsClientOptions(clientSvid, bundles, authorizeId(SpiffeId.require('spiffe://a.org/other'))),
    );
    const before = srv.calls();
    const r = await get(srv.port, agent);
    agent.destroy();
    assert.equal(r.error?.code, 'ERR_TLS_AUTHORIZATION_FAILED');
    assert.match(r.error?.message ?? '', /^tls: unexpected ID "spiffe:\/\/a\.org\/server"$/);
    assert.equal(srv.calls(), before);
  });

  it('refuses a client whose ID the server does not authorize, before the handler', async () => {
    const other = await helloServer(
      serverSvid,
      bundles,
      authorizeId(SpiffeId.require('spiffe://a.org/someone-else')),
    );
    try {
      const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(clientSvid, bundles, authorizeAny()));
      const r = await get(other.port, agent);
      agent.destroy();
      assert.ok(r.error, 'the request must fail');
      assert.equal(other.calls(), 0);
      assert.equal(other.refusals[0]?.code, 'ERR_TLS_AUTHORIZATION_FAILED');
      assert.match(other.refusals[0]?.message ?? '', /unexpected ID "spiffe:\/\/a\.org\/client"/);
    } finally {
      other.close();
    }
  });

  it('refuses a client without a certificate at the handshake, before the handler', async () => {
    const before = srv.calls();
    const agent = createSpiffeHttpsAgent(() => tlsClientOptions(bundles, authorizeAny()));
    const r = await get(srv.port, agent);
    agent.destroy();
    assert.ok(r.error, 'the request must fail');
    assert.equal(srv.calls(), before);
  });

  it('refuses a client of another trust domain the server authorizer excludes', async () => {
    const before = srv.calls();
    const bClient = new MutableSvidSource(svid(caB, 'spiffe://b.org/client'));
    const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(bClient, bundles, authorizeAny()));
    const r = await get(srv.port, agent);
    agent.destroy();
    assert.ok(r.error);
    assert.equal(srv.calls(), before);
    assert.match(srv.refusals.at(-1)?.message ?? '', /^tls: unexpected trust domain "b\.org"$/);
  });

  it('refuses a server whose trust domain has no bundle at the client', async () => {
    const bServer = await helloServer(new MutableSvidSource(svid(caB, 'spiffe://b.org/server')), bundles);
    try {
      const onlyA = new MutableBundles(caA);
      const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(clientSvid, onlyA, authorizeAny()));
      const r = await get(bServer.port, agent);
      agent.destroy();
      assert.ok(r.error);
      assert.equal(bServer.calls(), 0);
    } finally {
      bServer.close();
    }
  });

  it("refuses a leaf of one trust domain signed by another domain's CA even with both bundles loaded (X5-16)", async () => {
    const forged = await helloServer(new MutableSvidSource(svid(caB, 'spiffe://a.org/server')), bundles);
    try {
      const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(clientSvid, bundles, authorizeAny()));
      const r = await get(forged.port, agent);
      agent.destroy();
      assert.equal(r.error?.code, 'ERR_X509SVID_VERIFY_FAILED');
      assert.equal(forged.calls(), 0);
    } finally {
      forged.close();
    }
  });

  // A CA certificate without digitalSignature is already refused by OpenSSL's purpose check (the pooled
  // first gate); one with digitalSignature passes OpenSSL and must be refused by X509-SVID verification.
  const signingCa = caA.createIntermediate({ keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'] });
  const caLeafCases = [
    { name: 'without digitalSignature', ca: interA, code: undefined },
    { name: 'with digitalSignature', ca: signingCa, code: 'ERR_X509SVID_VERIFY_FAILED' },
  ];
  for (const tc of caLeafCases) {
    it(`refuses a server that presents a CA certificate ${tc.name} as its leaf (X5-07)`, async () => {
      const caLeaf = await helloServer(new MutableSvidSource(caAsLeaf(tc.ca)), bundles);
      try {
        const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(clientSvid, bundles, authorizeAny()));
        const r = await get(caLeaf.port, agent);
        agent.destroy();
        assert.ok(r.error, 'the connection must fail');
        if (tc.code !== undefined) {
          assert.equal(r.error.code, tc.code);
          assert.match(r.error.message, /CA flag|KeyCertSign/);
        }
      } finally {
        caLeaf.close();
      }
    });

    it(`refuses a client that presents a CA certificate ${tc.name} as its leaf, before the handler`, async () => {
      const before = srv.calls();
      const refusalsBefore = srv.refusals.length;
      const agent = createSpiffeHttpsAgent(() =>
        mtlsClientOptions(new MutableSvidSource(caAsLeaf(tc.ca)), bundles, authorizeAny()),
      );
      const r = await get(srv.port, agent);
      agent.destroy();
      assert.ok(r.error, 'the request must fail');
      assert.equal(srv.calls(), before);
      assert.equal(srv.refusals.length, refusalsBefore + 1);
      if (tc.code !== undefined) assert.equal(srv.refusals.at(-1)?.code, tc.code);
    });
  }

  it('refuses a server leaf whose ID has no path', async () => {
    const root = await helloServer(new MutableSvidSource(svid(caA, 'spiffe://a.org')), bundles);
    try {
      const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(clientSvid, bundles, authorizeAny()));
      const r = await get(root.port, agent);
      agent.destroy();
      assert.equal(r.error?.code, 'ERR_X509SVID_VERIFY_FAILED');
      assert.match(r.error?.message ?? '', /non-root path/);
    } finally {
      root.close();
    }
  });

  it('picks up rotated SVIDs and bundles on new connections without restart', async () => {
    const rotServerSvid = new MutableSvidSource(svid(caA, 'spiffe://a.org/server-v1'));
    const rotClientSvid = new MutableSvidSource(svid(caA, 'spiffe://a.org/client-v1'));
    const rotBundles = new MutableBundles(caA);
    const rot = await helloServer(rotServerSvid, rotBundles);
    try {
      const seen: string[] = [];
      const agent = createSpiffeHttpsAgent(
        () =>
          mtlsClientOptions(rotClientSvid, rotBundles, (id) => {
            seen.push(id.toString());
          }),
        { keepAlive: false },
      );
      const r1 = await get(rot.port, agent);
      assert.equal(r1.body, 'hello spiffe://a.org/client-v1');

      // Rotate to a new CA: both bundles change, then both SVIDs.
      const caA2 = TestCa.create({ trustDomain: 'a.org' });
      rotBundles.set(caA, caA2.certificate);
      rotServerSvid.svid = svid(caA2, 'spiffe://a.org/server-v2');
      rotClientSvid.svid = svid(caA2, 'spiffe://a.org/client-v2');
      const r2 = await get(rot.port, agent);
      agent.destroy();
      assert.equal(r2.error, undefined);
      assert.equal(r2.body, 'hello spiffe://a.org/client-v2');
      assert.deepEqual(seen, ['spiffe://a.org/server-v1', 'spiffe://a.org/server-v2']);
    } finally {
      rot.close();
    }
  });

  it('serves TLS without client certificates with tlsServerOptions', async () => {
    const server = createSpiffeTlsServer(tlsServerOptions(serverSvid), {}, (socket) => socket.end('ok'));
    const port = await listen(server);
    try {
      const socket = connectSpiffeTls(
        () => tlsClientOptions(bundles, authorizeId(SpiffeId.require(serverId))),
        {
          host: '127.0.0.1',
          port,
        },
      );
      socket.setEncoding('utf8');
      let data = '';
      socket.on('data', (d: string) => {
        data += d;
      });
      await once(socket, 'end');
      assert.equal(data, 'ok');
      assert.equal(peerIdFromSocket(socket).toString(), serverId);
    } finally {
      server.close();
    }
  });

  it('verifies client SVIDs on a server with a web certificate (mtlsWebServerOptions)', async () => {
    const web = svid(caB, 'spiffe://b.org/web', { dnsNames: ['localhost'] });
    const server = createSpiffeTlsServer(
      mtlsWebServerOptions(
        { cert: web.certPem, key: web.keyPem },
        new MutableBundles(caA),
        authorizeId(SpiffeId.require(clientId)),
      ),
      {},
      (socket) => socket.end(peerIdFromSocket(socket).toString()),
    );
    const port = await listen(server);
    try {
      const { mtlsWebClientOptions } = await import('@tessera/spiffe/tls');
      const socket = connectSpiffeTls(() => mtlsWebClientOptions(clientSvid, [caB.certificate]), {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
      });
      socket.setEncoding('utf8');
      let data = '';
      socket.on('data', (d: string) => {
        data += d;
      });
      await once(socket, 'end');
      assert.equal(data, clientId);
    } finally {
      server.close();
    }
  });

  it('never allows TLS below 1.2 and rejects options that would replace the SPIFFE configuration', () => {
    assert.equal(MIN_TLS_VERSION, 'TLSv1.2');
    assert.equal(tlsClientOptions(bundles, authorizeAny()).minVersion, 'TLSv1.2');
    assert.equal(tlsClientOptions(bundles, authorizeAny()).rejectUnauthorized, true);
    const config = mtlsServerOptions(serverSvid, bundles, authorizeAny());
    assert.throws(() => createSpiffeTlsServer(config, { minVersion: 'TLSv1.1' }), RangeError);
    assert.throws(() => createSpiffeTlsServer(config, { rejectUnauthorized: false }), TypeError);
    assert.throws(() => createSpiffeTlsServer(config, { ca: 'x' }), TypeError);
    assert.throws(
      () => createSpiffeHttpsAgent(() => tlsClientOptions(bundles, authorizeAny()), { ca: 'x' }),
      TypeError,
    );
    assert.throws(() => createSpiffeTlsServer({} as never), TypeError);
  });

  it('refuses to build client options from a bundle source that cannot list its bundles', () => {
    const opaque = { getX509BundleForTrustDomain: bundles.getX509BundleForTrustDomain.bind(bundles) };
    assert.throws(() => tlsClientOptions(opaque, authorizeAny()), TypeError);
  });

  it('reports no peer ID for a socket it did not verify', () => {
    assert.throws(() => peerIdFromSocket({} as TLSSocket), {
      code: 'ERR_TLS_NO_PEER_CERTIFICATE',
      message: /^tls: no verified peer SPIFFE ID/,
    });
  });
});
