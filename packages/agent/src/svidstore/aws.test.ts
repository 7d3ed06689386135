import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { AWS_OWNER_TAG, createAwsSvidStore } from './aws.js';
import { marshalStoredSvid, type SvidStore } from './store.js';
import { FakeAwsSecretsManager } from './test-support/fake-aws.js';
import { storedSvidFixture, type TlsFixture, tlsFixture } from './test-support/fixtures.js';

const creds = { accessKeyId: 'AKIDTESSERATEST', secretAccessKey: 'tessera-test-secret-key' };
const region = 'us-east-1';
const sel = (...values: string[]) => values.map((value) => ({ type: 'aws_secretsmanager', value }));

describe('aws_secretsmanager store (AWS SDK v3 against a local JSON 1.1 endpoint)', () => {
  let tls: TlsFixture;
  let fake: FakeAwsSecretsManager;
  let store: SvidStore;

  before(async () => {
    tls = tlsFixture();
    fake = await FakeAwsSecretsManager.start({ certPem: tls.certPem, keyPem: tls.keyPem, region, ...creds });
    store = createAwsSvidStore({ region, endpoint: fake.url, caFile: tls.caFile, credentials: creds });
  });
  after(async () => {
    await store.close();
    await fake.close();
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it('creates a secret tagged spire-svid=true holding the SPIRE document, with the KMS key', async () => {
    const secret = storedSvidFixture('created');
    await store.put(secret, sel('secretname:created', 'kmskeyid:alias/svids'));
    const s = fake.find('created');
    assert.ok(s);
    assert.deepEqual(s.tags, [{ Key: AWS_OWNER_TAG.key, Value: AWS_OWNER_TAG.value }]);
    assert.equal(s.kmsKeyId, 'alias/svids');
    assert.equal(s.versions.length, 1);
    const doc = JSON.parse((s.versions[0] as Buffer).toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc), ['spiffeID', 'x509SVID', 'x509SVIDKey', 'bundle']);
    assert.equal(doc.spiffeID, 'spiffe://example.org/created');
    assert.equal(doc.x509SVIDKey, secret.x509SvidKey);
    assert.equal(fake.badSignatures, 0, 'every request carried a valid SigV4 signature');
  });

  it('updates an owned secret with PutSecretValue, by name and by ARN', async () => {
    await store.put(storedSvidFixture('v1'), sel('secretname:updated'));
    const s = fake.find('updated');
    assert.ok(s);
    await store.put(storedSvidFixture('v2'), sel('secretname:updated'));
    await store.put(storedSvidFixture('v3'), sel(`arn:${s.arn}`));
    assert.equal(s.versions.length, 3);
    assert.match((s.versions[2] as Buffer).toString(), /"spiffeID":"spiffe:\/\/example\.org\/v3"/);
    assert.ok(fake.calls.includes('PutSecretValue'));
  });

  it('refuses to overwrite or delete a secret without the ownership tag', async () => {
    const foreign = fake.seed('foreign', [{ Key: 'team', Value: 'payments' }], Buffer.from('not ours'));
    const before = foreign.versions.length;
    await assert.rejects(store.put(storedSvidFixture(), sel('secretname:foreign')), {
      code: 'ERR_SVIDSTORE_NOT_OWNED',
      message: /secret "foreign" does not carry the "spire-svid: true" tag/,
    });
    await assert.rejects(store.delete(sel('secretname:foreign')), { code: 'ERR_SVIDSTORE_NOT_OWNED' });
    fake.seed('foreign-false', [{ Key: 'spire-svid', Value: 'false' }], Buffer.from('x'));
    await assert.rejects(store.put(storedSvidFixture(), sel('secretname:foreign-false')), {
      code: 'ERR_SVIDSTORE_NOT_OWNED',
    });
    assert.equal(foreign.versions.length, before);
    assert.equal(foreign.deletedDate, undefined);
  });

  it('deletes an owned secret with a 7-day recovery window, and restores it on the next put', async () => {
    await store.put(storedSvidFixture(), sel('secretname:deleted'));
    await store.delete(sel('secretname:deleted'));
    const s = fake.find('deleted');
    assert.ok(s?.deletedDate !== undefined);
    assert.equal(s.recoveryWindowDays, 7);
    await store.delete(sel('secretname:deleted')); // already scheduled: no-op
    await store.put(storedSvidFixture('back'), sel('secretname:deleted'));
    assert.equal(s.deletedDate, undefined);
    assert.match((s.versions.at(-1) as Buffer).toString(), /example\.org\/back/);
  });

  it('treats deleting a missing secret as done', async () => {
    await store.delete(sel('secretname:never-existed'));
  });

  it('cannot create a secret known only by ARN', async () => {
    await assert.rejects(
      store.put(
        storedSvidFixture(),
        sel('arn:arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-abc123'),
      ),
      { code: 'ERR_SVIDSTORE_INVALID', message: /does not exist and creating one needs .*secretname/ },
    );
  });

  it('reports backend failures as ERR_SVIDSTORE_FAILED without the document', async () => {
    fake.failNext = { op: 'CreateSecret', count: 1 };
    const secret = storedSvidFixture();
    const err = await store.put(secret, sel('secretname:flaky')).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e as Error & { code: string },
    );
    assert.equal(err.code, 'ERR_SVIDSTORE_FAILED');
    assert.match(err.message, /aws_secretsmanager CreateSecret of "flaky" failed/);
    assert.ok(!err.message.includes('PRIVATE KEY'));
    await store.put(secret, sel('secretname:flaky'));
    assert.equal(fake.find('flaky')?.versions[0]?.toString(), marshalStoredSvid(secret));
  });

  it('rejects a request with wrong credentials at the endpoint (the signature is checked)', async () => {
    const bad = createAwsSvidStore({
      region,
      endpoint: fake.url,
      caFile: tls.caFile,
      credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: 'wrong' },
    });
    try {
      await assert.rejects(bad.put(storedSvidFixture(), sel('secretname:sig')), {
        code: 'ERR_SVIDSTORE_FAILED',
        message: /InvalidSignatureException/,
      });
      assert.equal(fake.find('sig'), undefined);
    } finally {
      await bad.close();
    }
  });

  it('does not trust the endpoint without the configured CA', async () => {
    const noCa = createAwsSvidStore({ region, endpoint: fake.url, credentials: creds });
    try {
      await assert.rejects(noCa.put(storedSvidFixture(), sel('secretname:no-ca')), {
        code: 'ERR_SVIDSTORE_FAILED',
      });
      assert.equal(fake.find('no-ca'), undefined);
    } finally {
      await noCa.close();
    }
  });

  const invalid = [
    { name: 'no name nor ARN', selectors: sel('kmskeyid:k'), msg: /needs an "aws_secretsmanager:secretname/ },
    {
      name: 'an unknown key',
      selectors: sel('secretname:a', 'region:x'),
      msg: /unknown selector key "region"/,
    },
    { name: 'a repeated name', selectors: sel('secretname:a', 'secretname:b'), msg: /given more than once/ },
    { name: 'a malformed ARN', selectors: sel('arn:nope'), msg: /is not a Secrets Manager secret ARN/ },
    {
      name: 'a selector of another store',
      selectors: [{ type: 'disk', value: 'name:a' }],
      msg: /not of the store type/,
    },
    {
      name: 'a value without a key',
      selectors: sel('justavalue'),
      msg: /must be "aws_secretsmanager:<key>:<value>"/,
    },
  ];
  for (const tc of invalid) {
    it(`rejects selectors with ${tc.name}`, () => {
      assert.throws(() => store.validate(tc.selectors), { code: 'ERR_SVIDSTORE_INVALID', message: tc.msg });
    });
  }
});
