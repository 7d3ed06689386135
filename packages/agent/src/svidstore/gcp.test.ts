import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createGcpSvidStore, GCP_OWNER_LABEL, gcpOwnerLabelValue } from './gcp.js';
import { marshalStoredSvid, type SvidStore } from './store.js';
import { FakeGcpSecretManager } from './test-support/fake-gcp.js';
import { storedSvidFixture, type TlsFixture, tlsFixture } from './test-support/fixtures.js';

const sel = (...values: string[]) => values.map((value) => ({ type: 'gcp_secretmanager', value }));
const owner = createHash('sha1').update('example.org').digest('hex');

describe('gcp_secretmanager store (official client over gRPC+TLS against a local SecretManagerService)', () => {
  let tls: TlsFixture;
  let fake: FakeGcpSecretManager;
  let store: SvidStore;

  before(async () => {
    tls = tlsFixture();
    fake = await FakeGcpSecretManager.start({ certPem: tls.certPem, keyPem: tls.keyPem });
    store = createGcpSvidStore({
      trustDomain: 'example.org',
      projectId: 'default-project',
      endpoint: fake.endpoint,
      caFile: tls.caFile,
      requestTimeoutMs: 5000,
    });
  });
  after(async () => {
    await store.close();
    await fake.close();
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it('labels secrets with the SHA-1 of the trust domain name, as SPIRE', () => {
    assert.equal(gcpOwnerLabelValue('example.org'), owner);
    assert.equal(GCP_OWNER_LABEL, 'spire-svid');
  });

  it('creates a labelled secret with automatic replication and adds the document as a version', async () => {
    const secret = storedSvidFixture('created');
    await store.put(secret, sel('name:created', 'projectid:proj-a'));
    const s = fake.secrets.get('projects/proj-a/secrets/created');
    assert.ok(s);
    assert.deepEqual(s.labels, { 'spire-svid': owner });
    assert.equal(s.automaticReplication, true);
    assert.equal(s.versions.length, 1);
    assert.equal(s.versions[0]?.toString('utf8'), marshalStoredSvid(secret));
    assert.deepEqual(fake.calls.slice(-3), ['GetSecret', 'CreateSecret', 'AddSecretVersion']);
  });

  it('adds a version to an owned secret, using the configured project by default', async () => {
    await store.put(storedSvidFixture('v1'), sel('name:updated'));
    await store.put(storedSvidFixture('v2'), sel('name:updated'));
    const s = fake.secrets.get('projects/default-project/secrets/updated');
    assert.equal(s?.versions.length, 2);
    assert.match(s.versions[1]?.toString() ?? '', /example\.org\/v2/);
  });

  const foreign = [
    { name: 'no label', labels: {} },
    { name: 'the label of another trust domain', labels: { 'spire-svid': gcpOwnerLabelValue('other.org') } },
    { name: 'label "true"', labels: { 'spire-svid': 'true' } },
  ];
  for (const tc of foreign) {
    it(`refuses to write or delete a secret with ${tc.name}`, async () => {
      const name = `projects/proj-a/secrets/foreign-${foreign.indexOf(tc)}`;
      const s = fake.seed(name, tc.labels);
      const id = name.split('/').at(-1) as string;
      await assert.rejects(store.put(storedSvidFixture(), sel(`name:${id}`, 'projectid:proj-a')), {
        code: 'ERR_SVIDSTORE_NOT_OWNED',
        message: new RegExp(`secret "${name}" does not carry the label "spire-svid=${owner}"`),
      });
      await assert.rejects(store.delete(sel(`name:${id}`, 'projectid:proj-a')), {
        code: 'ERR_SVIDSTORE_NOT_OWNED',
      });
      assert.equal(s.versions.length, 1);
      assert.ok(fake.secrets.has(name));
    });
  }

  it('deletes an owned secret (with its etag) and treats a missing one as deleted', async () => {
    await store.put(storedSvidFixture(), sel('name:gone', 'projectid:proj-a'));
    assert.ok(fake.secrets.has('projects/proj-a/secrets/gone'));
    await store.delete(sel('name:gone', 'projectid:proj-a'));
    assert.ok(!fake.secrets.has('projects/proj-a/secrets/gone'));
    await store.delete(sel('name:gone', 'projectid:proj-a'));
  });

  it('does not trust the endpoint without the configured CA', async () => {
    const untrusted = tlsFixture();
    const other = createGcpSvidStore({
      trustDomain: 'example.org',
      projectId: 'p',
      endpoint: fake.endpoint,
      caFile: untrusted.caFile,
      requestTimeoutMs: 3000,
    });
    try {
      await assert.rejects(other.put(storedSvidFixture(), sel('name:untrusted')), {
        code: 'ERR_SVIDSTORE_FAILED',
        message: /gcp_secretmanager GetSecret of "projects\/p\/secrets\/untrusted" failed/,
      });
      assert.ok(!fake.secrets.has('projects/p/secrets/untrusted'));
    } finally {
      await other.close();
      rmSync(untrusted.dir, { recursive: true, force: true });
    }
  });

  const invalid = [
    { name: 'no name', selectors: sel('projectid:p'), msg: /needs a "gcp_secretmanager:name:<name>"/ },
    { name: 'a name with a slash', selectors: sel('name:a/b'), msg: /is not a valid secret ID/ },
    {
      name: 'a project with a slash',
      selectors: sel('name:a', 'projectid:p/secrets/x'),
      msg: /is not a valid project ID/,
    },
    {
      name: 'an unknown key',
      selectors: sel('name:a', 'secretproject:p'),
      msg: /unknown selector key "secretproject"/,
    },
  ];
  for (const tc of invalid) {
    it(`rejects selectors with ${tc.name}`, () => {
      assert.throws(() => store.validate(tc.selectors), { code: 'ERR_SVIDSTORE_INVALID', message: tc.msg });
    });
  }

  it('needs a project from the selectors or the configuration', () => {
    const noProject = createGcpSvidStore({ trustDomain: 'example.org' });
    assert.throws(() => noProject.validate(sel('name:a')), {
      code: 'ERR_SVIDSTORE_INVALID',
      message: /needs a "gcp_secretmanager:projectid:<project>" selector/,
    });
  });
});
