/** serverless: remote attestation against the built server with a test OIDC issuer over HTTPS. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestCa } from '@tessera/testing';
import { exportJWK, SignJWT } from 'jose';
import { TesseraServer } from '../../harness/server.js';

const SERVER_ID = 'spiffe://example.org/spire/server';

describe('serverless: platform tokens exchanged for SVIDs by the built server', () => {
  let server: TesseraServer<'serverless'>;
  let issuerServer: Server;
  let issuer: string;
  let signingKey: KeyObject;
  let kid: string;
  let slPort: number;
  let bundlePem: string;
  let cleanupDir = '';

  async function token(
    claims: Record<string, unknown>,
    opts: { iat?: number; key?: KeyObject; alg?: string } = {},
  ): Promise<string> {
    const iat = opts.iat ?? Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: issuer,
      aud: 'spiffe://example.org',
      iat,
      exp: iat + 600,
      jti: randomUUID(),
      email: 'sales-api@my-gcp-project-id.iam.gserviceaccount.com',
      google: { compute_engine: { project_id: 'my-gcp-project-id', zone: 'europe-west1-b' } },
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid })
      .sign(opts.key ?? signingKey);
  }

  function post(body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const text = JSON.stringify(body);
    const once = () =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: slPort,
            path: '/v1/remote/x509-svid',
            method: 'POST',
            agent: false,
            ca: bundlePem,
            // The serving certificate is the server's SVID: check its SPIFFE ID instead of a host name.
            checkServerIdentity: (_h, cert) =>
              cert.subjectaltname === `URI:${SERVER_ID}`
                ? undefined
                : new Error(`unexpected server ${cert.subjectaltname}`),
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
          },
          (res) => {
            let s = '';
            res.on('data', (c: Buffer) => {
              s += c.toString();
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(s) as Record<string, unknown> }),
            );
          },
        );
        req.on('error', reject);
        req.end(text);
      });
    return (async () => {
      for (let i = 0; ; i++) {
        try {
          return await once();
        } catch (err) {
          if (i >= 50 || (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED') throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
  }

  before(async () => {
    const tlsCa = TestCa.create({ trustDomain: 'issuer.test' });
    const leaf = tlsCa.issueX509Svid({ ipAddresses: ['127.0.0.1'] });
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    signingKey = pair.privateKey;
    kid = randomUUID();
    const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'RS256', use: 'sig' };
    issuerServer = createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration')
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      else if (req.url === '/jwks') res.end(JSON.stringify({ keys: [jwk] }));
      else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', () => r()));
    issuer = `https://127.0.0.1:${(issuerServer.address() as { port: number }).port}`;

    const base = await mkdtemp(join(tmpdir(), 'tessera-sl-it-'));
    cleanupDir = base;
    const caFile = join(base, 'issuer-ca.pem');
    await writeFile(caFile, tlsCa.rootPem());
    const policyFile = join(base, 'policies.yaml');
    await writeFile(
      policyFile,
      `section: ServerlessAttestation
schema: v1
spec:
  policies:
  - name: gcp-sandbox
    svidPolicy:
      pathTemplate: "/gcp/{{gcp_iit.project_id}}/{{gcp_iit.service_account.id}}"
    requiredAttestors:
    - type: gcp_iit
      config:
        allowNonComputeTokens: true
        allowedProjectIDs: ["my-gcp-project-id"]
        issuer: "${issuer}"
        caFile: "${caFile}"
`,
    );
    // The server cannot bind port 0: the harness picks the serverless port, and picks it again when it is taken
    // before the server binds it.
    server = await TesseraServer.start({
      freePorts: ['serverless'],
      config: (ports) => ({
        serverless: { bind_address: '127.0.0.1', bind_port: ports.serverless, policy_file: policyFile },
      }),
    });
    slPort = server.ports.serverless;
    const b = await server.cli(['bundle', 'show']);
    assert.equal(b.code, 0, b.stderr);
    bundlePem = b.stdout;
    await writeFile(join(server.dir, 'bundle.pem'), bundlePem);
  });

  after(async () => {
    await server?.stop();
    await new Promise<void>((r) => (issuerServer ? issuerServer.close(() => r()) : r()));
    if (cleanupDir !== '') await rm(cleanupDir, { recursive: true, force: true });
  });

  it('01 issues the templated SVID, which verifies against the bundle', async () => {
    const r = await post({ attestations: [{ type: 'gcp_iit', evidence: await token({}) }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.spiffe_id, 'spiffe://example.org/gcp/my-gcp-project-id/sales-api');
    const svidFile = join(server.dir, 'fn-svid.pem');
    await writeFile(svidFile, String(r.body.x509_svid));
    const v = spawnSync('openssl', ['verify', '-CAfile', join(server.dir, 'bundle.pem'), svidFile], {
      encoding: 'utf8',
    });
    assert.equal(v.status, 0, `${v.stdout}${v.stderr}`);
    const text = spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', svidFile], {
      encoding: 'utf8',
    });
    assert.match(text.stdout, /URI:spiffe:\/\/example\.org\/gcp\/my-gcp-project-id\/sales-api/);
  });

  const replayed = { token: '' };
  const cases: { name: string; attestations: () => Promise<unknown>; code: string; message: RegExp }[] = [
    {
      name: 'wrong project',
      attestations: async () => [
        {
          type: 'gcp_iit',
          evidence: await token({ google: { compute_engine: { project_id: 'other-project' } } }),
        },
      ],
      code: 'policy_denied',
      message: /project_id "other-project" is not in allowedProjectIDs/,
    },
    {
      name: 'expired token',
      attestations: async () => [
        { type: 'gcp_iit', evidence: await token({}, { iat: Math.floor(Date.now() / 1000) - 3600 }) },
      ],
      code: 'attestation_failed',
      message: /token has expired/,
    },
    {
      name: 'replayed token',
      attestations: async () => {
        replayed.token = await token({});
        const first = await post({ attestations: [{ type: 'gcp_iit', evidence: replayed.token }] });
        assert.equal(first.status, 200);
        return [{ type: 'gcp_iit', evidence: replayed.token }];
      },
      code: 'replayed',
      message: /token was already used/,
    },
    {
      name: 'wrong audience',
      attestations: async () => [
        { type: 'gcp_iit', evidence: await token({ aud: 'spiffe://elsewhere.org' }) },
      ],
      code: 'attestation_failed',
      message: /token audience does not include "spiffe:\/\/example\.org"/,
    },
    {
      name: 'bad signature',
      attestations: async () => [
        {
          type: 'gcp_iit',
          evidence: await token({}, { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey }),
        },
      ],
      code: 'attestation_failed',
      message: /token signature could not be verified$/,
    },
    {
      name: 'alg none',
      attestations: async () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const iat = Math.floor(Date.now() / 1000);
        const payload = {
          iss: issuer,
          aud: 'spiffe://example.org',
          iat,
          exp: iat + 600,
          email: 'sales-api@my-gcp-project-id.iam.gserviceaccount.com',
        };
        return [{ type: 'gcp_iit', evidence: `${enc({ alg: 'none', kid })}.${enc(payload)}.` }];
      },
      code: 'attestation_failed',
      message: /token algorithm "none" is not allowed/,
    },
    {
      name: 'unknown attestor type',
      attestations: async () => [{ type: 'tpm_devid', evidence: 'e30.e30.' }],
      code: 'unknown_attestor',
      message: /attestation type "tpm_devid" is not supported/,
    },
  ];
  let n = 2;
  for (const tc of cases) {
    const step = String(n++).padStart(2, '0');
    it(`${step} denies a ${tc.name} with its reason and issues nothing`, async () => {
      const r = await post({ attestations: await tc.attestations() });
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.equal(r.body.code, tc.code);
      assert.match(String(r.body.message), tc.message);
      assert.equal(r.body.x509_svid, undefined);
      assert.equal(r.body.x509_svid_key, undefined);
    });
  }
});
