import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type AgentConfig,
  loadAgentAdminSocketPath,
  loadAgentConfig,
  redactAgentConfig,
  validateAgentConfig,
} from './index.js';

const BASE = {
  trust_domain: 'example.org',
  server_address: 'tessera-server',
  trust_bundle_path: 'bundle.pem',
  join_token: 'tok-SECRET-1',
};

function valid(raw: Record<string, unknown>): AgentConfig {
  const r = validateAgentConfig(raw);
  if (!('config' in r)) assert.fail(`expected a valid config, got ${JSON.stringify(r.errors)}`);
  return r.config;
}

function errorsOf(raw: Record<string, unknown>): { path: string; message: string }[] {
  const r = validateAgentConfig(raw);
  if ('config' in r) assert.fail('expected validation errors');
  return r.errors.map(({ path, message }) => ({ path, message }));
}

function without(key: keyof typeof BASE): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...BASE };
  delete copy[key];
  return copy;
}

describe('validateAgentConfig', () => {
  it('fills every default from a minimal config', () => {
    const c = valid(BASE);
    assert.equal(c.trustDomain.name, 'example.org');
    assert.equal(c.serverAddress, 'tessera-server');
    assert.equal(c.serverPort, 8081);
    assert.deepEqual(c.trustBootstrap, { type: 'bundle_path', path: 'bundle.pem' });
    assert.deepEqual(c.nodeAttestor, { type: 'join_token', token: 'tok-SECRET-1' });
    assert.equal(c.socketPath, '/tmp/tessera-agent/public/api.sock');
    assert.equal(c.adminSocketPath, '/tmp/tessera-agent/private/admin.sock');
    assert.equal(c.dataDir, './.tessera/agent');
    assert.equal(c.logLevel, 'info');
    assert.deepEqual(c.sds, {
      defaultSvidName: 'default',
      defaultBundleName: 'ROOTCA',
      defaultAllBundlesName: 'ALL',
      disableSpiffeCertValidation: false,
    });
    assert.deepEqual(c.workloadAttestors, { unix: { discoverWorkloadPath: false } });
    assert.equal(c.x509SvidCacheMaxSize, 1000);
    assert.equal(c.jwtSvidCacheMaxSize, 1000);
    assert.equal(c.availabilityTarget, undefined);
  });

  it('reads x509pop, a bundle URL and the other sections', () => {
    const c = valid({
      trust_domain: 'example.org',
      server_address: '10.0.0.1',
      trust_bundle_url: 'https://bundles.example.org/root.json',
      trust_bundle_format: 'spiffe',
      node_attestor: { x509pop: { private_key_path: 'k.pem', certificate_path: 'c.pem' } },
      workload_attestors: {
        unix: { discover_workload_path: true, workload_size_limit: '64MiB' },
        docker: null,
      },
      metrics: { bind_port: 9100 },
      availability_target: '24h',
    });
    assert.equal(c.trustBootstrap.type, 'bundle_url');
    assert.deepEqual(c.nodeAttestor, { type: 'x509pop', privateKeyPath: 'k.pem', certificatePath: 'c.pem' });
    assert.equal(c.workloadAttestors.unix.workloadSizeLimit, 64 * 1024 * 1024);
    assert.deepEqual(c.workloadAttestors.docker, {});
    assert.deepEqual(c.metrics, { bindAddress: 'localhost', bindPort: 9100 });
    assert.equal(c.availabilityTarget?.toString(), '24h');
  });

  it('accepts insecure_bootstrap only when explicitly true, with a warning', () => {
    const r = validateAgentConfig({ ...without('trust_bundle_path'), insecure_bootstrap: true });
    assert.ok('config' in r);
    assert.deepEqual(r.config.trustBootstrap, { type: 'insecure' });
    assert.equal(r.warnings[0]?.path, 'insecure_bootstrap');
  });

  it('accepts cache sizes of exactly 1000000', () => {
    const c = valid({ ...BASE, x509_svid_cache_max_size: 1_000_000, jwt_svid_cache_max_size: 1_000_000 });
    assert.equal(c.x509SvidCacheMaxSize, 1_000_000);
    assert.equal(c.jwtSvidCacheMaxSize, 1_000_000);
  });

  it('accepts join_token attestation without a token (given to run, or not needed with a stored agent SVID)', () => {
    assert.deepEqual(valid({ ...without('join_token'), node_attestor: { join_token: {} } }).nodeAttestor, {
      type: 'join_token',
    });
    assert.deepEqual(valid(without('join_token')).nodeAttestor, { type: 'join_token' });
  });

  const bad: { name: string; raw: Record<string, unknown>; path: string; message: RegExp }[] = [
    {
      name: 'no way to trust the server',
      raw: without('trust_bundle_path'),
      path: '',
      message: /set one of trust_bundle_path, trust_bundle_url, or insecure_bootstrap: true/,
    },
    {
      name: 'insecure_bootstrap false as the only option',
      raw: { ...without('trust_bundle_path'), insecure_bootstrap: false },
      path: '',
      message: /set one of/,
    },
    {
      name: 'insecure_bootstrap given as a string',
      raw: { ...without('trust_bundle_path'), insecure_bootstrap: 'true' },
      path: 'insecure_bootstrap',
      message: /must be true or false, got "true"/,
    },
    {
      name: 'a bundle path with insecure_bootstrap',
      raw: { ...BASE, insecure_bootstrap: true },
      path: 'insecure_bootstrap',
      message: /trust_bundle_path and insecure_bootstrap are mutually exclusive/,
    },
    {
      name: 'a bundle path with a bundle URL',
      raw: { ...BASE, trust_bundle_url: 'https://x/b.pem' },
      path: 'trust_bundle_url',
      message: /mutually exclusive/,
    },
    {
      name: 'an http bundle URL',
      raw: { ...without('trust_bundle_path'), trust_bundle_url: 'http://x/b.pem' },
      path: 'trust_bundle_url',
      message: /must use scheme "https"/,
    },
    {
      name: 'a bundle format without a URL',
      raw: { ...BASE, trust_bundle_format: 'spiffe' },
      path: 'trust_bundle_format',
      message: /only used with trust_bundle_url/,
    },
    {
      name: 'a join token with x509pop',
      raw: { ...BASE, node_attestor: { x509pop: { private_key_path: 'k', certificate_path: 'c' } } },
      path: 'join_token',
      message: /cannot be combined with the x509pop/,
    },
    {
      name: 'two node attestors',
      raw: { ...BASE, node_attestor: { join_token: {}, x509pop: {} } },
      path: 'node_attestor',
      message: /exactly one of join_token, x509pop, got join_token and x509pop/,
    },
    {
      name: 'the admin socket in the public socket directory',
      raw: { ...BASE, admin_socket_path: '/tmp/tessera-agent/public/admin.sock' },
      path: 'admin_socket_path',
      message: /must not be in the public socket's directory/,
    },
    {
      name: 'the admin socket below the public socket directory',
      raw: { ...BASE, socket_path: '/run/a/api.sock', admin_socket_path: '/run/a/priv/admin.sock' },
      path: 'admin_socket_path',
      message: /or below it/,
    },
    {
      name: 'the admin socket equal to the public socket',
      raw: { ...BASE, socket_path: '/run/a.sock', admin_socket_path: '/run/a.sock' },
      path: 'admin_socket_path',
      message: /must differ from socket_path/,
    },
    {
      name: 'duplicate SDS names',
      raw: { ...BASE, sds: { default_bundle_name: 'ALL' } },
      path: 'sds.default_all_bundles_name',
      message: /must differ from default_bundle_name, both are "ALL"/,
    },
    {
      name: 'an SDS name with a space',
      raw: { ...BASE, sds: { default_svid_name: 'my svid' } },
      path: 'sds.default_svid_name',
      message: /printable ASCII without spaces/,
    },
    {
      name: 'a cache size of zero',
      raw: { ...BASE, x509_svid_cache_max_size: 0 },
      path: 'x509_svid_cache_max_size',
      message: /must be at least 1/,
    },
    {
      name: 'an X509-SVID cache size of 1e15',
      raw: { ...BASE, x509_svid_cache_max_size: 1e15 },
      path: 'x509_svid_cache_max_size',
      message: /must be at most 1000000, got 1000000000000000/,
    },
    {
      name: 'an X509-SVID cache size one above the maximum',
      raw: { ...BASE, x509_svid_cache_max_size: 1_000_001 },
      path: 'x509_svid_cache_max_size',
      message: /must be at most 1000000, got 1000001/,
    },
    {
      name: 'a JWT-SVID cache size above the maximum',
      raw: { ...BASE, jwt_svid_cache_max_size: 5_000_000 },
      path: 'jwt_svid_cache_max_size',
      message: /must be at most 1000000, got 5000000/,
    },
    {
      name: 'an availability target under 24h',
      raw: { ...BASE, availability_target: '12h' },
      path: 'availability_target',
      message: /must be at least 24h/,
    },
    {
      name: 'an unknown workload attestor',
      raw: { ...BASE, workload_attestors: { k8s: {} } },
      path: 'workload_attestors.k8s',
      message: /unknown key "k8s" in section "workload_attestors"/,
    },
    {
      name: 'a non-string join token',
      raw: { ...BASE, join_token: 1234567 },
      path: 'join_token',
      message: /must be a string, got a number \(value redacted\)/,
    },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name}`, () => {
      const errs = errorsOf(tc.raw);
      assert.equal(errs.length, 1, JSON.stringify(errs));
      assert.equal(errs[0]?.path, tc.path);
      assert.match(errs[0]?.message ?? '', tc.message);
      assert.doesNotMatch(JSON.stringify(errs), /tok-SECRET-1|1234567/);
    });
  }

  it('never shows the join token in the redacted config', () => {
    const red = JSON.stringify(redactAgentConfig(valid(BASE)));
    assert.doesNotMatch(red, /tok-SECRET-1/);
    assert.match(red, /"node_attestor":\{"type":"join_token","token":"\[redacted\]"\}/);
  });
});

describe('loadAgentConfig', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-agent-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a file with the join token from the environment', async () => {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, 'trust_domain: example.org\nserver_address: localhost\ntrust_bundle_path: b.pem\n');
    const { config } = await loadAgentConfig({
      configPath: file,
      env: { TESSERA_AGENT_JOIN_TOKEN: 'from-env' },
      flags: { server_port: '9443' },
    });
    assert.deepEqual(config.nodeAttestor, { type: 'join_token', token: 'from-env' });
    assert.equal(config.serverPort, 9443);
  });

  it('throws ERR_CONFIG_INVALID with every problem', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'trust_domain: example.org\nserver_port: 99999\nsocket_path: ""\n');
    await assert.rejects(loadAgentConfig({ configPath: file }), {
      code: 'ERR_CONFIG_INVALID',
      message:
        /3 problems.*\n {2}server_address: is required\n {2}server_port: must be at most 65535, got 99999\n {2}socket_path: must not be empty$/s,
    });
  });
});

describe('loadAgentAdminSocketPath', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-agent-admin-socket-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads admin_socket_path and ignores every other key, valid or not', async () => {
    const file = join(dir, 'partial.yaml');
    await writeFile(
      file,
      'admin_socket_path: /run/tessera/private/admin.sock\nserver_port: 99999\nfuture_key: 1\n',
    );
    assert.equal(await loadAgentAdminSocketPath({ configPath: file }), '/run/tessera/private/admin.sock');
  });

  it('returns the default when the key is absent, and takes the environment override', async () => {
    const file = join(dir, 'empty.yaml');
    await writeFile(file, 'trust_domain: example.org\n');
    assert.equal(
      await loadAgentAdminSocketPath({ configPath: file }),
      '/tmp/tessera-agent/private/admin.sock',
    );
    assert.equal(
      await loadAgentAdminSocketPath({
        configPath: file,
        env: { TESSERA_AGENT_ADMIN_SOCKET_PATH: '/run/a/admin.sock' },
      }),
      '/run/a/admin.sock',
    );
  });

  it('throws ERR_CONFIG_INVALID naming admin_socket_path when it is invalid', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'admin_socket_path: ""\n');
    await assert.rejects(loadAgentAdminSocketPath({ configPath: file }), {
      code: 'ERR_CONFIG_INVALID',
      message: /\n {2}admin_socket_path: must not be empty$/,
    });
  });
});
