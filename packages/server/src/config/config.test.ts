import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigValidationError } from '@tessera/common/config';
import { loadServerConfig, redactServerConfig, type ServerConfig, validateServerConfig } from './index.js';

function valid(raw: Record<string, unknown>): ServerConfig {
  const r = validateServerConfig(raw);
  if (!('config' in r)) assert.fail(`expected a valid config, got ${JSON.stringify(r.errors)}`);
  return r.config;
}

function errorsOf(raw: Record<string, unknown>): { path: string; message: string }[] {
  const r = validateServerConfig(raw);
  if ('config' in r) assert.fail('expected validation errors');
  for (const e of r.errors) assert.equal(e.severity, 'error');
  return r.errors.map(({ path, message }) => ({ path, message }));
}

const TD = { trust_domain: 'example.org' };

describe('validateServerConfig', () => {
  it('fills every default from a minimal config', () => {
    const c = valid(TD);
    assert.equal(c.trustDomain.name, 'example.org');
    assert.equal(c.bindAddress, '0.0.0.0');
    assert.equal(c.bindPort, 8081);
    assert.equal(c.socketPath, '/tmp/tessera-server/private/api.sock');
    assert.equal(c.dataDir, './.tessera/server');
    assert.equal(c.caTtl.toString(), '24h');
    assert.equal(c.defaultX509SvidTtl.seconds, 3600);
    assert.equal(c.defaultJwtSvidTtl.seconds, 300);
    assert.equal(c.caKeyType, 'ec-p256');
    assert.equal(c.jwtKeyType, 'ec-p256');
    assert.equal(c.logLevel, 'info');
    assert.deepEqual(c.healthChecks, {
      listenerEnabled: false,
      bindAddress: 'localhost',
      bindPort: 8080,
      livePath: '/live',
      readyPath: '/ready',
    });
    assert.deepEqual(c.datastore.target, {
      engine: 'sqlite',
      filename: join('./.tessera/server', 'datastore.sqlite3'),
    });
    assert.deepEqual(c.keyManager, { type: 'disk', keysPath: join('./.tessera/server', 'keys.json') });
    assert.deepEqual(c.nodeAttestors, { joinToken: {} });
    assert.deepEqual(c.rateLimit, { attestation: 1, signing: 500 });
    assert.equal(c.metrics, undefined);
    assert.equal(c.upstreamAuthority, undefined);
    assert.equal(c.issuanceWorkers, undefined);
  });

  it('reads issuance_workers, 0 included', () => {
    assert.equal(valid({ ...TD, issuance_workers: 0 }).issuanceWorkers, 0);
    assert.equal(valid({ ...TD, issuance_workers: 3 }).issuanceWorkers, 3);
  });

  it('reads a full configuration with SPIRE names', () => {
    const c = valid({
      ...TD,
      ca_ttl: '720h',
      default_x509_svid_ttl: '90s',
      ca_key_type: 'ec-p384',
      jwt_key_type: 'rsa-2048',
      jwt_issuer: 'https://oidc.example.org',
      log_level: 'DEBUG',
      datastore: { connection_string: 'postgres://tessera:pw@db:5432/tessera' },
      key_manager: { type: 'memory' },
      upstream_authority: { disk: { cert_file_path: 'ca.pem', key_file_path: 'ca.key' } },
      node_attestors: { join_token: null, x509pop: { ca_bundle_paths: ['a.pem', 'b.pem'] } },
      federation: {
        bundle_endpoint: { port: 8443 },
        federates_with: {
          'other.org': {
            bundle_endpoint_url: 'https://other.org:8443/',
            bundle_endpoint_profile: {
              https_spiffe: { endpoint_spiffe_id: 'spiffe://other.org/spire/server' },
            },
          },
          'web.org': {
            bundle_endpoint_url: 'https://web.org/bundle',
            bundle_endpoint_profile: { https_web: {} },
          },
        },
      },
      telemetry: { prometheus: { port: 9988 } },
      admin_ids: ['spiffe://example.org/admin'],
    });
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.jwtKeyType, 'rsa-2048');
    assert.equal(c.datastore.target.engine, 'postgres');
    assert.deepEqual(c.keyManager, { type: 'memory' });
    assert.equal(c.upstreamAuthority?.type, 'disk');
    assert.deepEqual(c.nodeAttestors.x509pop?.caBundlePaths, ['a.pem', 'b.pem']);
    const fed = c.federation?.federatesWith?.get('other.org');
    assert.equal(fed?.bundleEndpointProfile.type, 'https_spiffe');
    assert.deepEqual(c.metrics, { bindAddress: 'localhost', bindPort: 9988 });
    assert.equal(c.adminIds?.[0]?.toString(), 'spiffe://example.org/admin');
    const red = JSON.stringify(redactServerConfig(c));
    assert.doesNotMatch(red, /:pw@/);
    assert.match(red, /postgres:\/\/tessera@db:5432\/tessera/);
  });

  const bad: { name: string; raw: Record<string, unknown>; want: { path: string; message: RegExp }[] }[] = [
    { name: 'a missing trust domain', raw: {}, want: [{ path: 'trust_domain', message: /^is required$/ }] },
    {
      name: 'a trust domain longer than 255 bytes',
      raw: { trust_domain: `${'a'.repeat(252)}.org` },
      want: [{ path: 'trust_domain', message: /255/ }],
    },
    {
      name: 'an upper-case trust domain',
      raw: { trust_domain: 'Example.org' },
      want: [{ path: 'trust_domain', message: /is not a valid trust domain: spiffeid: .*"Example\.org"/ }],
    },
    {
      name: 'a misspelt key',
      raw: { ...TD, bind_prot: 8081 },
      want: [
        {
          path: 'bind_prot',
          message: /^unknown key "bind_prot" in top level \(did you mean "bind_port"\?\)/,
        },
      ],
    },
    {
      name: 'an unknown key in a section',
      raw: { ...TD, health_checks: { listener: true } },
      want: [
        { path: 'health_checks.listener', message: /unknown key "listener" in section "health_checks"/ },
      ],
    },
    {
      name: 'a bad duration',
      raw: { ...TD, ca_ttl: '1 day' },
      want: [{ path: 'ca_ttl', message: /must be a duration such as "1h"/ }],
    },
    {
      name: 'an SVID TTL not shorter than the CA TTL',
      raw: { ...TD, ca_ttl: '1h', default_x509_svid_ttl: '1h', default_jwt_svid_ttl: '2h' },
      want: [
        { path: 'default_x509_svid_ttl', message: /must be shorter than ca_ttl \(1h\), got "1h"/ },
        { path: 'default_jwt_svid_ttl', message: /must be shorter than ca_ttl \(1h\), got "2h"/ },
      ],
    },
    {
      name: 'an unknown key type',
      raw: { ...TD, ca_key_type: 'ed25519' },
      want: [
        { path: 'ca_key_type', message: /must be one of "ec-p256", "ec-p384", "rsa-2048", got "ed25519"/ },
      ],
    },
    {
      name: 'an unsupported datastore',
      raw: { ...TD, datastore: { connection_string: 'redis://u:hunter2@h/0' } },
      want: [
        { path: 'datastore.connection_string', message: /unsupported connection string scheme "redis"/ },
      ],
    },
    {
      name: 'keys_path with the memory key manager',
      raw: { ...TD, key_manager: { type: 'memory', keys_path: 'k.json' } },
      want: [{ path: 'key_manager.keys_path', message: /only used by the disk key manager/ }],
    },
    {
      name: 'no node attestor',
      raw: { ...TD, node_attestors: {} },
      want: [{ path: 'node_attestors', message: /enable at least one node attestor/ }],
    },
    {
      name: 'x509pop without a CA bundle',
      raw: { ...TD, node_attestors: { x509pop: {} } },
      want: [{ path: 'node_attestors.x509pop', message: /set ca_bundle_path or ca_bundle_paths/ }],
    },
    {
      name: 'an upstream authority without its files',
      raw: { ...TD, upstream_authority: { disk: { cert_file_path: 'c.pem' } } },
      want: [{ path: 'upstream_authority.disk.key_file_path', message: /^is required$/ }],
    },
    {
      name: 'an unknown upstream authority',
      raw: { ...TD, upstream_authority: { vault: {} } },
      want: [{ path: 'upstream_authority.vault', message: /unknown key "vault" .*known options: disk/ }],
    },
    {
      name: 'an http bundle endpoint (cross-field checks wait until every field is valid)',
      raw: {
        ...TD,
        federation: {
          federates_with: {
            'example.org': { bundle_endpoint_url: 'https://x/', bundle_endpoint_profile: { https_web: {} } },
            'b.org': { bundle_endpoint_url: 'http://b.org/', bundle_endpoint_profile: { https_web: {} } },
          },
        },
      },
      want: [
        {
          path: 'federation.federates_with["b.org"].bundle_endpoint_url',
          message: /must use scheme "https"/,
        },
      ],
    },
    {
      name: 'federation with the own trust domain',
      raw: {
        ...TD,
        federation: {
          federates_with: {
            'example.org': { bundle_endpoint_url: 'https://x/', bundle_endpoint_profile: { https_web: {} } },
          },
        },
      },
      want: [
        {
          path: 'federation.federates_with["example.org"]',
          message: /cannot federate with the server's own trust domain/,
        },
      ],
    },
    {
      name: 'an https_spiffe profile without its SPIFFE ID',
      raw: {
        ...TD,
        federation: {
          federates_with: {
            'b.org': { bundle_endpoint_url: 'https://b/', bundle_endpoint_profile: { https_spiffe: {} } },
          },
        },
      },
      want: [
        {
          path: 'federation.federates_with["b.org"].bundle_endpoint_profile.https_spiffe.endpoint_spiffe_id',
          message: /^is required$/,
        },
      ],
    },
    {
      name: 'metrics and telemetry together',
      raw: { ...TD, metrics: { bind_port: 9000 }, telemetry: { prometheus: { port: 9001 } } },
      want: [{ path: 'telemetry', message: /either metrics or telemetry\.prometheus/ }],
    },
    {
      name: 'a health listener on the agent API port',
      raw: { ...TD, health_checks: { listener_enabled: true, bind_port: 8081 } },
      want: [{ path: 'health_checks.bind_port', message: /port 8081 is also used by bind_port/ }],
    },
    {
      name: 'a negative issuance_workers',
      raw: { ...TD, issuance_workers: -1 },
      want: [{ path: 'issuance_workers', message: /^must be at least 0, got -1$/ }],
    },
    {
      name: 'a bad admin ID',
      raw: { ...TD, admin_ids: ['spiffe://example.org/ok', 'https://x'] },
      want: [{ path: 'admin_ids[1]', message: /is not a valid SPIFFE ID/ }],
    },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name}`, () => {
      const errs = errorsOf(tc.raw);
      assert.equal(errs.length, tc.want.length, JSON.stringify(errs));
      tc.want.forEach((w, i) => {
        assert.equal(errs[i]?.path, w.path);
        assert.match(errs[i]?.message ?? '', w.message);
      });
      assert.doesNotMatch(JSON.stringify(errs), /hunter2/);
    });
  }

  it('reports every problem of a broken file at once', () => {
    const errs = errorsOf({
      trust_domain: 'example.org/x',
      bind_port: 'http',
      ca_ttl: 24,
      log_level: 'verbose',
      health_checks: { live_path: 'live', extra: 1 },
      rate_limit: { attestation: -1 },
      unknown_section: {},
    });
    assert.deepEqual(
      errs.map((e) => e.path),
      [
        'unknown_section',
        'trust_domain',
        'bind_port',
        'ca_ttl',
        'log_level',
        'health_checks.extra',
        'health_checks.live_path',
        'rate_limit.attestation',
      ],
    );
  });

  it('warns when the default SVID TTL exceeds a sixth of the CA TTL', () => {
    const r = validateServerConfig({ ...TD, ca_ttl: '1h', default_x509_svid_ttl: '30m' });
    assert.ok('config' in r);
    assert.equal(r.warnings.length, 1);
    assert.equal(r.warnings[0]?.path, 'default_x509_svid_ttl');
    assert.equal(r.warnings[0]?.severity, 'warning');
  });
});

describe('loadServerConfig', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-server-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads YAML and applies environment then flag overrides', async () => {
    const file = join(dir, 'server.yaml');
    await writeFile(
      file,
      'trust_domain: example.org\nlog_level: info\nhealth_checks:\n  listener_enabled: true\n',
    );
    const { config } = await loadServerConfig({
      configPath: file,
      env: {
        TESSERA_SERVER_LOG_LEVEL: 'warn',
        TESSERA_SERVER_HEALTH_CHECKS__BIND_PORT: '9090',
        HOME: '/root',
      },
      flags: { log_level: 'debug', bind_port: '9443' },
    });
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.bindPort, 9443);
    assert.equal(config.healthChecks.bindPort, 9090);
  });

  it('loads JSON', async () => {
    const file = join(dir, 'server.json');
    await writeFile(file, JSON.stringify({ trust_domain: 'example.org', bind_port: 9000 }));
    assert.equal((await loadServerConfig({ configPath: file })).config.bindPort, 9000);
  });

  it('throws ERR_CONFIG_INVALID listing every problem with its path and origin', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'trust_domain: example.org\nbind_port: 0\nca_ttl: forever\n');
    await assert.rejects(
      loadServerConfig({ configPath: file, env: { TESSERA_SERVER_LOG_LEVEL: 'loud' } }),
      (err) => {
        assert.ok(err instanceof ConfigValidationError);
        assert.equal(err.code, 'ERR_CONFIG_INVALID');
        assert.equal(err.issues.length, 3);
        assert.match(err.message, /^config: 3 problems in ".*bad\.yaml":\n/);
        assert.match(err.message, /\n {2}bind_port: must be at least 1, got 0/);
        assert.match(err.message, /\n {2}ca_ttl: must be a duration/);
        assert.match(
          err.message,
          /\n {2}log_level: must be one of .* \(from environment variable TESSERA_SERVER_LOG_LEVEL\)/,
        );
        return true;
      },
    );
  });

  it('rejects duplicate keys with their line', async () => {
    const file = join(dir, 'dup.yaml');
    await writeFile(file, 'trust_domain: example.org\ntrust_domain: other.org\n');
    await assert.rejects(loadServerConfig({ configPath: file }), {
      code: 'ERR_CONFIG_INVALID',
      message: /yaml: line 2, column 1: duplicate key "trust_domain"/,
    });
  });
});
