import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestCa } from '@tessera/testing';
import { HelperConfigError, parseConfigText, validateHelperConfig } from './config/config.js';
import { createRemoteClient, readAttestations } from './remote.js';

const cwd = '/work';
const x509 = { svid_file_name: 'a.pem', svid_key_file_name: 'k.pem', svid_bundle_file_name: 'b.pem' };

function issuesOf(raw: unknown, env: Record<string, string> = {}): [string, string][] {
  try {
    validateHelperConfig(raw, { env, cwd });
  } catch (err) {
    assert.ok(err instanceof HelperConfigError, String(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.issues.map((i) => [i.path, i.message]);
  }
  assert.fail('expected a configuration error');
}

describe('remote_attestation configuration', () => {
  let dir: string;
  let caFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-helper-remote-conf-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, TestCa.create({ trustDomain: 'example.org' }).rootPem());
    writeFileSync(join(dir, 'not-pem.txt'), 'hello');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('validates a complete block into typed settings, with no Workload API address', () => {
    const c = validateHelperConfig(
      {
        ...x509,
        remote_attestation: {
          server_address: 'https://spiffe.example.org:8444/',
          ca_file: caFile,
          server_spiffe_id: 'spiffe://example.org/spire/server',
          attestations: [
            { type: 'gcp_iit', token_file: 'run/token' },
            { type: 'aws_token', token_env: 'AWS_TOKEN' },
            { type: 'azure_msi', token_command: 'curl -sf http://169.254.169.254/token' },
          ],
        },
      },
      { env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///ignored.sock' }, cwd },
    );
    assert.equal(c.agentAddress, undefined);
    const r = c.remoteAttestation;
    assert.ok(r);
    assert.equal(r.serverAddress, 'https://spiffe.example.org:8444');
    assert.equal(r.caFile, caFile);
    assert.match(r.caPem ?? '', /^-----BEGIN CERTIFICATE-----/);
    assert.equal(r.serverSpiffeId, 'spiffe://example.org/spire/server');
    assert.deepEqual(r.attestations, [
      { type: 'gcp_iit', token: { kind: 'file', path: '/work/run/token' } },
      { type: 'aws_token', token: { kind: 'env', name: 'AWS_TOKEN' } },
      { type: 'azure_msi', token: { kind: 'command', command: 'curl -sf http://169.254.169.254/token' } },
    ]);
  });

  it('accepts a single attestation object (an HCL block) and no CA file (the system store)', () => {
    const c = validateHelperConfig(
      {
        ...x509,
        remote_attestation: {
          server_address: 'https://spiffe.example.org',
          attestations: { type: 'gcp_iit', token_env: 'T' },
        },
      },
      { env: {}, cwd },
    );
    assert.equal(c.remoteAttestation?.caPem, undefined);
    assert.equal(c.remoteAttestation?.attestations.length, 1);
  });

  it('reads the block from spiffe-helper style HCL, repeated attestations blocks forming the list', () => {
    const raw = parseConfigText(
      `svid_file_name = "a.pem"
svid_key_file_name = "k.pem"
svid_bundle_file_name = "b.pem"
remote_attestation {
  server_address = "https://s.example.org:8444"
  attestations {
    type = "gcp_iit"
    token_env = "T"
  }
  attestations {
    type = "aws_token"
    token_file = "/t"
  }
}`,
      'hcl',
    );
    const c = validateHelperConfig(raw, { format: 'hcl', env: {}, cwd });
    assert.deepEqual(c.remoteAttestation?.attestations, [
      { type: 'gcp_iit', token: { kind: 'env', name: 'T' } },
      { type: 'aws_token', token: { kind: 'file', path: '/t' } },
    ]);
  });

  const good = {
    server_address: 'https://s.example.org',
    attestations: [{ type: 'gcp_iit', token_env: 'T' }],
  };
  const cases: { name: string; raw: () => Record<string, unknown>; issues: [string, RegExp][] }[] = [
    {
      name: 'agent_address set as well',
      raw: () => ({ ...x509, agent_address: '/tmp/a.sock', remote_attestation: good }),
      issues: [['agent_address', /must not be set with remote_attestation/]],
    },
    {
      name: 'not an object',
      raw: () => ({ ...x509, remote_attestation: 'https://s.example.org' }),
      issues: [['remote_attestation', /must be an object, got string/]],
    },
    {
      name: 'unknown keys at both levels',
      raw: () => ({
        ...x509,
        remote_attestation: {
          ...good,
          retries: 3,
          attestations: [{ type: 'gcp_iit', token_env: 'T', x: 1 }],
        },
      }),
      issues: [
        ['remote_attestation.retries', /unknown key/],
        ['remote_attestation.attestations[0].x', /unknown key/],
      ],
    },
    {
      name: 'missing server_address and attestations',
      raw: () => ({ ...x509, remote_attestation: {} }),
      issues: [
        ['remote_attestation.server_address', /is required/],
        ['remote_attestation.attestations', /is required/],
      ],
    },
    ...(
      [
        ['plain http', 'http://s.example.org', /must be an https URL/],
        ['not a URL', 's.example.org:8444', /must be an https URL/],
        ['credentials', 'https://u:p@s.example.org', /must not contain credentials/],
        ['a path', 'https://s.example.org/spiffe', /must be a bare origin/],
        ['a query', 'https://s.example.org/?a=1', /must be a bare origin/],
      ] as const
    ).map(([what, address, re]) => ({
      name: `server_address with ${what}`,
      raw: () => ({ ...x509, remote_attestation: { ...good, server_address: address } }),
      issues: [['remote_attestation.server_address', re]] as [string, RegExp][],
    })),
    {
      name: 'a missing CA file and a file without certificates',
      raw: () => ({ ...x509, remote_attestation: { ...good, ca_file: join(dir, 'missing.pem') } }),
      issues: [['remote_attestation.ca_file', /cannot read ".*missing\.pem" \(ENOENT\)/]],
    },
    {
      name: 'a CA file without certificates',
      raw: () => ({ ...x509, remote_attestation: { ...good, ca_file: join(dir, 'not-pem.txt') } }),
      issues: [['remote_attestation.ca_file', /holds no PEM certificate/]],
    },
    {
      name: 'server_spiffe_id invalid and without ca_file',
      raw: () => ({ ...x509, remote_attestation: { ...good, server_spiffe_id: 'spiffe://Example.org/x' } }),
      issues: [
        ['remote_attestation.server_spiffe_id', /invalid SPIFFE ID: spiffeid: /],
        ['remote_attestation.server_spiffe_id', /needs ca_file/],
      ],
    },
    {
      name: 'empty attestations',
      raw: () => ({ ...x509, remote_attestation: { ...good, attestations: [] } }),
      issues: [['remote_attestation.attestations', /must not be empty/]],
    },
    {
      name: 'too many attestations',
      raw: () => ({
        ...x509,
        remote_attestation: {
          ...good,
          attestations: Array.from({ length: 9 }, (_, i) => ({ type: `t${i}`, token_env: 'T' })),
        },
      }),
      issues: [['remote_attestation.attestations', /at most 8 attestations, got 9/]],
    },
    {
      name: 'bad attestation entries',
      raw: () => ({
        ...x509,
        remote_attestation: {
          ...good,
          attestations: [
            { token_env: 'T' },
            { type: 'gcp_iit' },
            { type: 'aws_token', token_file: '/t', token_command: 'cat /t' },
            { type: 'gcp_iit', token_env: 'T' },
            { type: 'x', token_env: '1BAD' },
            { type: 'y', token_file: '' },
            { type: 'z', token_command: '  ' },
            'gcp_iit',
          ],
        },
      }),
      issues: [
        ['remote_attestation.attestations[0].type', /is required/],
        ['remote_attestation.attestations[1]', /needs one of token_file, token_env or token_command/],
        ['remote_attestation.attestations[2]', /takes only one of .*got token_file and token_command/],
        ['remote_attestation.attestations[3].type', /"gcp_iit" is given twice/],
        ['remote_attestation.attestations[4].token_env', /must be an environment variable name, got "1BAD"/],
        ['remote_attestation.attestations[5].token_file', /must not be empty/],
        ['remote_attestation.attestations[6].token_command', /must not be empty/],
        ['remote_attestation.attestations[7]', /must be an object, got string/],
      ],
    },
    {
      name: 'hint and include_federated_domains, which the serverless API cannot honour',
      raw: () => ({ ...x509, hint: 'internal', include_federated_domains: true, remote_attestation: good }),
      issues: [
        ['hint', /is not used with remote_attestation/],
        ['include_federated_domains', /serves only the own trust domain bundle/],
      ],
    },
  ];
  for (const tc of cases) {
    it(`reports ${tc.name}`, () => {
      const got = issuesOf(tc.raw());
      assert.equal(got.length, tc.issues.length, JSON.stringify(got));
      tc.issues.forEach(([path, re], i) => {
        assert.equal(got[i]?.[0], path, JSON.stringify(got));
        assert.match(got[i]?.[1] ?? '', re);
      });
    });
  }
});

describe('readAttestations', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-helper-tokens-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('re-reads files and re-runs commands on every call', async () => {
    const file = join(dir, 'token');
    const counter = join(dir, 'count');
    writeFileSync(counter, '0');
    const inputs = [
      { type: 'gcp_iit', token: { kind: 'file' as const, path: file } },
      { type: 'aws_token', token: { kind: 'env' as const, name: 'AWS_TOKEN' } },
      {
        type: 'azure_msi',
        token: {
          kind: 'command' as const,
          command: `n=$(($(cat ${counter}) + 1)); echo $n > ${counter}; printf 'cmd.token.%s\\n' $n`,
        },
      },
    ];
    writeFileSync(file, 'file.token.1\n');
    const env = { AWS_TOKEN: ' env.token ' };
    assert.deepEqual(await readAttestations(inputs, { env }), [
      { type: 'gcp_iit', evidence: 'file.token.1' },
      { type: 'aws_token', evidence: 'env.token' },
      { type: 'azure_msi', evidence: 'cmd.token.1' },
    ]);
    writeFileSync(file, 'file.token.2');
    assert.deepEqual(
      (await readAttestations(inputs, { env })).map((a) => a.evidence),
      ['file.token.2', 'env.token', 'cmd.token.2'],
    );
  });

  const failures: {
    name: string;
    token: Parameters<typeof readAttestations>[0][number]['token'];
    re: RegExp;
  }[] = [
    {
      name: 'a missing file',
      token: { kind: 'file', path: '/nonexistent/token' },
      re: /attestations\[0\]: cannot read token_file "\/nonexistent\/token" \(ENOENT\)/,
    },
    {
      name: 'an unset variable',
      token: { kind: 'env', name: 'UNSET_VAR' },
      re: /token_env UNSET_VAR gave no token/,
    },
    {
      name: 'a failing command (stderr kept, stdout never shown)',
      token: { kind: 'command', command: 'echo the-secret; echo metadata down >&2; exit 3' },
      re: /^helper: remote_attestation\.attestations\[0\]: token_command exited with code 3: metadata down$/,
    },
    {
      name: 'a command printing nothing',
      token: { kind: 'command', command: 'true' },
      re: /token_command gave no token/,
    },
    {
      name: 'a command printing two words',
      token: { kind: 'command', command: 'echo a b' },
      re: /token_command gave more than one word/,
    },
    {
      name: 'a command over its time limit',
      token: { kind: 'command', command: 'sleep 5' },
      re: /token_command was stopped \(SIGTERM\)/,
    },
  ];
  for (const f of failures) {
    it(`fails closed on ${f.name}`, async () => {
      await assert.rejects(
        readAttestations([{ type: 'gcp_iit', token: f.token }], { env: {}, commandTimeoutMs: 300 }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ERR_CONFIG_INVALID');
          assert.match(err.message, f.re);
          assert.doesNotMatch(err.message, /the-secret/);
          return true;
        },
      );
    });
  }
});

describe('createRemoteClient', () => {
  it('reports a token that cannot be read as the request failure, before anything is sent', async () => {
    const client = createRemoteClient(
      {
        // Nothing listens here: the failure must come from the token, not the network.
        serverAddress: 'https://127.0.0.1:9',
        caFile: undefined,
        caPem: undefined,
        serverSpiffeId: undefined,
        attestations: [{ type: 'gcp_iit', token: { kind: 'env', name: 'NO_SUCH_TOKEN' } }],
      },
      { env: {} },
    );
    try {
      await assert.rejects(client.fetchX509Context(), {
        code: 'ERR_WORKLOADAPI_UNAVAILABLE',
        message: /remote: attestations could not be produced: .*token_env NO_SUCH_TOKEN gave no token/,
      });
    } finally {
      client.close();
    }
  });
});
