import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { credentials, Client as GrpcClient, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { BundleSet } from '@tessera/spiffe/bundle';
import type { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { WorkloadApiClient, type X509Context } from '@tessera/spiffe/workloadapi';
import { FakeWorkloadApi, JWT_TEST_NOW, TestJwtAuthority } from '@tessera/testing';
import { blockingSleep, caA, caB, fakeSvid, recordingSleep, until } from './helpers.js';

const tdA = TrustDomain.fromString('example.org');
const tdB = TrustDomain.fromString('federated.org');

function hasTd(set: BundleSet, td: TrustDomain): boolean {
  try {
    set.getX509BundleForTrustDomain(td);
    return true;
  } catch (err) {
    assert.equal((err as SpiffeError).code, 'ERR_BUNDLE_NOT_FOUND');
    return false;
  }
}

/** Calls an RPC with raw metadata (bypassing the client) to observe the fake's header enforcement. */
function rawStreamStatus(address: string, path: string, md: Metadata): Promise<ServiceError> {
  const c = new GrpcClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = c.makeServerStreamRequest(
      path,
      () => Buffer.alloc(0),
      (b: Buffer) => b,
      {},
      md,
    );
    call.on('data', () => reject(new Error('unexpected message')));
    call.on('error', (err: ServiceError) => {
      c.close();
      resolve(err);
    });
  });
}

describe('WorkloadApiClient against the fake Workload API', { timeout: 30_000 }, () => {
  let api: FakeWorkloadApi;
  let client: WorkloadApiClient;

  before(async () => {
    api = await FakeWorkloadApi.start();
  });
  after(async () => {
    await api.close();
  });
  beforeEach(() => {
    client?.close();
    client = new WorkloadApiClient({ address: api.address, now: () => JWT_TEST_NOW });
    api.setError('FetchX509SVID', undefined);
    api.setError('FetchX509Bundles', undefined);
  });

  describe('security header', () => {
    it('sends workload.spiffe.io: true on every call', async () => {
      const auth = new TestJwtAuthority('example.org');
      const token = auth.mint({ sub: 'spiffe://example.org/web', aud: ['db'] });
      api.setX509Svids([fakeSvid(caA, '/web')]);
      api.setX509Bundles({ 'spiffe://example.org': caA.der });
      api.setJwtBundles({ 'spiffe://example.org': auth.jwtBundle().marshal() });
      api.setJwtSvids([{ spiffeId: 'spiffe://example.org/web', token }]);
      const before = api.headers.length;
      await client.fetchX509Context();
      await client.fetchX509Bundles();
      await client.fetchJwtBundles();
      await client.fetchJwtSvid({ audience: 'db' });
      await client.validateJwtSvid(token, 'db');
      const seen = api.headers.slice(before);
      assert.deepEqual(
        seen.map((h) => h.rpc),
        ['FetchX509SVID', 'FetchX509Bundles', 'FetchJWTBundles', 'FetchJWTSVID', 'ValidateJWTSVID'],
      );
      for (const h of seen) assert.deepEqual(h.values, ['true']);
    });

    const headerCases: { name: string; values: string[] }[] = [
      { name: 'a missing header', values: [] },
      { name: 'the value True', values: ['True'] },
      { name: 'two values', values: ['true', 'true'] },
    ];
    for (const tc of headerCases) {
      it(`makes the fake refuse ${tc.name} with InvalidArgument`, async () => {
        const md = new Metadata();
        for (const v of tc.values) md.add('workload.spiffe.io', v);
        const err = await rawStreamStatus(api.address, '/SpiffeWorkloadAPI/FetchX509SVID', md);
        assert.equal(err.code, status.INVALID_ARGUMENT);
        assert.equal(err.details, 'security header missing from request');
      });
    }

    it('makes the fake answer the WIT RPCs with Unimplemented', async () => {
      const md = new Metadata();
      md.set('workload.spiffe.io', 'true');
      const err = await rawStreamStatus(api.address, '/SpiffeWorkloadAPI/FetchWITSVID', md);
      assert.equal(err.code, status.UNIMPLEMENTED);
      assert.equal(err.details, 'fetching WIT-SVIDs is not implemented');
    });
  });

  describe('one-shot X.509 fetches', () => {
    it('returns the SVIDs and the own and federated bundles, then cancels the stream', async () => {
      api.setX509Svids([fakeSvid(caA, '/web'), fakeSvid(caA, '/db', 'db')], {
        'spiffe://federated.org': caB.der,
      });
      const ctx = await client.fetchX509Context();
      assert.deepEqual(
        ctx.svids.map((s) => s.id.toString()),
        ['spiffe://example.org/web', 'spiffe://example.org/db'],
      );
      assert.equal(ctx.svids[1]?.hint, 'db');
      assert.ok(ctx.bundles.getX509BundleForTrustDomain(tdA).hasX509Authority(caA.certificate));
      assert.ok(ctx.bundles.getX509BundleForTrustDomain(tdB).hasX509Authority(caB.certificate));
      await until(() => api.openStreamCount('FetchX509SVID') === 0, 'stream cancelled');
    });

    it('returns the first SVID from fetchX509Svid', async () => {
      api.setX509Svids([fakeSvid(caA, '/first'), fakeSvid(caA, '/second')]);
      const svid = await client.fetchX509Svid();
      assert.equal(svid.id.toString(), 'spiffe://example.org/first');
    });

    it('keeps only the first SVID of a duplicated hint (WAPI-09)', async () => {
      api.setX509Svids([
        fakeSvid(caA, '/one', 'internal'),
        fakeSvid(caA, '/two', 'internal'),
        fakeSvid(caA, '/three', 'external'),
        fakeSvid(caA, '/four'),
        fakeSvid(caA, '/five'),
      ]);
      const svids = await client.fetchX509Svids();
      assert.deepEqual(
        svids.map((s) => s.id.path),
        ['/one', '/three', '/four', '/five'],
      );
    });

    it('accepts bundle keys written as a bare trust domain name', async () => {
      api.setX509Svids([fakeSvid(caA, '/web')], { 'federated.org': caB.der });
      const ctx = await client.fetchX509Context();
      assert.ok(hasTd(ctx.bundles, tdB));
    });

    const invalidResponses: { name: string; set: () => void; message: RegExp }[] = [
      {
        name: 'an empty SVID list',
        set: () => api.setX509Svids([]),
        message: /^workloadapi: no SVIDs in response$/,
      },
      {
        name: 'a spiffe_id that differs from the certificate ID',
        set: () => api.setX509Svids([{ ...fakeSvid(caA, '/web'), spiffeId: 'spiffe://example.org/other' }]),
        message:
          /^workloadapi: spiffe_id "spiffe:\/\/example.org\/other" of X509-SVID at index 0 does not match its certificate ID "spiffe:\/\/example.org\/web"$/,
      },
      {
        name: 'an invalid spiffe_id',
        set: () => api.setX509Svids([{ ...fakeSvid(caA, '/web'), spiffeId: 'not-an-id' }]),
        message: /^workloadapi: invalid spiffe_id of X509-SVID at index 0: /,
      },
      {
        name: 'a garbage certificate chain',
        set: () => api.setX509Svids([{ ...fakeSvid(caA, '/web'), chainDer: Buffer.from('junk') }]),
        message: /^workloadapi: invalid X509-SVID at index 0: /,
      },
      {
        name: 'a garbage bundle',
        set: () => api.setX509Svids([{ ...fakeSvid(caA, '/web'), bundleDer: Buffer.from('junk') }]),
        message: /^workloadapi: invalid bundle of X509-SVID at index 0: /,
      },
      {
        name: 'an invalid federated bundle key',
        set: () => api.setX509Svids([fakeSvid(caA, '/web')], { 'spiffe://Bad.org': caB.der }),
        message: /^workloadapi: invalid federated bundle key "spiffe:\/\/Bad.org": /,
      },
    ];
    for (const tc of invalidResponses) {
      it(`rejects ${tc.name} with ERR_WORKLOADAPI_INVALID_RESPONSE`, async () => {
        tc.set();
        await assert.rejects(client.fetchX509Context(), {
          code: 'ERR_WORKLOADAPI_INVALID_RESPONSE',
          message: tc.message,
        });
      });
    }

    const statuses: { name: string; code: number; expected: string }[] = [
      { name: 'UNAVAILABLE', code: status.UNAVAILABLE, expected: 'ERR_WORKLOADAPI_UNAVAILABLE' },
      {
        name: 'PERMISSION_DENIED',
        code: status.PERMISSION_DENIED,
        expected: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
      },
      {
        name: 'INVALID_ARGUMENT',
        code: status.INVALID_ARGUMENT,
        expected: 'ERR_WORKLOADAPI_INVALID_ARGUMENT',
      },
      { name: 'UNIMPLEMENTED', code: status.UNIMPLEMENTED, expected: 'ERR_WORKLOADAPI_UNIMPLEMENTED' },
      { name: 'INTERNAL', code: status.INTERNAL, expected: 'ERR_WORKLOADAPI_FAILED' },
    ];
    for (const tc of statuses) {
      it(`maps status ${tc.name} to ${tc.expected}`, async () => {
        api.setError('FetchX509SVID', { code: tc.code, details: 'injected' }, 1);
        await assert.rejects(client.fetchX509Context(), {
          code: tc.expected,
          message: `workloadapi: FetchX509SVID failed with ${tc.name}: injected`,
        });
      });
    }

    it('rejects with the abort reason when the signal aborts', async () => {
      api.setError('FetchX509SVID', undefined);
      await assert.rejects(client.fetchX509Context({ signal: AbortSignal.abort() }), { name: 'AbortError' });
    });

    it('refuses calls after close', async () => {
      client.close();
      await assert.rejects(client.fetchX509Context(), {
        code: 'ERR_WORKLOADAPI_FAILED',
        message: 'workloadapi: FetchX509SVID failed: client is closed',
      });
    });
  });

  describe('bundle fetches', () => {
    it('returns X.509 bundles keyed by trust domain', async () => {
      api.setX509Bundles({ 'spiffe://example.org': caA.der, 'federated.org': caB.der });
      const set = await client.fetchX509Bundles();
      assert.ok(set.getX509BundleForTrustDomain(tdA).hasX509Authority(caA.certificate));
      assert.ok(set.getX509BundleForTrustDomain(tdB).hasX509Authority(caB.certificate));
    });

    it('rejects an empty X.509 bundle map', async () => {
      api.setX509Bundles({});
      await assert.rejects(client.fetchX509Bundles(), {
        code: 'ERR_WORKLOADAPI_INVALID_RESPONSE',
        message: 'workloadapi: no bundles in response',
      });
    });

    it('returns JWT bundles keyed by trust domain', async () => {
      const auth = new TestJwtAuthority('example.org', { keyTypes: ['ec-p256'] });
      api.setJwtBundles({ 'spiffe://example.org': auth.jwtBundle().marshal() });
      const set = await client.fetchJwtBundles();
      const kid = auth.keys()[0]!.kid;
      assert.ok(set.getJwtBundleForTrustDomain(tdA).findJwtAuthority(kid));
    });

    it('rejects a malformed JWKS', async () => {
      api.setJwtBundles({ 'spiffe://example.org': '{not json' });
      await assert.rejects(client.fetchJwtBundles(), {
        code: 'ERR_WORKLOADAPI_INVALID_RESPONSE',
        message: /^workloadapi: invalid JWT bundle for "spiffe:\/\/example.org": /,
      });
    });
  });

  describe('JWT-SVIDs', () => {
    const auth = new TestJwtAuthority('example.org', { keyTypes: ['ec-p256'] });

    it('requests the audience, extra audiences and subject and parses the first token', async () => {
      const token = auth.mint({ sub: 'spiffe://example.org/web', aud: ['db', 'cache'] });
      api.setJwtSvids([{ spiffeId: 'spiffe://example.org/web', token, hint: 'h1' }]);
      const n = api.jwtSvidRequests.length;
      const svid = await client.fetchJwtSvid({
        audience: 'db',
        extraAudiences: ['cache'],
        subject: SpiffeId.fromString('spiffe://example.org/web'),
      });
      assert.deepEqual(api.jwtSvidRequests[n], {
        audience: ['db', 'cache'],
        spiffeId: 'spiffe://example.org/web',
      });
      assert.equal(svid.id.toString(), 'spiffe://example.org/web');
      assert.equal(svid.marshal(), token);
      assert.equal(svid.hint, 'h1');
    });

    it('keeps the first JWT-SVID of a duplicated hint', async () => {
      const t1 = auth.mint({ sub: 'spiffe://example.org/a', aud: ['db'] });
      const t2 = auth.mint({ sub: 'spiffe://example.org/b', aud: ['db'] });
      const t3 = auth.mint({ sub: 'spiffe://example.org/c', aud: ['db'] });
      api.setJwtSvids([
        { spiffeId: 'spiffe://example.org/a', token: t1, hint: 'x' },
        { spiffeId: 'spiffe://example.org/b', token: t2, hint: 'x' },
        { spiffeId: 'spiffe://example.org/c', token: t3 },
      ]);
      const svids = await client.fetchJwtSvids({ audience: 'db' });
      assert.deepEqual(
        svids.map((s) => s.id.path),
        ['/a', '/c'],
      );
    });

    it('rejects a token whose audience differs from the request', async () => {
      const token = auth.mint({ sub: 'spiffe://example.org/web', aud: ['other'] });
      api.setJwtSvids([{ spiffeId: 'spiffe://example.org/web', token }]);
      await assert.rejects(client.fetchJwtSvid({ audience: 'db' }), {
        code: 'ERR_WORKLOADAPI_INVALID_RESPONSE',
        message: /^workloadapi: invalid JWT-SVID at index 0: /,
      });
    });

    it('rejects a spiffe_id that differs from the token subject', async () => {
      const token = auth.mint({ sub: 'spiffe://example.org/web', aud: ['db'] });
      api.setJwtSvids([{ spiffeId: 'spiffe://example.org/other', token }]);
      await assert.rejects(client.fetchJwtSvid({ audience: 'db' }), {
        code: 'ERR_WORKLOADAPI_INVALID_RESPONSE',
        message: /does not match its subject "spiffe:\/\/example.org\/web"$/,
      });
    });

    it('maps the endpoint refusing an identity to ERR_WORKLOADAPI_PERMISSION_DENIED', async () => {
      api.setJwtSvids([]);
      await assert.rejects(client.fetchJwtSvid({ audience: 'db' }), {
        code: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
        message: 'workloadapi: FetchJWTSVID failed with PERMISSION_DENIED: no identity issued',
      });
    });

    it('throws TypeError for an empty audience', async () => {
      await assert.rejects(client.fetchJwtSvid({ audience: '' }), TypeError);
    });

    it('validates a token through the endpoint, then parses it', async () => {
      const token = auth.mint({ sub: 'spiffe://example.org/web', aud: ['db'] });
      api.setJwtSvids([{ spiffeId: 'spiffe://example.org/web', token }]);
      const svid = await client.validateJwtSvid(token, 'db');
      assert.equal(svid.id.toString(), 'spiffe://example.org/web');
      assert.deepEqual(svid.audience, ['db']);
    });

    it('reports a token the endpoint refuses as ERR_WORKLOADAPI_INVALID_ARGUMENT', async () => {
      const token = auth.mint({ sub: 'spiffe://example.org/web', aud: ['db'] });
      api.setJwtSvids([]);
      await assert.rejects(client.validateJwtSvid(token, 'db'), {
        code: 'ERR_WORKLOADAPI_INVALID_ARGUMENT',
        message: 'workloadapi: ValidateJWTSVID failed with INVALID_ARGUMENT: token is not valid',
      });
    });
  });

  describe('watchX509Context', () => {
    it('delivers the first message and every pushed update, and stops on abort', async () => {
      api.setX509Svids([fakeSvid(caA, '/v1')]);
      const updates: X509Context[] = [];
      const ac = new AbortController();
      const done = client.watchX509Context(
        { onX509ContextUpdate: (c) => updates.push(c) },
        { signal: ac.signal },
      );
      await until(() => updates.length === 1, 'first update');
      api.setX509Svids([fakeSvid(caA, '/v2')]);
      await until(() => updates.length === 2, 'second update');
      assert.equal(updates[1]?.svids[0]?.id.path, '/v2');
      ac.abort();
      await done;
      await until(() => api.openStreamCount('FetchX509SVID') === 0, 'stream closed');
    });

    it('drops a federated bundle absent from a newer message (WAPI-06)', async () => {
      api.setX509Svids([fakeSvid(caA, '/web')], { 'spiffe://federated.org': caB.der });
      const updates: X509Context[] = [];
      const ac = new AbortController();
      const done = client.watchX509Context(
        { onX509ContextUpdate: (c) => updates.push(c) },
        { signal: ac.signal },
      );
      await until(() => updates.length === 1, 'first update');
      assert.ok(hasTd(updates[0]!.bundles, tdB));
      api.setX509Svids([fakeSvid(caA, '/web')]);
      await until(() => updates.length === 2, 'second update');
      assert.ok(!hasTd(updates[1]!.bundles, tdB));
      assert.ok(hasTd(updates[1]!.bundles, tdA));
      ac.abort();
      await done;
    });

    it('retries Unavailable with linear backoff, then resets the backoff on a message', async () => {
      const { delays, sleep } = recordingSleep();
      const c = new WorkloadApiClient({ address: api.address, sleep });
      api.setX509Svids([fakeSvid(caA, '/web')]);
      api.setError('FetchX509SVID', { code: status.UNAVAILABLE, details: 'agent starting' }, 3);
      const errors: SpiffeError[] = [];
      const updates: X509Context[] = [];
      const ac = new AbortController();
      const done = c.watchX509Context(
        { onX509ContextUpdate: (x) => updates.push(x), onX509ContextWatchError: (e) => errors.push(e) },
        { signal: ac.signal },
      );
      await until(() => updates.length === 1, 'update after retries');
      assert.deepEqual(delays, [1000, 2000, 3000]);
      assert.deepEqual(
        errors.map((e) => e.code),
        ['ERR_WORKLOADAPI_UNAVAILABLE', 'ERR_WORKLOADAPI_UNAVAILABLE', 'ERR_WORKLOADAPI_UNAVAILABLE'],
      );
      assert.match(
        errors[0]!.message,
        /^workloadapi: FetchX509SVID failed with UNAVAILABLE: agent starting$/,
      );
      // The stream now fails once more: the backoff starts again from its first step.
      api.endStreams('FetchX509SVID', { code: status.PERMISSION_DENIED, details: 'no identity issued' });
      await until(() => updates.length === 2, 'update after reconnect');
      assert.deepEqual(delays, [1000, 2000, 3000, 1000]);
      assert.equal(errors[3]?.code, 'ERR_WORKLOADAPI_PERMISSION_DENIED');
      ac.abort();
      await done;
      c.close();
    });

    it('reopens a stream the endpoint ends (EOF) after reporting it', async () => {
      const { delays, sleep } = recordingSleep();
      const c = new WorkloadApiClient({ address: api.address, sleep });
      api.setX509Svids([fakeSvid(caA, '/web')]);
      const errors: SpiffeError[] = [];
      let updates = 0;
      const ac = new AbortController();
      const done = c.watchX509Context(
        { onX509ContextUpdate: () => updates++, onX509ContextWatchError: (e) => errors.push(e) },
        { signal: ac.signal },
      );
      await until(() => updates === 1, 'first update');
      const calls = api.callCount('FetchX509SVID');
      api.endStreams('FetchX509SVID');
      await until(() => updates === 2, 'update after reopen');
      assert.equal(api.callCount('FetchX509SVID'), calls + 1);
      assert.deepEqual(delays, [1000]);
      assert.equal(errors[0]?.code, 'ERR_WORKLOADAPI_UNAVAILABLE');
      assert.equal(errors[0]?.message, 'workloadapi: FetchX509SVID stream closed by the endpoint');
      ac.abort();
      await done;
      c.close();
    });

    for (const tc of [
      {
        name: 'InvalidArgument',
        code: status.INVALID_ARGUMENT,
        expected: 'ERR_WORKLOADAPI_INVALID_ARGUMENT',
      },
      { name: 'Unimplemented', code: status.UNIMPLEMENTED, expected: 'ERR_WORKLOADAPI_UNIMPLEMENTED' },
      { name: 'Canceled', code: status.CANCELLED, expected: 'ERR_WORKLOADAPI_FAILED' },
    ]) {
      it(`stops without retrying on ${tc.name}`, async () => {
        const { delays, sleep } = recordingSleep();
        const c = new WorkloadApiClient({ address: api.address, sleep });
        api.setError('FetchX509SVID', { code: tc.code, details: 'stop' });
        const calls = api.callCount('FetchX509SVID');
        const errors: SpiffeError[] = [];
        await assert.rejects(
          c.watchX509Context({
            onX509ContextUpdate: () => {},
            onX509ContextWatchError: (e) => errors.push(e),
          }),
          { code: tc.expected },
        );
        assert.equal(api.callCount('FetchX509SVID'), calls + 1);
        assert.deepEqual(delays, []);
        assert.deepEqual(
          errors.map((e) => e.code),
          [tc.expected],
        );
        api.setError('FetchX509SVID', undefined);
        c.close();
      });
    }

    it('reports an invalid message and keeps the stream and the last good state', async () => {
      api.setX509Svids([fakeSvid(caA, '/good')]);
      const errors: SpiffeError[] = [];
      const updates: X509Context[] = [];
      const ac = new AbortController();
      const done = client.watchX509Context(
        { onX509ContextUpdate: (x) => updates.push(x), onX509ContextWatchError: (e) => errors.push(e) },
        { signal: ac.signal },
      );
      await until(() => updates.length === 1, 'first update');
      const calls = api.callCount('FetchX509SVID');
      api.setX509Svids([]);
      await until(() => errors.length === 1, 'parse error');
      assert.equal(errors[0]?.code, 'ERR_WORKLOADAPI_INVALID_RESPONSE');
      assert.equal(updates.length, 1);
      api.setX509Svids([fakeSvid(caA, '/better')]);
      await until(() => updates.length === 2, 'next good update');
      assert.equal(updates[1]?.svids[0]?.id.path, '/better');
      assert.equal(api.callCount('FetchX509SVID'), calls, 'the stream was not reopened');
      ac.abort();
      await done;
    });

    it('logs the failure and the cancellation of a watch through the logger', async () => {
      const logs: { level: string; msg: string; fields: Record<string, unknown> | undefined }[] = [];
      const log =
        (level: string) =>
        (msg: string, fields?: Record<string, unknown>): void => {
          logs.push({ level, msg, fields });
        };
      const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
      const c = new WorkloadApiClient({ address: api.address, logger });
      api.setError('FetchX509Bundles', { code: status.INVALID_ARGUMENT, details: 'nope' });
      await assert.rejects(c.watchX509Bundles({ onX509BundlesUpdate: () => {} }), {
        code: 'ERR_WORKLOADAPI_INVALID_ARGUMENT',
      });
      assert.deepEqual(
        logs.map((l) => [l.level, l.msg, l.fields?.method]),
        [
          ['warn', 'Workload API watch failed', 'FetchX509Bundles'],
          ['error', 'Canceling watch', 'FetchX509Bundles'],
        ],
      );
      c.close();
    });

    it('ends every watch when the client closes', async () => {
      const c = new WorkloadApiClient({ address: api.address, sleep: blockingSleep().sleep });
      api.setX509Svids([fakeSvid(caA, '/web')]);
      api.setX509Bundles({ 'spiffe://example.org': caA.der });
      let n = 0;
      const w1 = c.watchX509Context({ onX509ContextUpdate: () => n++ });
      const w2 = c.watchX509Bundles({ onX509BundlesUpdate: () => n++ });
      await until(() => n === 2, 'both watches delivered');
      c.close();
      await Promise.all([w1, w2]);
    });
  });
});

describe('WorkloadApiClient over loopback TCP', { timeout: 30_000 }, () => {
  it('dials a tcp://127.0.0.1:port endpoint', async () => {
    const api = await FakeWorkloadApi.start({ tcp: true });
    const client = new WorkloadApiClient({ address: api.address });
    try {
      assert.match(api.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      api.setX509Svids([fakeSvid(caA, '/tcp')]);
      assert.equal((await client.fetchX509Svid()).id.path, '/tcp');
    } finally {
      client.close();
      await api.close();
    }
  });
});
