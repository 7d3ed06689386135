/**
 * The tessera-agent configuration schema: every key, its type, default and description (docs/config/agent.md
 * is generated from it), plus the cross-field checks.
 *
 * @module
 */
import { dirname, isAbsolute, relative, resolve as resolvePath } from 'node:path';
import {
  array,
  boolean,
  byteSize,
  duration,
  enumOf,
  findPortConflicts,
  healthChecksSchema,
  host,
  type Infer,
  integer,
  logFormatSchema,
  logLevelSchema,
  metricsSchema,
  object,
  observabilityListeners,
  path,
  port,
  socketPath,
  string,
  telemetrySchema,
  trustDomain,
  url,
  variant,
} from '@tessera/common/config';

const SDS_NAME = {
  regex: /^[\x21-\x7e]+$/,
  description: 'a resource name of printable ASCII without spaces',
};

/**
 * Largest `x509_svid_cache_max_size` and `jwt_svid_cache_max_size`: a million SVIDs is already gigabytes of keys
 * and certificates; a larger value is a typo, not a sizing decision.
 */
const MAX_SVID_CACHE_SIZE = 1_000_000;

const adminSocketPathSchema = socketPath()
  .default('/tmp/tessera-agent/private/admin.sock')
  .describe(
    "Unix socket of the local-only admin API (directory 0700, not inside the public socket's directory)",
  );

/**
 * The one key `tessera-agent healthcheck --config` reads, `admin_socket_path`, with the same type and default
 * as in {@link agentConfigSchema}: the health check must not fail because of keys it does not use (a join
 * token given only to `run`).
 */
export const agentAdminSocketSchema = object({ adminSocketPath: adminSocketPathSchema });

/** The raw schema of the agent configuration file (keys as written, defaults applied). */
export const agentConfigSchema = object({
  trustDomain: trustDomain().describe('Trust domain of the agent and its server'),
  serverAddress: host().describe('Address (IP or DNS name) of the tessera-server agent API'),
  serverPort: port().default(8081).describe('Port of the tessera-server agent API'),
  trustBundlePath: path()
    .optional()
    .describe(
      "PEM file of the trust domain's root certificates, used to authenticate the server at first contact",
    ),
  trustBundleUrl: url({ schemes: ['https'] })
    .optional()
    .describe('HTTPS URL (Web PKI) from which the bootstrap trust bundle is downloaded'),
  trustBundleFormat: enumOf(['pem', 'spiffe'] as const)
    .default('pem')
    .describe('Format of the bundle at trust_bundle_url: pem or spiffe (JWKS)'),
  insecureBootstrap: boolean()
    .default(false)
    .describe(
      'Trust the server presented at first contact without a bundle (must be explicitly true; insecure)',
    ),
  joinToken: string({ maxBytes: 1024 })
    .secret()
    .optional()
    .describe(
      'Join token for join_token node attestation, used only to attest (when no usable agent SVID is stored in data_dir): it may be given to run with --join-token instead, and left out once the agent has attested',
    ),
  nodeAttestor: variant({
    join_token: object({}).describe(
      'Attest with the join_token key; without it, the agent starts only from a usable stored agent SVID',
    ),
    x509pop: object({
      privateKeyPath: path().describe('PEM private key whose possession is proven'),
      certificatePath: path().describe('PEM certificate of that key, chaining to a CA the server trusts'),
      intermediatesPath: path().optional().describe('PEM intermediates sent with the certificate'),
    }).describe('Attest by proof of possession of an X.509 key'),
  })
    .optional('(join_token)')
    .describe('Node attestation method: join_token or x509pop'),
  socketPath: socketPath()
    .default('/tmp/tessera-agent/public/api.sock')
    .describe(
      'Unix socket of the Workload API and Envoy SDS (its directory is made 0777; workloads connect to it)',
    ),
  adminSocketPath: adminSocketPathSchema,
  dataDir: path()
    .default('./.tessera/agent')
    .describe("Directory of the agent's state (agent SVID, keys, SVID cache)"),
  logLevel: logLevelSchema(),
  logFormat: logFormatSchema(),
  healthChecks: healthChecksSchema(),
  metrics: metricsSchema(),
  telemetry: telemetrySchema(),
  workloadAttestors: object({
    unix: object({
      discoverWorkloadPath: boolean()
        .default(false)
        .describe('Read the workload binary path from /proc (selectors unix:path and unix:sha256)'),
      workloadSizeLimit: byteSize({ min: 1 })
        .optional('(no limit)')
        .describe('Largest workload binary hashed for unix:sha256 (e.g. "64MiB")'),
    })
      .defaultRaw({}, '(section with defaults)')
      .describe('unix workload attestor (uid, gid, user, group, supplementary gids, path, sha256)'),
    docker: object({})
      .optional('(disabled)')
      .describe("Container selectors (docker:id-style container ID, pod UID) from the workload's cgroups"),
  })
    .defaultRaw({}, '(section with defaults)')
    .describe('Workload attestors'),
  sds: object({
    defaultSvidName: string({ pattern: SDS_NAME })
      .default('default')
      .describe('SDS TLS certificate name of the default SVID'),
    defaultBundleName: string({ pattern: SDS_NAME })
      .default('ROOTCA')
      .describe("SDS validation context name of the agent's own trust domain bundle"),
    defaultAllBundlesName: string({ pattern: SDS_NAME })
      .default('ALL')
      .describe('SDS validation context name of all bundles (own and federated, SPIFFE validator)'),
    disableSpiffeCertValidation: boolean()
      .default(false)
      .describe('Send plain trusted_ca validation contexts instead of the SPIFFE certificate validator'),
  })
    .check((v, r) => {
      const names: [string, string][] = [
        ['default_svid_name', v.defaultSvidName],
        ['default_bundle_name', v.defaultBundleName],
        ['default_all_bundles_name', v.defaultAllBundlesName],
      ];
      for (let i = 0; i < names.length; i++) {
        for (let j = i + 1; j < names.length; j++) {
          const [ka, a] = names[i] as [string, string];
          const [kb, b] = names[j] as [string, string];
          if (a === b) r.error(`must differ from ${ka}, both are "${a}"`, [kb]);
        }
      }
    })
    .defaultRaw({}, '(section with defaults)')
    .describe('Envoy SDS v3 resource names'),
  attestAtConnect: boolean()
    .default(true)
    .describe(
      'Start attesting a Workload API caller when it connects, while its request is on the way; the result serves its first call only if that call comes within 100 ms (false: attest each call when it arrives, as SPIRE)',
    ),
  allowUnauthenticatedVerifiers: boolean()
    .default(false)
    .describe('Serve bundles (FetchX509Bundles, FetchJWTBundles) to callers without an identity'),
  allowedForeignJwtClaims: array(string())
    .default([])
    .describe('Claims kept when validating JWT-SVIDs of foreign trust domains'),
  x509SvidCacheMaxSize: integer({ min: 1, max: MAX_SVID_CACHE_SIZE })
    .default(1000)
    .describe('Most X509-SVIDs kept in the LRU cache (1 to 1000000)'),
  jwtSvidCacheMaxSize: integer({ min: 1, max: MAX_SVID_CACHE_SIZE })
    .default(1000)
    .describe('Most JWT-SVIDs kept in the cache (1 to 1000000)'),
  svidStores: object({
    disk: object({
      directory: path().describe(
        'Directory of the stored SVID files (created 0700; files 0600, named by disk:name:<file>)',
      ),
    })
      .optional('(disabled)')
      .describe('Store SVIDs as JSON files in a local directory'),
    awsSecretsmanager: object({
      region: string({
        pattern: { regex: /^[a-z0-9-]+$/, description: 'an AWS region such as us-east-1' },
      }).describe('AWS region of the secrets'),
      endpoint: url({ schemes: ['https'] })
        .optional("(the SDK's regional endpoint)")
        .describe('Secrets Manager endpoint override (VPC endpoints, tests)'),
      caFile: path()
        .optional('(system roots)')
        .describe('PEM CA certificates trusted for the endpoint instead of the system roots'),
    })
      .optional('(disabled)')
      .describe("Store SVIDs in AWS Secrets Manager (credentials from the AWS SDK's default provider chain)"),
    gcpSecretmanager: object({
      projectId: string({
        pattern: { regex: /^[A-Za-z0-9][A-Za-z0-9.:-]{0,99}$/, description: 'a Google Cloud project ID' },
      })
        .optional('(from the gcp_secretmanager:projectid selector)')
        .describe('Project of secrets whose entries have no gcp_secretmanager:projectid selector'),
      endpoint: string({ pattern: { regex: /^[^\s/]+:\d{1,5}$/, description: 'host:port' } })
        .optional('(secretmanager.googleapis.com:443)')
        .describe('Secret Manager gRPC endpoint override, host:port (emulators, tests)'),
      caFile: path()
        .optional('(system roots with Application Default Credentials)')
        .describe(
          'PEM CA certificates trusted for the endpoint; when set, no Google credentials are sent (emulators, tests)',
        ),
    })
      .optional('(disabled)')
      .describe('Store SVIDs in Google Cloud Secret Manager (Application Default Credentials)'),
  })
    .defaultRaw({}, '(no stores)')
    .describe('SVIDStore plugins: where the SVIDs of entries created with store_svid are pushed'),
  availabilityTarget: duration({ min: '24h' })
    .optional('(rotate at half-life)')
    .describe('Minimum time an X509-SVID must stay valid after rotation (at least 24h), as in SPIRE'),
}).check((v, r) => {
  const bootstrap = [
    v.trustBundlePath === undefined ? undefined : 'trust_bundle_path',
    v.trustBundleUrl === undefined ? undefined : 'trust_bundle_url',
    v.insecureBootstrap ? 'insecure_bootstrap' : undefined,
  ].filter((x): x is string => x !== undefined);
  if (bootstrap.length === 0) {
    r.error('set one of trust_bundle_path, trust_bundle_url, or insecure_bootstrap: true');
  } else if (bootstrap.length > 1) {
    r.error(`${bootstrap.join(' and ')} are mutually exclusive`, [bootstrap[1] as string]);
  }
  if (v.insecureBootstrap && bootstrap.length === 1) {
    r.warn('the first server contacted is trusted without verification; use only for testing', [
      'insecure_bootstrap',
    ]);
  }
  if (v.trustBundleUrl === undefined && v.trustBundleFormat !== 'pem') {
    r.error('is only used with trust_bundle_url', ['trust_bundle_format']);
  }
  if (v.nodeAttestor?.type === 'x509pop' && v.joinToken !== undefined) {
    r.error('join_token cannot be combined with the x509pop node attestor', ['join_token']);
  }
  // Without join_token or node_attestor the method is join_token, its token required only when the agent must
  // attest (no usable stored agent SVID): `run --join-token` gives it for the first start, restarts need none.
  const pub = resolvePath(v.socketPath);
  const admin = resolvePath(v.adminSocketPath);
  if (pub === admin) {
    r.error('must differ from socket_path', ['admin_socket_path']);
  } else {
    const rel = relative(dirname(pub), dirname(admin));
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
      r.error(
        `must not be in the public socket's directory "${dirname(v.socketPath)}" or below it (workloads can reach it)`,
        ['admin_socket_path'],
      );
    }
  }
  if (v.metrics !== undefined && v.telemetry?.prometheus !== undefined) {
    r.error('set either metrics or telemetry.prometheus, not both', ['telemetry']);
  }
  for (const [a, b] of findPortConflicts(observabilityListeners(v)))
    r.error(`port ${b.port} is also used by ${a.path}`, b.path.split('.'));
});

/** The validated file content, before keys that depend on others are resolved. */
export type AgentConfigFile = Infer<typeof agentConfigSchema>;
