/**
 * A serverless stack for the helper's remote-attestation tests: the real serverless service of tessera-server
 * (in process, on a temp SQLite CA, serving its own SVID over TLS on loopback), a test OIDC issuer over HTTPS,
 * and a metadata-like HTTP endpoint on loopback that mints a fresh identity token per GET (what a function's
 * platform does), so `token_command` can be `curl -sf <tokenUrl>`.
 *
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createServerlessService,
  JwksRegistry,
  parsePolicies,
  type ServerlessEndpoint,
  startServerlessEndpoint,
} from '@tessera/server/dist/serverless/index.js';
import { CapturingLogger, newTestCa, TestIssuer } from '@tessera/server/dist/serverless/test-support.js';

/** The SPIFFE ID the policy gives the test function. */
export const FUNCTION_ID = 'spiffe://example.org/gcp/my-gcp-project-id/sales-api';
/** The serverless listener's own SPIFFE ID. */
export const SERVER_ID = 'spiffe://example.org/spire/server';

/** A running stack; {@link ServerlessStack.close} stops everything. */
export interface ServerlessStack {
  /** `https://127.0.0.1:<port>` of the serverless API. */
  readonly address: string;
  /** PEM file of the trust bundle (authenticates the listener's SVID). */
  readonly bundleFile: string;
  /** The bundle's PEM. */
  readonly bundlePem: string;
  /** URL answering each GET with a fresh gcp_iit token (`project` decides its project). */
  readonly tokenUrl: string;
  /** Project claimed by the next tokens; a project the policy does not allow gets a denial. */
  project: string;
  /** Tokens minted so far. */
  readonly minted: () => number;
  /** Mints one token now (for token files). */
  mint(): Promise<string>;
  /** The service's audit lines. */
  readonly log: CapturingLogger;
  close(): Promise<void>;
}

/**
 * Starts the stack.
 *
 * @param options - `x509SvidTtlSeconds` of issued SVIDs (default 3600).
 * @example
 * ```ts
 * const stack = await startServerlessStack({ x509SvidTtlSeconds: 4 });
 * ```
 */
export async function startServerlessStack(
  options: { x509SvidTtlSeconds?: number } = {},
): Promise<ServerlessStack> {
  const clock = { now: () => new Date() };
  const dir = mkdtempSync(join(tmpdir(), 'tessera-helper-sl-'));
  const log = new CapturingLogger();
  const issuer = await TestIssuer.start();
  const caHandle = await newTestCa('example.org');
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
    { trustDomain: caHandle.trustDomain, jwks: new JwksRegistry({ clock }), clock },
  );
  const service = createServerlessService({
    ca: caHandle.ca,
    trustDomain: caHandle.trustDomain,
    policies,
    logger: log,
    clock,
    x509SvidTtlSeconds: options.x509SvidTtlSeconds ?? 3600,
  });
  const endpoint: ServerlessEndpoint = await startServerlessEndpoint({
    service,
    bindAddress: '127.0.0.1',
    bindPort: 0,
    tls: { serverSvid: caHandle.ca, ttlSeconds: 3600 },
    rateLimit: 0,
    logger: log,
    clock,
  });
  const bundlePem = caHandle.ca.bundle().x509Bundle().marshal();
  const bundleFile = join(dir, 'bundle.pem');
  writeFileSync(bundleFile, bundlePem);

  let minted = 0;
  const stack = {
    project: 'my-gcp-project-id',
  } as { project: string };
  const mint = async (): Promise<string> => {
    minted++;
    return issuer.sign(
      {
        aud: 'spiffe://example.org',
        email: 'sales-api@my-gcp-project-id.iam.gserviceaccount.com',
        google: { compute_engine: { project_id: stack.project } },
      },
      { now: new Date() },
    );
  };
  const tokenServer: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/token') {
      res.writeHead(404).end();
      return;
    }
    mint().then(
      (t) => res.writeHead(200, { 'content-type': 'text/plain' }).end(t),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', () => r()));
  const tokenPort = (tokenServer.address() as AddressInfo).port;

  return Object.assign(stack, {
    address: `https://127.0.0.1:${endpoint.port}`,
    bundleFile,
    bundlePem,
    tokenUrl: `http://127.0.0.1:${tokenPort}/token`,
    minted: () => minted,
    mint,
    log,
    async close() {
      tokenServer.closeAllConnections();
      await new Promise<void>((r) => tokenServer.close(() => r()));
      await endpoint.close();
      await caHandle.close();
      await issuer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}
