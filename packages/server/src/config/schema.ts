/**
 * The tessera-server configuration schema: every key, its type, default and description (docs/config/server.md
 * is generated from it), plus the cross-field checks.
 *
 * @module
 */
import {
  array,
  boolean,
  duration,
  enumOf,
  findPortConflicts,
  healthChecksSchema,
  host,
  type Infer,
  integer,
  type ListenerSpec,
  logFormatSchema,
  logLevelSchema,
  metricsSchema,
  object,
  observabilityListeners,
  path,
  port,
  record,
  socketPath,
  spiffeId,
  string,
  telemetrySchema,
  trustDomain,
  url,
  variant,
} from '@tessera/common/config';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { parseConnectionString } from '../datastore/connection-string.js';

/** Key types the CA and JWT authorities may use. */
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048'] as const;
/** A key type of the CA or JWT signing keys. */
export type KeyType = (typeof KEY_TYPES)[number];

const upstreamDisk = object({
  certFilePath: path().describe("PEM certificate of the upstream CA that signs this server's CA"),
  keyFilePath: path().describe('PEM private key (PKCS#8 or SEC1/PKCS#1) of the upstream CA'),
  bundleFilePath: path()
    .optional('(the upstream certificate is the root)')
    .describe('PEM bundle of the upstream roots, when cert_file_path is itself an intermediate'),
}).describe('Upstream CA read from files; the server CA becomes an intermediate under it');

const x509pop = object({
  caBundlePath: path()
    .optional()
    .describe('PEM file of CA certificates that agent certificates must chain to'),
  caBundlePaths: array(path(), { minItems: 1 }).optional().describe('Several PEM files of CA certificates'),
  agentPathTemplate: string()
    .optional('(/x509pop/<sha1 fingerprint of the leaf>)')
    .describe("Template of the agent ID path, as SPIRE's agent_path_template"),
})
  .check((v, r) => {
    if (v.caBundlePath === undefined && v.caBundlePaths === undefined)
      r.error('set ca_bundle_path or ca_bundle_paths');
    if (v.caBundlePath !== undefined && v.caBundlePaths !== undefined) {
      r.error('set either ca_bundle_path or ca_bundle_paths, not both', ['ca_bundle_paths']);
    }
  })
  .optional('(disabled)')
  .describe('x509pop node attestor: proof of possession of a key certified by a configured CA');

const federatedTrustDomain = object({
  bundleEndpointUrl: url({ schemes: ['https'] }).describe(
    "HTTPS URL of the foreign trust domain's bundle endpoint",
  ),
  bundleEndpointProfile: variant({
    https_web: object({}).describe('Endpoint authenticated with Web PKI (the system CA store)'),
    https_spiffe: object({
      endpointSpiffeId: spiffeId().describe('SPIFFE ID the bundle endpoint server must present'),
    }).describe("Endpoint authenticated with SPIFFE (the foreign trust domain's bundle)"),
  }).describe('How the bundle endpoint is authenticated: https_web or https_spiffe'),
});

/** The raw schema of the server configuration file (keys as written, defaults applied). */
export const serverConfigSchema = object({
  trustDomain: trustDomain().describe('Trust domain this server is the authority of (at most 255 bytes)'),
  bindAddress: host().default('0.0.0.0').describe('Address of the agent API (gRPC over TLS)'),
  bindPort: port().default(8081).describe('Port of the agent API'),
  socketPath: socketPath()
    .default('/tmp/tessera-server/private/api.sock')
    .describe('Unix socket of the admin API (its directory is created with mode 0700)'),
  dataDir: path().default('./.tessera/server').describe("Directory of the server's state (datastore, keys)"),
  caTtl: duration({ min: '10s' }).defaultRaw('24h').describe('Lifetime of the X.509 CA and JWT signing keys'),
  defaultX509SvidTtl: duration({ min: '1s' }).defaultRaw('1h').describe('Default lifetime of X509-SVIDs'),
  defaultJwtSvidTtl: duration({ min: '1s' }).defaultRaw('5m').describe('Default lifetime of JWT-SVIDs'),
  caKeyType: enumOf(KEY_TYPES).default('ec-p256').describe('Key type of the X.509 CA'),
  jwtKeyType: enumOf(KEY_TYPES)
    .optional('(same as ca_key_type)')
    .describe('Key type of the JWT signing keys'),
  jwtIssuer: string({ maxBytes: 2048 })
    .optional('(no iss claim)')
    .describe('Issuer (iss) written in JWT-SVIDs'),
  caSubject: object({
    country: array(string()).default(['US']).describe('Country (C) of the CA subject'),
    organization: array(string()).default(['SPIFFE']).describe('Organization (O) of the CA subject'),
    commonName: string().optional().describe('Common name (CN) of the CA subject'),
  })
    .defaultRaw({}, '(section with defaults)')
    .describe('Subject of the CA certificate'),
  issuanceWorkers: integer({ min: 0, max: 64 })
    .optional('(one per core, up to 4; 0 on one core)')
    .describe('Worker threads that verify CSRs and sign X509-SVIDs; 0 signs on the main thread'),
  logLevel: logLevelSchema(),
  logFormat: logFormatSchema(),
  healthChecks: healthChecksSchema(),
  metrics: metricsSchema(),
  telemetry: telemetrySchema(),
  datastore: object({
    connectionString: string()
      .secret()
      .optional('<data_dir>/datastore.sqlite3')
      .describe(
        'A file path or sqlite: URL (SQLite), postgres:// URL (PostgreSQL) or mysql:// URL (MySQL/MariaDB)',
      ),
  })
    .check((v, r) => {
      if (v.connectionString === undefined) return;
      try {
        parseConnectionString(v.connectionString);
      } catch (err) {
        r.error(err instanceof Error ? err.message : 'invalid connection string', ['connection_string']);
      }
    })
    .defaultRaw({}, '(section with defaults)')
    .describe('Where registration entries, nodes and bundles are stored'),
  keyManager: object({
    type: enumOf(['memory', 'disk'] as const)
      .default('disk')
      .describe('memory (keys lost on restart) or disk (file mode 0600, atomic writes)'),
    keysPath: path().optional('<data_dir>/keys.json').describe('File of the disk key manager'),
  })
    .check((v, r) => {
      if (v.type === 'memory' && v.keysPath !== undefined) {
        r.error('keys_path is only used by the disk key manager', ['keys_path']);
      }
    })
    .defaultRaw({}, '(section with defaults)')
    .describe('Where the CA and JWT private keys are kept'),
  upstreamAuthority: variant({ disk: upstreamDisk })
    .optional('(self-signed root CA)')
    .describe('Upstream authority that signs the server CA'),
  nodeAttestors: object({
    joinToken: object({}).optional('(disabled)').describe('join_token node attestor: single-use tokens'),
    x509pop,
  })
    .check((v, r) => {
      if (v.joinToken === undefined && v.x509pop === undefined) r.error('enable at least one node attestor');
    })
    .defaultRaw({ join_token: {} }, '{ join_token: {} }')
    .describe('Node attestors agents may use'),
  federation: object({
    bundleEndpoint: object({
      address: host().default('0.0.0.0').describe('Address of the bundle endpoint'),
      port: port().default(8443).describe('Port of the bundle endpoint'),
      refreshHint: duration({ min: '1s' })
        .optional('(derived from the CA TTL)')
        .describe('Refresh hint published in the bundle'),
      profile: variant({
        https_spiffe: object({}).describe(
          "The endpoint presents the server's own X509-SVID (spiffe://<trust domain>/spire/server)",
        ),
        https_web: object({
          servingCertFile: object({
            certFilePath: path().describe('PEM certificate chain the endpoint presents, leaf first'),
            keyFilePath: path().describe('PEM private key of the leaf certificate'),
            fileSyncInterval: duration({ min: '1s', max: '24d' })
              .defaultRaw('1m')
              .describe(
                'How often both files are checked for a new certificate, at most 24d (kept on a failed reload)',
              ),
          }).describe('A Web PKI certificate and key read from files (ACME is not supported)'),
        }).describe('The endpoint presents a Web PKI certificate, checked by clients against their roots'),
      })
        .defaultRaw({ https_spiffe: {} }, '{ https_spiffe: {} }')
        .describe('How clients authenticate the bundle endpoint: https_spiffe or https_web'),
    })
      .optional('(not served)')
      .describe("Serves this trust domain's bundle to federated servers"),
    federatesWith: record(federatedTrustDomain, {
      keyType: 'trust domain',
      checkKey: (k) => {
        try {
          TrustDomain.fromString(k);
          return k.includes(':/') ? `must be a trust domain name, not ${JSON.stringify(k)}` : undefined;
        } catch (err) {
          return `is not a valid trust domain: ${err instanceof Error ? err.message : String(err)}`;
        }
      },
    })
      .optional('(none)')
      .describe('Foreign trust domains whose bundles are fetched, keyed by trust domain name'),
  })
    .optional('(no federation)')
    .describe('SPIFFE federation'),
  serverless: object({
    bindAddress: host()
      .default('0.0.0.0')
      .describe('Address of the serverless attestation API (HTTPS and gRPC)'),
    bindPort: port().default(8444).describe('Port of the serverless attestation API'),
    tlsCertFile: path()
      .optional("(the server's own SVID)")
      .describe('PEM certificate chain served by the serverless API (e.g. a Web PKI certificate)'),
    tlsKeyFile: path().optional("(the server's own SVID)").describe('PEM private key of tls_cert_file'),
    policyFile: path().describe('YAML file of ServerlessAttestation policies (reloaded when it changes)'),
    rateLimit: integer({ min: 0 })
      .default(10)
      .describe('Requests per second per client address (burst twice as many); 0 disables'),
    maxBodyBytes: integer({ min: 1024, max: 1048576 })
      .default(65536)
      .describe('Largest request body (HTTP) or message (gRPC), in bytes'),
  })
    .check((v, r) => {
      if ((v.tlsCertFile === undefined) !== (v.tlsKeyFile === undefined)) {
        r.error('set both tls_cert_file and tls_key_file, or neither', [
          v.tlsCertFile === undefined ? 'tls_cert_file' : 'tls_key_file',
        ]);
      }
    })
    .optional('(disabled)')
    .describe(
      'Serverless remote attestation: platform identity tokens exchanged for SVIDs (docs/serverless.md)',
    ),
  rateLimit: object({
    attestation: integer({ min: 0 })
      .default(1)
      .describe('Node attestations per second per caller address; 0 disables'),
    signing: integer({ min: 0 })
      .default(500)
      .describe('SVIDs signed per second per caller (each SVID of a batch counts); 0 disables'),
  })
    .defaultRaw({}, '(section with defaults)')
    .describe('Rate limits of the agent API'),
  adminIds: array(spiffeId())
    .optional('(none)')
    .describe('SPIFFE IDs that may call admin RPCs over TCP (besides entries marked admin)'),
  auditLogEnabled: boolean().default(true).describe('Log an audit line for every admin call'),
})
  // Each cross-field check declares the keys it reads, so it runs (and reports) even when other keys are
  // invalid: `validate` lists every problem at once.
  .checkFields(['caTtl', 'defaultX509SvidTtl'], (v, r) => {
    if (v.defaultX509SvidTtl.compare(v.caTtl) >= 0) {
      r.error(`must be shorter than ca_ttl (${v.caTtl}), got "${v.defaultX509SvidTtl}"`, [
        'default_x509_svid_ttl',
      ]);
    } else if (v.defaultX509SvidTtl.milliseconds * 6 > v.caTtl.milliseconds) {
      r.warn(
        `is longer than a sixth of ca_ttl (${v.caTtl}); SVIDs issued late in a CA's life will be shortened to fit`,
        ['default_x509_svid_ttl'],
      );
    }
  })
  .checkFields(['caTtl', 'defaultJwtSvidTtl'], (v, r) => {
    if (v.defaultJwtSvidTtl.compare(v.caTtl) >= 0) {
      r.error(`must be shorter than ca_ttl (${v.caTtl}), got "${v.defaultJwtSvidTtl}"`, [
        'default_jwt_svid_ttl',
      ]);
    }
  })
  .checkFields(['metrics', 'telemetry'], (v, r) => {
    if (v.metrics !== undefined && v.telemetry?.prometheus !== undefined) {
      r.error('set either metrics or telemetry.prometheus, not both', ['telemetry']);
    }
  })
  .checkFields(['trustDomain', 'federation'], (v, r) => {
    for (const td of v.federation?.federatesWith?.keys() ?? []) {
      if (td === v.trustDomain.name) {
        r.error("cannot federate with the server's own trust domain", ['federation', 'federates_with', td]);
      }
    }
  })
  .checkFields(
    ['bindAddress', 'bindPort', 'healthChecks', 'metrics', 'telemetry', 'federation', 'serverless'],
    (v, r) => {
      const listeners: ListenerSpec[] = [
        { path: 'bind_port', address: v.bindAddress, port: v.bindPort },
        ...observabilityListeners(v),
      ];
      const be = v.federation?.bundleEndpoint;
      if (be !== undefined)
        listeners.push({ path: 'federation.bundle_endpoint.port', address: be.address, port: be.port });
      const sl = v.serverless;
      if (sl !== undefined)
        listeners.push({ path: 'serverless.bind_port', address: sl.bindAddress, port: sl.bindPort });
      for (const [a, b] of findPortConflicts(listeners)) {
        r.error(`port ${b.port} is also used by ${a.path}`, b.path.split('.'));
      }
    },
  );

/** The validated file content, before defaults that depend on other keys are resolved. */
export type ServerConfigFile = Infer<typeof serverConfigSchema>;
