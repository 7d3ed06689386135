import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { JwtSvid, X509Svid } from '@tessera/spiffe/svid';
import {
  authorizeId,
  authorizeMemberOf,
  createSpiffeHttpsAgent,
  createSpiffeHttpsServer,
  mtlsClientOptions,
  mtlsServerOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { JwtSource, X509Source } from '@tessera/spiffe/workloadapi';
import { startServerlessEndpoint } from './endpoint.js';
import { JwksRegistry } from './jwks.js';
import { parsePolicies } from './policy.js';
import { createServerlessService } from './service.js';
import { CapturingLogger, newTestCa, TestIssuer } from './test-support.js';

const FN_ID = 'spiffe://example.org/gcp/my-gcp-project-id/sales-api';

describe('remote X509Source and JwtSource against the serverless service', () => {
  const clock = { now: () => new Date() };
  const log = new CapturingLogger();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sl-remote-'));
  let gcp: TestIssuer;
  let caHandle: Awaited<ReturnType<typeof newTestCa>>;
  let endpoint: Awaited<ReturnType<typeof startServerlessEndpoint>>;
  let address: string;
  let bundlePem: string;
  let minted = 0;
  let project = 'my-gcp-project-id';

  const attestations = async () => {
    minted++;
    const token = await gcp.sign(
      {
        aud: 'spiffe://example.org',
        email: 'sales-api@my-gcp-project-id.iam.gserviceaccount.com',
        google: { compute_engine: { project_id: project } },
      },
      { now: new Date() },
    );
    return [{ type: 'gcp_iit', evidence: token }];
  };

  before(async () => {
    gcp = await TestIssuer.start();
    caHandle = await newTestCa('example.org');
    const policyText = `section: ServerlessAttestation
schema: v1
spec:
  policies:
  - name: gcp
    svidPolicy:
      pathTemplate: "/gcp/{{gcp_iit.project_id}}/{{gcp_iit.service_account.id}}"
    requiredAttestors:
    - type: gcp_iit
      config: { issuer: "${gcp.issuer}", caFile: "${gcp.caFile}", allowedProjectIDs: [my-gcp-project-id] }
`;
    writeFileSync(join(dir, 'p.yaml'), policyText);
    const policies = parsePolicies(policyText, {
      trustDomain: caHandle.trustDomain,
      jwks: new JwksRegistry({ clock }),
      clock,
    });
    const service = createServerlessService({
      ca: caHandle.ca,
      trustDomain: caHandle.trustDomain,
      policies,
      logger: log,
      clock,
      x509SvidTtlSeconds: 4,
    });
    // The listener serves the server's own SVID; clients authenticate it with the bundle and its SPIFFE ID.
    endpoint = await startServerlessEndpoint({
      service,
      bindAddress: '127.0.0.1',
      bindPort: 0,
      tls: { serverSvid: caHandle.ca, ttlSeconds: 3600 },
      logger: log,
      clock,
    });
    address = `https://127.0.0.1:${endpoint.port}`;
    bundlePem = caHandle.ca.bundle().x509Bundle().marshal();
  });

  after(async () => {
    await endpoint.close();
    await caHandle.close();
    await gcp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets the function identity and uses it with the TLS helpers to call an mTLS service', async () => {
    const source = await X509Source.create({
      remote: { address, attestations, ca: bundlePem, serverId: 'spiffe://example.org/spire/server' },
    });
    try {
      assert.equal(source.getX509Svid().id.toString(), FN_ID);
      // An mTLS service of the same trust domain with an SVID from the same CA.
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const signed = caHandle.ca.signX509Svid({
        spiffeId: 'spiffe://example.org/api',
        publicKey,
        ttlSeconds: 600,
      });
      const apiSvid = X509Svid.parse(
        signed.chain.map((d) => new X509Certificate(d).toString()).join(''),
        privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      );
      const bundle = caHandle.ca.bundle().x509Bundle();
      const api = createSpiffeHttpsServer(
        mtlsServerOptions(apiSvid, bundle, authorizeMemberOf(caHandle.trustDomain)),
        {},
        (req, res) => res.end(`hello ${peerIdFromSocket(req.socket as TLSSocket)}`),
      );
      await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
      try {
        const agent = createSpiffeHttpsAgent(() =>
          mtlsClientOptions(source, source, authorizeId(SpiffeId.require('spiffe://example.org/api'))),
        );
        const body = await new Promise<string>((resolve, reject) => {
          get({ host: '127.0.0.1', port: (api.address() as AddressInfo).port, path: '/', agent }, (res) => {
            let s = '';
            res.on('data', (c: Buffer) => {
              s += c.toString();
            });
            res.on('end', () => resolve(s));
          }).on('error', reject);
        });
        assert.equal(body, `hello ${FN_ID}`);
      } finally {
        await new Promise<void>((r) => api.close(() => r()));
      }
    } finally {
      await source.close();
    }
  });

  it('re-attests at half of the SVID lifetime with a new key', async () => {
    const source = await X509Source.create({
      remote: { address, attestations, ca: bundlePem, serverId: 'spiffe://example.org/spire/server' },
    });
    try {
      const first = source.getX509Svid();
      const before = minted;
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no update within 6 s')), 6000);
        const off = source.onUpdate(() => {
          clearTimeout(t);
          off();
          resolve();
        });
      });
      const second = source.getX509Svid();
      assert.equal(second.id.toString(), FN_ID);
      assert.notEqual(second.certificates[0]?.serialNumber, first.certificates[0]?.serialNumber);
      assert.equal(second.privateKey.equals(first.privateKey), false);
      assert.ok(minted > before, 'fresh attestations were produced');
    } finally {
      await source.close();
    }
  });

  it('mints JWT-SVIDs and keeps the JWT bundle by remote attestation', async () => {
    const source = await JwtSource.create({
      remote: { address, attestations, ca: bundlePem, serverId: 'spiffe://example.org/spire/server' },
    });
    try {
      const svid = await source.fetchJwtSvid({ audience: 'spiffe://example.org/db' });
      assert.equal(svid.id.toString(), FN_ID);
      const checked = await JwtSvid.parseAndValidate(svid.marshal(), source, ['spiffe://example.org/db']);
      assert.equal(checked.id.toString(), FN_ID);
    } finally {
      await source.close();
    }
  });

  it('fails create with the denial reason when attestation is refused', async () => {
    project = 'other-project';
    try {
      await assert.rejects(
        X509Source.create({
          remote: { address, attestations, ca: bundlePem, serverId: 'spiffe://example.org/spire/server' },
        }),
        {
          code: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
          message:
            /remote: attestation denied \(policy_denied: .*project_id "other-project" is not in allowedProjectIDs\)/,
        },
      );
    } finally {
      project = 'my-gcp-project-id';
    }
  });

  it('refuses a server that does not present the expected SPIFFE ID', async () => {
    await assert.rejects(
      X509Source.create({
        remote: { address, attestations, ca: bundlePem, serverId: 'spiffe://example.org/not-the-server' },
        signal: AbortSignal.timeout(1500),
      }),
    );
  });
});
