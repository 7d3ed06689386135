import assert from 'node:assert/strict';
import * as https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import {
  authorizeId,
  authorizeMemberOf,
  createSpiffeHttpsServer,
  mtlsClientOptions,
  mtlsServerOptions,
  peerIdFromSocket,
  tlsClientOptions,
  tlsServerOptions,
} from '@tessera/spiffe/tls';
import { TestCa } from '@tessera/testing';
import { listen, MutableBundles, MutableSvidSource, svid } from './fixtures.js';

const ca = TestCa.create({ trustDomain: 'a.org' });
const serverId = SpiffeId.require('spiffe://a.org/server');
const otherId = SpiffeId.require('spiffe://a.org/other');

interface Result {
  status?: number;
  error?: Error & { code?: string };
}

/** `https.get` with the given options and whatever agent they imply (the global agent when none). */
function get(port: number, options: https.RequestOptions): Promise<Result> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', ...options }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', (error) => resolve({ error }));
  });
}

describe('client options used directly with https.request', () => {
  const serverSvid = new MutableSvidSource(svid(ca, serverId.toString()));
  const clientSvid = new MutableSvidSource(svid(ca, 'spiffe://a.org/client'));
  const bundles = new MutableBundles(ca);
  const mtlsServer = createSpiffeHttpsServer(
    mtlsServerOptions(serverSvid, bundles, authorizeMemberOf(TrustDomain.fromString('a.org'))),
    {},
    (req, res) => res.end(peerIdFromSocket(req.socket as TLSSocket).toString()),
  );
  const tlsServer = createSpiffeHttpsServer(tlsServerOptions(serverSvid), {}, (_req, res) => res.end('hi'));
  const ports = { mtls: 0, tls: 0 };
  before(async () => {
    ports.mtls = await listen(mtlsServer);
    ports.tls = await listen(tlsServer);
  });
  after(() => {
    for (const s of [mtlsServer, tlsServer]) {
      s.closeAllConnections();
      s.close();
    }
  });

  const cases = [
    {
      name: 'mtlsClientOptions',
      server: 'mtls' as const,
      make: (id: SpiffeId) => mtlsClientOptions(clientSvid, bundles, authorizeId(id)),
    },
    {
      name: 'tlsClientOptions',
      server: 'tls' as const,
      make: (id: SpiffeId) => tlsClientOptions(bundles, authorizeId(id)),
    },
  ];
  for (const tc of cases) {
    it(`${tc.name}: a connection authorized for one ID is never reused under another authorizer`, async () => {
      const port = ports[tc.server];
      const build = tc;
      // First request: the server is the authorized ID. Node's global agent keeps the socket alive and
      // caches the TLS session under a key that does not include checkServerIdentity.
      const ok = await get(port, build.make(serverId));
      assert.equal(ok.error, undefined);
      assert.equal(ok.status, 200);
      // Second request with an authorizer the server does not satisfy: must be refused, not served over the
      // pooled socket or a resumed session that skips checkServerIdentity.
      const refused = await get(port, build.make(otherId));
      assert.equal(refused.status, undefined);
      assert.equal(refused.error?.code, 'ERR_TLS_AUTHORIZATION_FAILED');
      assert.match(refused.error?.message ?? '', /unexpected ID "spiffe:\/\/a\.org\/server"/);
      // And a third request authorized for the server again still works (fresh connection).
      const again = await get(port, build.make(serverId));
      assert.equal(again.status, 200);
    });
  }
});
