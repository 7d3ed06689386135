/**
 * Runs the compiled serverless-function example as a child process against the real serverless service of
 * tessera-server (in process; its CA an intermediate under a TestCa root through the disk upstream authority),
 * a test OIDC issuer over HTTPS, and an mTLS service whose SVID the TestCa root issued directly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  type CaManager,
  createCaManager,
  createDiskUpstreamAuthority,
} from '@tessera/server/dist/ca/index.js';
import type { Datastore } from '@tessera/server/dist/datastore/datastore.js';
import { openDatastore } from '@tessera/server/dist/datastore/index.js';
import { createMemoryKeyManager } from '@tessera/server/dist/keymanager/memory.js';
import {
  createServerlessService,
  JwksRegistry,
  parsePolicies,
  type ServerlessEndpoint,
  startServerlessEndpoint,
} from '@tessera/server/dist/serverless/index.js';
import { CapturingLogger, TestIssuer } from '@tessera/server/dist/serverless/test-support.js';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { X509Svid } from '@tessera/spiffe/svid';
import {
  authorizeId,
  createSpiffeHttpsServer,
  mtlsServerOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { TestCa } from '@tessera/testing';

const EXAMPLE = fileURLToPath(new URL('./serverless-function.js', import.meta.url));
const FN_ID = 'spiffe://example.org/gcp/my-gcp-project-id/sales-api';
const API_ID = 'spiffe://example.org/api';

function runExample(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [EXAMPLE], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the serverless function example', () => {
  const clock = { now: () => new Date() };
  const log = new CapturingLogger();
  let dir: string;
  let issuer: TestIssuer;
  let datastore: Datastore;
  let ca: CaManager;
  let endpoint: ServerlessEndpoint;
  let api: ReturnType<typeof createSpiffeHttpsServer>;
  let env: Record<string, string>;
  let project = 'my-gcp-project-id';

  async function freshToken(): Promise<string> {
    return issuer.sign(
      {
        aud: 'spiffe://example.org',
        email: 'sales-api@my-gcp-project-id.iam.gserviceaccount.com',
        google: { compute_engine: { project_id: project } },
      },
      { now: new Date() },
    );
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-example-sl-'));
    const td = TrustDomain.fromString('example.org');
    // The trust domain's root: a TestCa. The server's CA is an intermediate under it (disk upstream authority).
    const root = TestCa.create({ trustDomain: 'example.org' });
    writeFileSync(join(dir, 'root.pem'), root.rootPem());
    writeFileSync(
      join(dir, 'root.key'),
      root.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      {
        mode: 0o600,
      },
    );
    datastore = await openDatastore(`sqlite:${join(dir, 'ds.sqlite3')}`);
    ca = await createCaManager({
      trustDomain: td,
      keyManager: createMemoryKeyManager(),
      datastore,
      caTtlSeconds: 86400,
      clock,
      upstreamAuthority: createDiskUpstreamAuthority({
        trustDomain: td,
        certFilePath: join(dir, 'root.pem'),
        keyFilePath: join(dir, 'root.key'),
      }),
    });
    issuer = await TestIssuer.start();
    const policies = parsePolicies(
      `section: ServerlessAttestation
schema: v1
spec:
  policies:
  - name: gcp
    svidPolicy:
      pathTemplate: "/gcp/{{gcp_iit.project_id}}/{{gcp_iit.service_account.id}}"
    requiredAttestors:
    - type: gcp_iit
      config: { issuer: "${issuer.issuer}", caFile: "${issuer.caFile}", allowedProjectIDs: [my-gcp-project-id] }
`,
      { trustDomain: td, jwks: new JwksRegistry({ clock }), clock },
    );
    const service = createServerlessService({ ca, trustDomain: td, policies, logger: log, clock });
    endpoint = await startServerlessEndpoint({
      service,
      bindAddress: '127.0.0.1',
      bindPort: 0,
      tls: { serverSvid: ca, ttlSeconds: 3600 },
      logger: log,
      clock,
    });

    // The mTLS service: an SVID issued by the TestCa root, accepting only the function's identity.
    const issued = root.issueX509Svid({ spiffeId: API_ID });
    const apiSvid = X509Svid.parse(issued.certPem, issued.keyPem);
    api = createSpiffeHttpsServer(
      mtlsServerOptions(
        apiSvid,
        X509Bundle.fromAuthorities(td, [root.certificate]),
        authorizeId(SpiffeId.fromString(FN_ID)),
      ),
      {},
      (req, res) => res.end(`hello ${peerIdFromSocket(req.socket as TLSSocket)}`),
    );
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));

    // The CA file the function uses is the trust bundle: the root (the listener serves the server's SVID).
    writeFileSync(join(dir, 'bundle.pem'), ca.bundle().x509Bundle().marshal());
    env = {
      TESSERA_SERVERLESS_ADDRESS: `https://127.0.0.1:${endpoint.port}`,
      TESSERA_SERVERLESS_CA: join(dir, 'bundle.pem'),
      TESSERA_SERVERLESS_SERVER_ID: 'spiffe://example.org/spire/server',
      ATTESTATION_TYPE: 'gcp_iit',
      ATTESTATION_TOKEN_FILE: join(dir, 'token'),
      TARGET_URL: `https://127.0.0.1:${(api.address() as AddressInfo).port}/`,
      TARGET_ID: API_ID,
    };
  });

  after(async () => {
    await new Promise<void>((r) => (api ? api.close(() => r()) : r()));
    await endpoint?.close();
    await ca?.close();
    await datastore?.close();
    await issuer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets its identity by remote attestation and authenticates to the mTLS service with it', async () => {
    writeFileSync(join(dir, 'token'), await freshToken());
    const r = await runExample(env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`identity: ${FN_ID}`, `200 hello ${FN_ID}`]);
    // The bundle is the TestCa root only: the service (trusting just that root) accepted the function, so the
    // function presented its chain through the server's intermediate CA.
    assert.equal(ca.bundle().x509Bundle().x509Authorities().length, 1);
    assert.ok(log.audits().some((a) => a.decision === 'grant' && a.spiffe_id === FN_ID));
  });

  it('takes the token from a command too', async () => {
    writeFileSync(join(dir, 'token2'), await freshToken());
    const { ATTESTATION_TOKEN_FILE: _unused, ...rest } = env;
    const r = await runExample({ ...rest, ATTESTATION_TOKEN_COMMAND: `cat ${join(dir, 'token2')}` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^200 hello ${FN_ID}$`, 'm'));
  });

  it('refuses a service that does not present the expected SPIFFE ID', async () => {
    writeFileSync(join(dir, 'token'), await freshToken());
    const r = await runExample({ ...env, TARGET_ID: 'spiffe://example.org/other' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^identity: ${FN_ID}$`, 'm'));
    assert.doesNotMatch(r.stdout, /hello/);
    assert.match(r.stderr, /tls: unexpected ID "spiffe:\/\/example\.org\/api"/);
    assert.match(r.stderr, /ERR_TLS_AUTHORIZATION_FAILED/);
  });

  it('fails with the server reason when attestation is denied', async () => {
    project = 'other-project';
    try {
      writeFileSync(join(dir, 'token'), await freshToken());
      const r = await runExample(env);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /ERR_WORKLOADAPI_PERMISSION_DENIED/);
      assert.match(r.stderr, /policy_denied: .*"other-project" is not in allowedProjectIDs/);
    } finally {
      project = 'my-gcp-project-id';
    }
  });

  it('fails when the token was already presented (each token is accepted once)', async () => {
    const token = await freshToken();
    writeFileSync(join(dir, 'token'), token);
    assert.equal((await runExample(env)).code, 0);
    const again = await runExample(env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /replayed: /);
  });
});
