import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { RemoteAttestationClient, X509Source } from '@tessera/spiffe/workloadapi';
import { TestCa } from '@tessera/testing';

/** A stand-in serverless API: checks the CSR with openssl (proof of possession) and issues from a TestCa. */
describe('remote attestation client', () => {
  const ca = TestCa.create({ trustDomain: 'example.org' });
  const tls = ca.issueX509Svid({ ipAddresses: ['127.0.0.1'] });
  let server: Server;
  let address: string;
  const seen: { body: Record<string, unknown>; path: string }[] = [];
  let deny = false;

  before(async () => {
    server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => {
        raw += c.toString();
      });
      req.on('end', () => {
        const body = JSON.parse(raw) as Record<string, unknown>;
        seen.push({ body, path: req.url ?? '' });
        res.setHeader('content-type', 'application/json');
        if (deny) {
          res.statusCode = 403;
          res.end(
            JSON.stringify({
              code: 'policy_denied',
              message: 'policy "p": gcp_iit: project_id "x" is not in allowedProjectIDs',
            }),
          );
          return;
        }
        const csr = Buffer.from(String(body.csr), 'base64');
        const v = spawnSync('openssl', ['req', '-inform', 'DER', '-verify', '-pubkey', '-noout'], {
          input: csr,
          encoding: 'utf8',
        });
        if (v.status !== 0) {
          res.statusCode = 400;
          res.end(JSON.stringify({ code: 'invalid_argument', message: `csr: ${v.stderr}` }));
          return;
        }
        const chain = ca.issueX509Svid({
          spiffeId: 'spiffe://example.org/fn',
          publicKey: createPublicKey(v.stdout),
        });
        res.end(
          JSON.stringify({
            spiffe_id: 'spiffe://example.org/fn',
            x509_svid: chain.certPem,
            bundle: ca.rootPem(),
            expires_at: 0,
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    address = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends a CSR whose key stays in the process and returns the SVID for it', async () => {
    const source = await X509Source.create({
      remote: { address, ca: ca.rootPem(), attestations: () => [{ type: 'gcp_iit', evidence: 'token-1' }] },
    });
    try {
      const svid = source.getX509Svid();
      assert.equal(svid.id.toString(), 'spiffe://example.org/fn');
      assert.ok(svid.certificates[0]?.checkPrivateKey(svid.privateKey));
      const last = seen.at(-1);
      assert.equal(last?.path, '/v1/remote/x509-svid');
      assert.deepEqual(last?.body.attestations, [{ type: 'gcp_iit', evidence: 'token-1' }]);
      assert.equal(typeof last?.body.csr, 'string');
      assert.ok(source.getX509BundleForTrustDomain(svid.id.trustDomain).hasX509Authority(ca.certificate));
    } finally {
      await source.close();
    }
  });

  it('rejects create with the server reason when attestation is denied', async () => {
    deny = true;
    try {
      await assert.rejects(
        X509Source.create({
          remote: { address, ca: ca.rootPem(), attestations: () => [{ type: 'gcp_iit', evidence: 't' }] },
        }),
        {
          code: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
          message: /^remote: attestation denied \(policy_denied: policy "p": gcp_iit: project_id "x"/,
        },
      );
    } finally {
      deny = false;
    }
  });

  it('refuses a server whose certificate does not carry the expected SPIFFE ID', async () => {
    const client = new RemoteAttestationClient({
      address,
      ca: ca.rootPem(),
      serverId: 'spiffe://example.org/spire/server',
      attestations: () => [{ type: 'gcp_iit', evidence: 't' }],
    });
    await assert.rejects(client.fetchX509Context(), {
      code: 'ERR_WORKLOADAPI_UNAVAILABLE',
      message: /server certificate is not for "spiffe:\/\/example.org\/spire\/server"/,
    });
  });

  const misuse: { name: string; make: () => unknown; message: RegExp }[] = [
    {
      name: 'an http address',
      make: () => new RemoteAttestationClient({ address: 'http://x', attestations: () => [] }),
      message: /must be https/,
    },
    {
      name: 'remote together with address',
      make: () =>
        X509Source.create({
          address: 'unix:///tmp/x.sock',
          remote: { address: 'https://x', attestations: () => [] },
        }),
      message: /pass either remote or client\/address\/clientOptions/,
    },
  ];
  for (const tc of misuse) {
    it(`throws TypeError for ${tc.name}`, async () => {
      await assert.rejects(async () => tc.make(), { name: 'TypeError', message: tc.message });
    });
  }
});
