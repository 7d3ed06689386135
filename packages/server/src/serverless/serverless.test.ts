import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Client, credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import {
  type JWTSVIDRequest,
  type JWTSVIDResponse,
  RemoteAttestationService,
} from '@tessera/common/api/gen/tessera/api/serverless/v1/serverless';
import { buildCsr } from '@tessera/common/x509';
import { BundleSet } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { JwtSvid, verifyX509Svid } from '@tessera/spiffe/svid';
import { TestCa } from '@tessera/testing';
import { startServerlessEndpoint } from './endpoint.js';
import { JwksRegistry } from './jwks.js';
import { compilePolicies, parsePolicies } from './policy.js';
import { PolicyFile } from './policy-file.js';
import { createServerlessService, type ServerlessCa } from './service.js';
import { CapturingLogger, newTestCa, SettableClock, TestIssuer } from './test-support.js';

const SA = 'sales-api@my-gcp-project-id.iam.gserviceaccount.com';
const TD_ID = 'spiffe://example.org';

function gcpClaims(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aud: TD_ID,
    azp: '110000000000000000001',
    sub: '110000000000000000001',
    email: SA,
    email_verified: true,
    google: {
      compute_engine: {
        project_id: 'my-gcp-project-id',
        project_number: 123456789012,
        zone: 'us-central1-a',
        instance_id: '4242424242424242',
        instance_name: 'sales-api-vm',
      },
    },
    ...over,
  };
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

describe('serverless remote attestation', () => {
  const clock = new SettableClock();
  const log = new CapturingLogger();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sl-'));
  let gcp: TestIssuer;
  let aws: TestIssuer;
  let azure: TestIssuer;
  let caHandle: Awaited<ReturnType<typeof newTestCa>>;
  let issued = 0;
  let policyFile: PolicyFile;
  let endpoint: Awaited<ReturnType<typeof startServerlessEndpoint>>;
  let tlsRoot: string;
  const policyPath = join(dir, 'policies.yaml');
  const reloads: { ok: boolean; error?: Error }[] = [];

  function policyYaml(gcpTemplate = '/gcp/{{gcp_iit.project_id}}/{{gcp_iit.service_account.id}}'): string {
    return `section: ServerlessAttestation
schema: v1
spec:
  policies:
  - name: gcp-sandbox
    svidPolicy:
      pathTemplate: "${gcpTemplate}"
    requiredAttestors:
    - type: gcp_iit
      config:
        allowNonComputeTokens: true
        allowedProjectIDs: ["my-gcp-project-id"]
        issuer: "${gcp.issuer}"
        caFile: "${gcp.caFile}"
  - name: aws-prod
    svidPolicy:
      pathTemplate: "/aws/{{aws_token.account.id}}/{{aws_token.principal_tags.team}}"
    requiredAttestors:
    - type: aws_token
      config:
        issuer: "${aws.issuer}"
        caFile: "${aws.caFile}"
        allowedAccountIDs: ["123456789012"]
  - name: azure
    svidPolicy:
      pathTemplate: "/azure/{{azure_msi.tenant.id}}/{{azure_msi.principal.id}}"
    requiredAttestors:
    - type: azure_msi
      config:
        caFile: "${azure.caFile}"
        tenants:
        - tenantID: tenant-1
          principalID: principal-a
          issuer: "${azure.issuer}"
`;
  }

  async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: endpoint.port,
          path,
          method: 'POST',
          ca: tlsRoot,
          agent: false,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(text),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              body: raw === '' ? {} : (JSON.parse(raw) as Record<string, unknown>),
            });
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  before(async () => {
    gcp = await TestIssuer.start();
    aws = await TestIssuer.start({ alg: 'ES384' });
    azure = await TestIssuer.start({ issuerPath: '/tenant-1/', alg: 'ES256' });
    caHandle = await newTestCa('example.org', clock);
    const real = caHandle.ca;
    const ca: ServerlessCa = {
      signX509Svid: (r) => {
        issued++;
        return real.signX509Svid(r);
      },
      mintJwtSvid: (r) => {
        issued++;
        return real.mintJwtSvid(r);
      },
      bundle: () => real.bundle(),
    };
    writeFileSync(policyPath, policyYaml());
    const jwks = new JwksRegistry({ clock });
    policyFile = await PolicyFile.load({
      path: policyPath,
      trustDomain: caHandle.trustDomain,
      jwks,
      clock,
      logger: log,
      debounceMs: 50,
      onReload: (r) => reloads.push(r),
    });
    const service = createServerlessService({
      ca,
      trustDomain: caHandle.trustDomain,
      policies: policyFile,
      logger: log,
      clock,
      x509SvidTtlSeconds: 600,
    });
    const web = TestCa.create({ trustDomain: 'web.test' });
    const leaf = web.issueX509Svid({ ipAddresses: ['127.0.0.1'] });
    const files = web.writePemFiles(join(dir, 'tls'), leaf);
    tlsRoot = web.rootPem();
    endpoint = await startServerlessEndpoint({
      service,
      bindAddress: '127.0.0.1',
      bindPort: 0,
      tls: { certFile: files.certFile ?? '', keyFile: files.keyFile ?? '' },
      rateLimit: 1000,
      maxBodyBytes: 32 * 1024,
      logger: log,
      clock,
    });
  });

  after(async () => {
    await endpoint.close();
    policyFile.close();
    await caHandle.close();
    await Promise.all([gcp.close(), aws.close(), azure.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('issues the templated SVID of the issue example and a generated key when no CSR is sent', async () => {
    const token = await gcp.sign(gcpClaims(), { now: clock.now() });
    const r = await post('/v1/remote/x509-svid', { attestations: [{ type: 'gcp_iit', evidence: token }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.spiffe_id, 'spiffe://example.org/gcp/my-gcp-project-id/sales-api');
    assert.match(String(r.body.x509_svid_key), /^-----BEGIN PRIVATE KEY-----/);
    const chain = String(r.body.x509_svid)
      .split(/(?=-----BEGIN CERTIFICATE-----)/)
      .map((p) => new X509Certificate(p));
    const bundles = new BundleSet();
    bundles.add(caHandle.ca.bundle().x509Bundle());
    const v = await verifyX509Svid(chain, bundles, { now: clock.now() });
    assert.equal(v.id.toString(), 'spiffe://example.org/gcp/my-gcp-project-id/sales-api');
    assert.equal(typeof r.body.expires_at, 'number');
    assert.match(String(r.body.bundle), /^-----BEGIN CERTIFICATE-----/);
    const grant = log.audits().at(-1);
    assert.equal(grant?.decision, 'grant');
    assert.equal(grant?.policy, 'gcp-sandbox');
    assert.ok(!JSON.stringify(log.lines).includes(token), 'the token is never logged');
  });

  it('keeps the key with the workload when a CSR is sent', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr(privateKey).toString('base64');
    const token = await gcp.sign(gcpClaims(), { now: clock.now() });
    const r = await post('/v1/remote/x509-svid', {
      attestations: [{ type: 'gcp_iit', evidence: token }],
      csr,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal('x509_svid_key' in r.body, false);
    const leaf = new X509Certificate(
      String(r.body.x509_svid).split(/(?=-----BEGIN CERTIFICATE-----)/)[0] ?? '',
    );
    assert.ok(leaf.publicKey.equals(publicKey));
  });

  it('accepts Cloud Run tokens without compute_engine claims when allowNonComputeTokens is set', async () => {
    const token = await gcp.sign(gcpClaims({ google: undefined }), { now: clock.now() });
    const r = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'gcp_iit', evidence: token }],
      audience: ['spiffe://example.org/db'],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const svid = await JwtSvid.parseAndValidate(
      String(r.body.token),
      caHandle.ca.bundle().jwtBundle(),
      ['spiffe://example.org/db'],
      {
        now: clock.now(),
      },
    );
    assert.equal(svid.id.toString(), 'spiffe://example.org/gcp/my-gcp-project-id/sales-api');
  });

  const denials: {
    name: string;
    make: () => Promise<unknown>;
    status: number;
    code: string;
    message: RegExp;
  }[] = [
    {
      name: 'a token of another project',
      make: async () => [
        {
          type: 'gcp_iit',
          evidence: await gcp.sign(
            gcpClaims({ google: { compute_engine: { project_id: 'other-project' } } }),
            { now: clock.now() },
          ),
        },
      ],
      status: 403,
      code: 'policy_denied',
      message: /policy "gcp-sandbox": gcp_iit: project_id "other-project" is not in allowedProjectIDs/,
    },
    {
      name: 'an expired token',
      make: async () => [
        {
          type: 'gcp_iit',
          evidence: await gcp.sign(gcpClaims(), { now: new Date(clock.t - 3600_000), lifetime: 600 }),
        },
      ],
      status: 403,
      code: 'attestation_failed',
      message: /gcp_iit: token has expired/,
    },
    {
      name: 'a token for another audience',
      make: async () => [
        {
          type: 'gcp_iit',
          evidence: await gcp.sign(gcpClaims({ aud: 'spiffe://other.org' }), { now: clock.now() }),
        },
      ],
      status: 403,
      code: 'attestation_failed',
      message: /gcp_iit: token audience does not include "spiffe:\/\/example.org"/,
    },
    {
      name: 'a token with a bad signature',
      make: async () => [
        {
          type: 'gcp_iit',
          evidence: await gcp.sign(gcpClaims(), {
            now: clock.now(),
            signWith: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
          }),
        },
      ],
      status: 403,
      code: 'attestation_failed',
      message: /^policy "gcp-sandbox": gcp_iit: token signature could not be verified$/,
    },
    {
      name: 'an unsigned token (alg none)',
      make: async () => [{ type: 'gcp_iit', evidence: gcp.unsigned(gcpClaims(), clock.now()) }],
      status: 403,
      code: 'attestation_failed',
      message: /gcp_iit: token algorithm "none" is not allowed/,
    },
    {
      name: 'an HS256 token keyed with the public key',
      make: async () => [{ type: 'gcp_iit', evidence: gcp.hmac(gcpClaims(), clock.now()) }],
      status: 403,
      code: 'attestation_failed',
      message: /gcp_iit: token algorithm "HS256" is not allowed/,
    },
    {
      name: 'a token of another issuer',
      make: async () => [
        {
          type: 'gcp_iit',
          evidence: await gcp.sign(gcpClaims({ iss: 'https://accounts.google.com' }), { now: clock.now() }),
        },
      ],
      status: 403,
      code: 'attestation_failed',
      message: /gcp_iit: token issuer is not the configured issuer/,
    },
    {
      name: 'a token issued in the future',
      make: async () => [
        {
          type: 'gcp_iit',
          evidence: await gcp.sign(gcpClaims({ iat: Math.floor(clock.t / 1000) + 300 }), {
            now: clock.now(),
          }),
        },
      ],
      status: 403,
      code: 'attestation_failed',
      message: /gcp_iit: token is issued in the future/,
    },
    {
      name: 'an unknown attestor type',
      make: async () => [{ type: 'k8s_psat', evidence: 'x.y.z' }],
      status: 403,
      code: 'unknown_attestor',
      message: /attestation type "k8s_psat" is not supported/,
    },
    {
      name: 'an AWS token of an account that is not allowed',
      make: async () => [
        {
          type: 'aws_token',
          evidence: await aws.sign(
            {
              aud: TD_ID,
              sub: 'arn:aws:iam::999999999999:role/x',
              'https://sts.amazonaws.com/': { aws_account: '999999999999' },
            },
            { now: clock.now() },
          ),
        },
      ],
      status: 403,
      code: 'policy_denied',
      message: /aws_token: account.id "999999999999" is not in allowedAccountIDs/,
    },
    {
      name: 'an Azure token of another principal',
      make: async () => [
        {
          type: 'azure_msi',
          evidence: await azure.sign(
            { aud: TD_ID, tid: 'tenant-1', oid: 'principal-b' },
            { now: clock.now() },
          ),
        },
      ],
      status: 403,
      code: 'policy_denied',
      message: /azure_msi: principal.id "principal-b" is not the principalID of tenant "tenant-1"/,
    },
  ];
  for (const tc of denials) {
    it(`denies ${tc.name} with its reason and issues nothing`, async () => {
      const before = issued;
      const r = await post('/v1/remote/x509-svid', { attestations: await tc.make() });
      assert.equal(r.status, tc.status, JSON.stringify(r.body));
      assert.equal(r.body.code, tc.code);
      assert.match(String(r.body.message), tc.message);
      assert.equal(issued, before);
      const audit = log.audits().at(-1);
      assert.equal(audit?.decision, 'deny');
      assert.equal(audit?.code, tc.code);
    });
  }

  it('accepts a token once, also when ten requests race with it', async () => {
    const token = await gcp.sign(gcpClaims(), { now: clock.now() });
    const body = { attestations: [{ type: 'gcp_iit', evidence: token }], audience: ['x'] };
    const before = issued;
    const replies = await Promise.all(Array.from({ length: 10 }, () => post('/v1/remote/jwt-svid', body)));
    assert.equal(replies.filter((r) => r.status === 200).length, 1);
    for (const r of replies.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 403);
      assert.equal(r.body.code, 'replayed');
      assert.match(String(r.body.message), /token was already used/);
    }
    assert.equal(issued, before + 1);
    const again = await post('/v1/remote/jwt-svid', body);
    assert.equal(again.body.code, 'replayed');
  });

  it('renders AWS principal tags and Azure tenant/principal attributes into the ID', async () => {
    const awsToken = await aws.sign(
      {
        aud: TD_ID,
        sub: 'arn:aws:iam::123456789012:role/DataProcessing',
        'https://sts.amazonaws.com/': {
          aws_account: '123456789012',
          org_id: 'o-abc',
          principal_tags: { team: 'payments' },
        },
      },
      { now: clock.now() },
    );
    const a = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'aws_token', evidence: awsToken }],
      audience: ['x'],
    });
    assert.equal(a.body.spiffe_id, 'spiffe://example.org/aws/123456789012/payments');
    const azToken = await azure.sign(
      { aud: TD_ID, tid: 'tenant-1', oid: 'principal-a' },
      { now: clock.now() },
    );
    const z = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'azure_msi', evidence: azToken }],
      audience: ['x'],
    });
    assert.equal(z.body.spiffe_id, 'spiffe://example.org/azure/tenant-1/principal-a');
  });

  it('denies a rendering that is not a valid SPIFFE ID path', async () => {
    const token = await aws.sign(
      {
        aud: TD_ID,
        sub: 'arn:aws:iam::123456789012:role/x',
        'https://sts.amazonaws.com/': { aws_account: '123456789012', principal_tags: { team: 'a/b' } },
      },
      { now: clock.now() },
    );
    const r = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'aws_token', evidence: token }],
      audience: ['x'],
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, 'policy_denied');
    assert.match(
      String(r.body.message),
      /attribute aws_token.principal_tags.team value "a\/b" contains "\/"/,
    );
  });

  it('refetches the JWKS when a token names a key it does not know yet', async () => {
    const k = await gcp.rotate('ES256');
    const token = await gcp.sign(gcpClaims(), { now: clock.now(), key: k });
    const before = gcp.jwksRequests;
    const r = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'gcp_iit', evidence: token }],
      audience: ['x'],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(gcp.jwksRequests, before + 1);
    // Unknown kids do not trigger a second fetch within the refresh interval.
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const bad = await gcp.sign(gcpClaims(), {
      now: clock.now(),
      key: { ...k, kid: 'unknown-kid' },
      signWith: stranger,
    });
    const d = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'gcp_iit', evidence: bad }],
      audience: ['x'],
    });
    assert.equal(d.status, 403);
    assert.equal(gcp.jwksRequests, before + 1);
  });

  const malformed: {
    name: string;
    body: unknown;
    path?: string;
    status: number;
    code: string;
    message: RegExp;
  }[] = [
    {
      name: 'a body that is not JSON',
      body: '{nope',
      status: 400,
      code: 'invalid_argument',
      message: /body: must be a JSON object/,
    },
    {
      name: 'missing attestations',
      body: {},
      status: 400,
      code: 'invalid_argument',
      message: /^attestations: must be a non-empty list/,
    },
    {
      name: 'an attestation without evidence',
      body: { attestations: [{ type: 'gcp_iit' }] },
      status: 400,
      code: 'invalid_argument',
      message: /attestations\[0\].evidence/,
    },
    {
      name: 'an unknown field',
      body: { attestations: [], extra: 1 },
      status: 400,
      code: 'invalid_argument',
      message: /^extra: unknown field/,
    },
    {
      name: 'a CSR that is not base64',
      body: { attestations: [{ type: 'gcp_iit', evidence: 'a' }], csr: '***' },
      status: 400,
      code: 'invalid_argument',
      message: /^csr: must be base64/,
    },
    {
      name: 'a CSR that does not parse',
      body: { attestations: [{ type: 'gcp_iit', evidence: 'a' }], csr: 'AAAA' },
      status: 400,
      code: 'invalid_argument',
      message: /^csr: /,
    },
    {
      name: 'a JWT request without audience',
      path: '/v1/remote/jwt-svid',
      body: { attestations: [{ type: 'gcp_iit', evidence: 'a' }] },
      status: 400,
      code: 'invalid_argument',
      message: /^audience: must be a non-empty list/,
    },
    {
      name: 'a body over the size limit',
      body: { attestations: [{ type: 'gcp_iit', evidence: 'a'.repeat(40_000) }] },
      status: 413,
      code: 'too_large',
      message: /larger than 32768 bytes/,
    },
  ];
  for (const tc of malformed) {
    it(`answers ${tc.status} to ${tc.name}`, async () => {
      const r = await post(tc.path ?? '/v1/remote/x509-svid', tc.body);
      assert.equal(r.status, tc.status, JSON.stringify(r.body));
      assert.equal(r.body.code, tc.code);
      assert.match(String(r.body.message), tc.message);
    });
  }

  it('serves the same over gRPC', async () => {
    const Ctor = makeGenericClientConstructor(RemoteAttestationService, 'RemoteAttestation');
    const client = new Ctor(
      `127.0.0.1:${endpoint.port}`,
      credentials.createSsl(Buffer.from(tlsRoot)),
    ) as unknown as Client & {
      fetchJwtsvid(req: JWTSVIDRequest, cb: (err: ServiceError | null, res: JWTSVIDResponse) => void): void;
    };
    try {
      const token = await gcp.sign(gcpClaims(), { now: clock.now() });
      const res = await new Promise<{ spiffeId: string; token: string }>((resolve, reject) =>
        client.fetchJwtsvid(
          { attestations: [{ type: 'gcp_iit', evidence: token }], audience: ['grpc'] },
          (err, r) => (err ? reject(err) : resolve(r)),
        ),
      );
      assert.equal(res.spiffeId, 'spiffe://example.org/gcp/my-gcp-project-id/sales-api');
      const denied = await new Promise<ServiceError>((resolve) =>
        client.fetchJwtsvid(
          { attestations: [{ type: 'gcp_iit', evidence: token }], audience: ['grpc'] },
          (err) => resolve(err as ServiceError),
        ),
      );
      assert.equal(denied.code, 7);
      assert.match(
        denied.details,
        /^replayed: policy "gcp-sandbox": gcp_iit: token was already used|^replayed: .*already used/,
      );
    } finally {
      client.close();
    }
  });

  it('reloads changed policies and keeps the old ones when the new file is invalid', async () => {
    const wait = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const t0 = Date.now();
        const tick = () =>
          reloads.length >= n
            ? resolve()
            : Date.now() - t0 > 5000
              ? reject(new Error('no reload'))
              : setTimeout(tick, 20);
        tick();
      });
    const n = reloads.length;
    writeFileSync(policyPath, policyYaml('/fn/{{gcp_iit.service_account.id}}'));
    await wait(n + 1);
    assert.equal(reloads.at(-1)?.ok, true);
    const t1 = await gcp.sign(gcpClaims(), { now: clock.now() });
    const r1 = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'gcp_iit', evidence: t1 }],
      audience: ['x'],
    });
    assert.equal(r1.body.spiffe_id, 'spiffe://example.org/fn/sales-api');
    writeFileSync(policyPath, policyYaml('/fn/{{gcp_iit.nope}}'));
    await wait(n + 2);
    assert.equal(reloads.at(-1)?.ok, false);
    assert.match(String(reloads.at(-1)?.error?.message), /gcp_iit has no attribute "nope"/);
    assert.ok(log.lines.some((l) => l.level === 'error' && /keeping the current policies/.test(l.msg)));
    const t2 = await gcp.sign(gcpClaims(), { now: clock.now() });
    const r2 = await post('/v1/remote/jwt-svid', {
      attestations: [{ type: 'gcp_iit', evidence: t2 }],
      audience: ['x'],
    });
    assert.equal(r2.body.spiffe_id, 'spiffe://example.org/fn/sales-api');
  });
});

describe('policy validation', () => {
  const ctx = () => ({
    trustDomain: TrustDomain.fromString('example.org'),
    jwks: new JwksRegistry({ clock: new SettableClock() }),
    clock: new SettableClock(),
  });

  it('reports every problem of a policy file with its path', () => {
    const doc = {
      section: 'Serverless',
      schema: 'v2',
      spec: {
        policies: [
          {
            name: 'a',
            svidPolicy: { pathTemplate: '/x/{{gcp_iit.zone}}/{{aws_token.account.id}}/{{gcp_iit.nope}}' },
            requiredAttestors: [
              { type: 'gcp_iit', config: { allowedProjectIDs: 'p', bogus: 1, jwksUri: 'http://x' } },
            ],
          },
          { name: 'a', svidPolicy: { pathTemplate: 'rel/{{k8s.ns}}' }, requiredAttestors: [{ type: 'k8s' }] },
          {
            name: 'b',
            svidPolicy: { pathTemplate: '/a//{{aws_token.principal}}' },
            requiredAttestors: [{ type: 'aws_token', config: {} }],
          },
          {
            name: 'c',
            svidPolicy: { pathTemplate: '/{{azure_msi.tenant.id}}' },
            requiredAttestors: [{ type: 'azure_msi', config: { tenants: [{ principalID: 'p' }] } }],
          },
        ],
      },
    };
    const r = compilePolicies(doc, ctx());
    assert.ok(r.issues);
    const got = r.issues.map((i) => `${i.path}: ${i.message}`);
    const expected = [
      /^section: must be "ServerlessAttestation"/,
      /^schema: must be "v1"/,
      /^spec\.policies\[0\]\.requiredAttestors\[0\]\.config\.jwksUri: must be an https URL/,
      /^spec\.policies\[0\]\.requiredAttestors\[0\]\.config\.allowedProjectIDs: must be a non-empty list/,
      /^spec\.policies\[0\]\.requiredAttestors\[0\]\.config\.bogus: unknown key/,
      /^spec\.policies\[0\]\.svidPolicy\.pathTemplate: uses \{\{aws_token\.account\.id\}\} but aws_token is not a required attestor/,
      /^spec\.policies\[0\]\.svidPolicy\.pathTemplate: uses \{\{gcp_iit\.nope\}\} but gcp_iit has no attribute "nope"/,
      /^spec\.policies\[1\]\.name: "a" is used by another policy/,
      /^spec\.policies\[1\]\.requiredAttestors\[0\]\.type: unknown attestor type "k8s"/,
      /^spec\.policies\[1\]\.svidPolicy\.pathTemplate: must start with "\/"/,
      /^spec\.policies\[2\]\.requiredAttestors\[0\]\.config\.issuer: is required/,
      /^spec\.policies\[2\]\.svidPolicy\.pathTemplate: does not render a valid SPIFFE ID path/,
      /^spec\.policies\[3\]\.requiredAttestors\[0\]\.config\.tenants\[0\]\.tenantID: is required/,
    ];
    for (const re of expected)
      assert.ok(
        got.some((g) => re.test(g)),
        `missing ${re} in\n${got.join('\n')}`,
      );
    assert.throws(() => parsePolicies('section: [', ctx()), {
      code: 'ERR_CONFIG_INVALID',
      message: /serverless: policy file is not valid YAML/,
    });
  });
});
