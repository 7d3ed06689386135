import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateAgentConfig } from '../config/load.js';
import { createSvidStores } from './index.js';

const base = {
  trust_domain: 'example.org',
  server_address: 'localhost',
  trust_bundle_path: 'bundle.pem',
  join_token: 'abc',
};

describe('svid_stores configuration', () => {
  it('configures no store by default', () => {
    const r = validateAgentConfig(base);
    assert.ok('config' in r);
    assert.deepEqual(r.config.svidStores, {});
    assert.deepEqual(createSvidStores(r.config.svidStores, 'example.org'), []);
  });

  it('builds every configured store', () => {
    const r = validateAgentConfig({
      ...base,
      svid_stores: {
        disk: { directory: '/var/lib/tessera/svids' },
        aws_secretsmanager: { region: 'eu-west-1', endpoint: 'https://localhost:4566', ca_file: 'ca.pem' },
        gcp_secretmanager: { project_id: 'my-project', endpoint: 'localhost:8443', ca_file: 'ca.pem' },
      },
    });
    assert.ok('config' in r, JSON.stringify('errors' in r ? r.errors : []));
    assert.equal(r.config.svidStores.awsSecretsmanager?.endpoint?.toString(), 'https://localhost:4566/');
    assert.deepEqual(
      createSvidStores(r.config.svidStores, 'example.org').map((s) => s.name),
      ['disk', 'aws_secretsmanager', 'gcp_secretmanager'],
    );
  });

  const bad = [
    { name: 'an unknown store', raw: { vault: {} }, path: /svid_stores\.vault/ },
    { name: 'a disk store without a directory', raw: { disk: {} }, path: /svid_stores\.disk\.directory/ },
    {
      name: 'an AWS store without a region',
      raw: { aws_secretsmanager: {} },
      path: /svid_stores\.aws_secretsmanager\.region/,
    },
    {
      name: 'an AWS endpoint over plain HTTP',
      raw: { aws_secretsmanager: { region: 'us-east-1', endpoint: 'http://localhost:4566' } },
      path: /svid_stores\.aws_secretsmanager\.endpoint/,
    },
    {
      name: 'a GCP endpoint without a port',
      raw: { gcp_secretmanager: { endpoint: 'localhost' } },
      path: /svid_stores\.gcp_secretmanager\.endpoint/,
    },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name}`, () => {
      const r = validateAgentConfig({ ...base, svid_stores: tc.raw });
      assert.ok('errors' in r);
      assert.ok(
        r.errors.some((e) => tc.path.test(e.path)),
        JSON.stringify(r.errors),
      );
    });
  }
});
