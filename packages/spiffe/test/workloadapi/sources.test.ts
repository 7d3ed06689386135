import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { BundleSource, JwtSource, WorkloadApiClient, X509Source } from '@tessera/spiffe/workloadapi';
import { FakeWorkloadApi, JWT_TEST_NOW, TestJwtAuthority } from '@tessera/testing';
import { blockingSleep, caA, caB, fakeSvid, recordingSleep, until } from './helpers.js';

const tdA = TrustDomain.fromString('example.org');
const tdB = TrustDomain.fromString('federated.org');
const closedX509 = { code: 'ERR_SOURCE_CLOSED', message: 'x509source: source is closed' };
const closedJwt = { code: 'ERR_SOURCE_CLOSED', message: 'jwtsource: source is closed' };
const closedBundle = { code: 'ERR_SOURCE_CLOSED', message: 'bundlesource: source is closed' };

describe('X509Source', { timeout: 30_000 }, () => {
  let api: FakeWorkloadApi;
  before(async () => {
    api = await FakeWorkloadApi.start();
  });
  after(async () => {
    await api.close();
  });

  it('resolves after the first context and serves the SVID and bundles', async () => {
    api.setX509Svids([fakeSvid(caA, '/web')], { 'spiffe://federated.org': caB.der });
    const source = await X509Source.create({ address: api.address });
    try {
      assert.equal(source.getX509Svid().id.toString(), 'spiffe://example.org/web');
      assert.ok(source.getX509BundleForTrustDomain(tdA).hasX509Authority(caA.certificate));
      assert.ok(source.x509Bundles().getX509BundleForTrustDomain(tdB).hasX509Authority(caB.certificate));
      assert.throws(() => source.getX509BundleForTrustDomain(TrustDomain.fromString('unknown.org')), {
        code: 'ERR_BUNDLE_NOT_FOUND',
      });
    } finally {
      await source.close();
    }
  });

  it('follows rotation and tells listeners about updates but not the initial load', async () => {
    api.setX509Svids([fakeSvid(caA, '/web')], { 'spiffe://federated.org': caB.der });
    const source = await X509Source.create({ address: api.address });
    let notified = 0;
    source.onUpdate(() => notified++);
    const before = source.getX509Svid();
    assert.equal(notified, 0);
    const rotated = fakeSvid(caA, '/web');
    api.setX509Svids([rotated]);
    await until(() => notified === 1, 'rotation');
    const after = source.getX509Svid();
    assert.notEqual(after.certificates[0]!.serialNumber, before.certificates[0]!.serialNumber);
    assert.equal(
      Buffer.compare(
        after.certificates[0]!.raw,
        rotated.chainDer.subarray(0, after.certificates[0]!.raw.length),
      ),
      0,
    );
    // The federated bundle is gone from the newer message, so it is gone from the source (WAPI-06).
    assert.throws(() => source.getX509BundleForTrustDomain(tdB), { code: 'ERR_BUNDLE_NOT_FOUND' });
    await source.close();
  });

  it('uses the picker to choose the default SVID', async () => {
    api.setX509Svids([fakeSvid(caA, '/a'), fakeSvid(caA, '/b', 'backend')]);
    const source = await X509Source.create({
      address: api.address,
      picker: (svids) => svids.find((s) => s.hint === 'backend')!,
    });
    assert.equal(source.getX509Svid().id.path, '/b');
    assert.equal(source.getX509Svids().length, 2);
    await source.close();
  });

  it('keeps waiting through retryable failures and then resolves', async () => {
    const { delays, sleep } = recordingSleep();
    api.setX509Svids([fakeSvid(caA, '/web')]);
    api.setError('FetchX509SVID', { code: status.UNAVAILABLE, details: 'down' }, 2);
    const source = await X509Source.create({ address: api.address, clientOptions: { sleep } });
    assert.deepEqual(delays, [1000, 2000]);
    assert.equal(source.getX509Svid().id.path, '/web');
    await source.close();
  });

  it('rejects when the watch stops on InvalidArgument', async () => {
    api.setError('FetchX509SVID', { code: status.INVALID_ARGUMENT, details: 'bad request' });
    try {
      await assert.rejects(X509Source.create({ address: api.address }), {
        code: 'ERR_WORKLOADAPI_INVALID_ARGUMENT',
        message: 'workloadapi: FetchX509SVID failed with INVALID_ARGUMENT: bad request',
      });
    } finally {
      api.setError('FetchX509SVID', undefined);
    }
  });

  it('rejects with the abort reason when the signal aborts while it waits', async () => {
    api.clearX509Svids();
    const { delays, sleep } = blockingSleep();
    const ac = new AbortController();
    const p = X509Source.create({ address: api.address, clientOptions: { sleep }, signal: ac.signal });
    await until(() => delays.length === 1, 'first retry');
    ac.abort(new Error('gave up'));
    await assert.rejects(p, { message: 'gave up' });
  });

  it('throws ERR_SOURCE_CLOSED from every getter after close, and close is idempotent', async () => {
    api.setX509Svids([fakeSvid(caA, '/web')]);
    const source = await X509Source.create({ address: api.address });
    await source.close();
    await source.close();
    assert.throws(() => source.getX509Svid(), closedX509);
    assert.throws(() => source.getX509Svids(), closedX509);
    assert.throws(() => source.getX509BundleForTrustDomain(tdA), closedX509);
    assert.throws(() => source.x509Bundles(), closedX509);
  });

  it('closes a client it created but not one it was given', async () => {
    api.setX509Svids([fakeSvid(caA, '/web')]);
    const client = new WorkloadApiClient({ address: api.address });
    const source = await X509Source.create({ client });
    await source[Symbol.asyncDispose]();
    assert.equal(client.closed, false);
    assert.equal((await client.fetchX509Svid()).id.path, '/web');
    client.close();
    await assert.rejects(X509Source.create({ client, address: api.address }), TypeError);
  });
});

describe('JwtSource', { timeout: 30_000 }, () => {
  let api: FakeWorkloadApi;
  const auth = new TestJwtAuthority('example.org', { keyTypes: ['ec-p256'] });
  before(async () => {
    api = await FakeWorkloadApi.start();
  });
  after(async () => {
    await api.close();
  });

  it('waits for the JWT bundles and fetches a JWT-SVID live on every call', async () => {
    api.setJwtBundles({ 'spiffe://example.org': auth.jwtBundle().marshal() });
    api.setJwtSvids([
      {
        spiffeId: 'spiffe://example.org/web',
        token: auth.mint({ sub: 'spiffe://example.org/web', aud: ['db'] }),
      },
    ]);
    const source = await JwtSource.create({
      address: api.address,
      clientOptions: { now: () => JWT_TEST_NOW },
    });
    const kid = auth.keys()[0]!.kid;
    assert.ok(source.getJwtBundleForTrustDomain(tdA).findJwtAuthority(kid));
    const calls = api.callCount('FetchJWTSVID');
    const s1 = await source.fetchJwtSvid({ audience: 'db' });
    const s2 = await source.fetchJwtSvid({ audience: 'db' });
    assert.equal(api.callCount('FetchJWTSVID'), calls + 2);
    assert.equal(s1.id.path, '/web');
    assert.equal(s2.id.path, '/web');
    await source.close();
    await assert.rejects(source.fetchJwtSvid({ audience: 'db' }), closedJwt);
    assert.throws(() => source.getJwtBundleForTrustDomain(tdA), closedJwt);
    assert.throws(() => source.jwtBundles(), closedJwt);
  });

  it('follows JWT bundle updates', async () => {
    api.setJwtBundles({ 'spiffe://example.org': auth.jwtBundle().marshal() });
    const source = await JwtSource.create({ address: api.address });
    let notified = 0;
    source.onUpdate(() => notified++);
    const other = new TestJwtAuthority('federated.org', { keyTypes: ['ec-p256'], kidPrefix: 'fed-' });
    api.setJwtBundles({ 'spiffe://federated.org': other.jwtBundle().marshal() });
    await until(() => notified === 1, 'bundle update');
    assert.ok(source.getJwtBundleForTrustDomain(tdB).findJwtAuthority('fed-ec-p256'));
    assert.throws(() => source.getJwtBundleForTrustDomain(tdA), { code: 'ERR_BUNDLE_NOT_FOUND' });
    await source.close();
  });
});

describe('BundleSource', { timeout: 30_000 }, () => {
  let api: FakeWorkloadApi;
  const auth = new TestJwtAuthority('example.org', { keyTypes: ['ec-p256'] });
  before(async () => {
    api = await FakeWorkloadApi.start();
  });
  after(async () => {
    await api.close();
  });

  it('watches the two bundle streams, not FetchX509SVID, and waits for both', async () => {
    api.setX509Bundles({ 'spiffe://example.org': caA.der, 'spiffe://federated.org': caB.der });
    const { delays, sleep } = blockingSleep();
    const ac = new AbortController();
    const p = BundleSource.create({ address: api.address, clientOptions: { sleep }, signal: ac.signal });
    // JWT bundles are not set yet: the source keeps waiting (PermissionDenied is retried).
    await until(() => delays.length === 1, 'JWT bundles retry');
    ac.abort(new Error('stop waiting'));
    await assert.rejects(p, { message: 'stop waiting' });
    api.setJwtBundles({ 'spiffe://example.org': auth.jwtBundle().marshal() });
    const source2 = await BundleSource.create({ address: api.address });
    assert.equal(api.callCount('FetchX509SVID'), 0);
    assert.ok(source2.getX509BundleForTrustDomain(tdB).hasX509Authority(caB.certificate));
    assert.ok(source2.getJwtBundleForTrustDomain(tdA).findJwtAuthority(auth.keys()[0]!.kid));
    let notified = 0;
    source2.onUpdate(() => notified++);
    // federated.org disappears from the X.509 stream: it is removed; example.org keeps both kinds.
    api.setX509Bundles({ 'spiffe://example.org': caA.der });
    await until(() => notified === 1, 'x509 bundle update');
    assert.throws(() => source2.getX509BundleForTrustDomain(tdB), { code: 'ERR_BUNDLE_NOT_FOUND' });
    assert.ok(source2.getX509BundleForTrustDomain(tdA));
    assert.ok(source2.getJwtBundleForTrustDomain(tdA));
    await source2.close();
    assert.throws(() => source2.getX509BundleForTrustDomain(tdA), closedBundle);
    assert.throws(() => source2.getJwtBundleForTrustDomain(tdA), closedBundle);
    assert.throws(() => source2.x509Bundles(), closedBundle);
    assert.throws(() => source2.jwtBundles(), closedBundle);
  });
});
