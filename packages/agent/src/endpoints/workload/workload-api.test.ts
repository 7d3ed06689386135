import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Metadata, status } from '@grpc/grpc-js';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { JwtSvid, verifyX509Svid } from '@tessera/spiffe/svid';
import {
  SpiffeWorkloadAPIService as W,
  WorkloadApiClient,
  type X509Context,
} from '@tessera/spiffe/workloadapi';
import { TestCa } from '@tessera/testing';
import { createWorkloadEndpoints } from '../endpoints.js';
import {
  eventually,
  expectStreamEndsAtRotation,
  fdCount,
  type Harness,
  handOverConnection,
  openRawStream,
  rawClient,
  rawStream,
  rawUnary,
  startHarness,
  TEST_NOW,
} from '../test-support/harness.js';
import { MemoryProvider } from '../test-support/memory-provider.js';

const TD = 'spiffe://example.org';
const WEB = 'spiffe://example.org/web';
const DB = 'spiffe://example.org/db';
const X509 = '/SpiffeWorkloadAPI/FetchX509SVID';
const X509_BUNDLES = '/SpiffeWorkloadAPI/FetchX509Bundles';
const JWT_BUNDLES = '/SpiffeWorkloadAPI/FetchJWTBundles';
const JWT = '/SpiffeWorkloadAPI/FetchJWTSVID';
const VALIDATE = '/SpiffeWorkloadAPI/ValidateJWTSVID';
const EMPTY = Buffer.alloc(0);

/** Waits until `value()` stayed the same for 300 ms (connections of earlier tests finished closing). */
async function settle(value: () => number): Promise<void> {
  let last = value();
  let since = Date.now();
  while (Date.now() - since < 300) {
    await new Promise((r) => setTimeout(r, 20));
    const v = value();
    if (v !== last) {
      last = v;
      since = Date.now();
    }
  }
}

function jwtRequest(audience: string[], spiffeId = ''): Buffer {
  return W.fetchJwtsvid.requestSerialize({ audience, spiffeId });
}
function validateRequest(audience: string, svid: string): Buffer {
  return W.validateJwtsvid.requestSerialize({ audience, svid });
}

describe('Workload API over the peer-tracked Unix socket', () => {
  let h: Harness;
  let client: WorkloadApiClient;

  before(async () => {
    h = await startHarness();
    client = new WorkloadApiClient({ address: h.address });
  });
  after(async () => {
    client.close();
    await h.close();
  });

  const entitleIn = (harness: Harness): void =>
    harness.provider.setEntries([
      { id: 'e-web', spiffeId: WEB, selectors: [harness.selfSelectors[0]!], hint: 'web' },
    ]);
  const entitle = (): void =>
    h.provider.setEntries([
      { id: 'e-web', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'web' },
      { id: 'e-other', spiffeId: DB, selectors: [{ type: 'unix', value: 'uid:424242' }] },
    ]);

  describe('security header', () => {
    const cases: { name: string; header: string[] | undefined }[] = [
      { name: 'is missing', header: undefined },
      { name: 'has the value "True"', header: ['True'] },
      { name: 'has two values', header: ['true', 'true'] },
      { name: 'is empty', header: [''] },
    ];
    for (const tc of cases) {
      for (const method of [X509, X509_BUNDLES, JWT_BUNDLES, '/SpiffeWorkloadAPI/FetchWITSVID']) {
        it(`refuses ${method} with InvalidArgument when the header ${tc.name}`, async () => {
          entitle();
          const c = rawClient(h.address);
          const res = await rawStream(c, method, EMPTY, tc.header);
          c.close();
          assert.equal(res.code, status.INVALID_ARGUMENT);
          assert.equal(res.details, 'security header missing from request');
          assert.equal(res.messages.length, 0);
        });
      }
      for (const [method, body] of [
        [JWT, jwtRequest(['a'])],
        [VALIDATE, validateRequest('a', 'x')],
      ] as const) {
        it(`refuses ${method} with InvalidArgument when the header ${tc.name}`, async () => {
          const c = rawClient(h.address);
          const res = await rawUnary(c, method, body, tc.header);
          c.close();
          assert.equal(res.code, status.INVALID_ARGUMENT);
          assert.equal(res.details, 'security header missing from request');
        });
      }
    }

    it('checks the header before using any attestation of the caller', async () => {
      // The caller is attested when it connects, but a request without the header is refused as such, not with
      // the attestation's outcome (here a failure that would otherwise be Unavailable).
      h.attestFailure = new Error('attestation would fail');
      try {
        const c = rawClient(h.address);
        const res = await rawStream(c, X509, EMPTY, undefined);
        c.close();
        assert.equal(res.code, status.INVALID_ARGUMENT);
        assert.equal(res.details, 'security header missing from request');
      } finally {
        h.attestFailure = undefined;
      }
    });
  });

  describe('caller without identity', () => {
    before(() =>
      h.provider.setEntries([
        { id: 'e-other', spiffeId: DB, selectors: [{ type: 'unix', value: 'uid:424242' }] },
      ]),
    );

    for (const method of [X509, X509_BUNDLES, JWT_BUNDLES]) {
      it(`answers ${method} with PermissionDenied "no identity issued"`, async () => {
        const c = rawClient(h.address);
        const res = await rawStream(c, method, EMPTY, ['true']);
        c.close();
        assert.equal(res.code, status.PERMISSION_DENIED);
        assert.equal(res.details, 'no identity issued');
      });
    }

    it('answers FetchJWTSVID with PermissionDenied', async () => {
      await assert.rejects(client.fetchJwtSvid({ audience: 'spiffe://example.org/api' }), {
        code: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
        message: /no identity issued/,
      });
    });

    it('leaves no subscription open after refusing', async () => {
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
    });
  });

  describe('allow_unauthenticated_verifiers', () => {
    let open: Harness;
    before(async () => {
      open = await startHarness({ allowUnauthenticatedVerifiers: true });
      // The caller matches no entry; the other entry federates, which must not reach this caller.
      open.provider.setFederatedBundle('partner.org', [h.provider.ca.certificate]);
      open.provider.setEntries([
        {
          id: 'e-other',
          spiffeId: DB,
          selectors: [{ type: 'unix', value: 'uid:424242' }],
          federatesWith: ['partner.org'],
        },
      ]);
    });
    after(() => open.close());

    it('serves the own bundle only on FetchX509Bundles and FetchJWTBundles to a caller without an identity', async () => {
      for (const method of [X509_BUNDLES, JWT_BUNDLES]) {
        const c = rawClient(open.address);
        const res = await rawStream(c, method, EMPTY, ['true'], 1);
        c.close();
        assert.equal(res.messages.length, 1, method);
        const decoded =
          method === X509_BUNDLES
            ? W.fetchX509Bundles.responseDeserialize(res.messages[0]!)
            : W.fetchJwtBundles.responseDeserialize(res.messages[0]!);
        assert.deepEqual(Object.keys(decoded.bundles), ['spiffe://example.org'], method);
      }
    });

    it('still refuses FetchX509SVID and FetchJWTSVID without an identity', async () => {
      const c = rawClient(open.address);
      const res = await rawStream(c, X509, EMPTY, ['true']);
      c.close();
      assert.equal(res.code, status.PERMISSION_DENIED);
      const jwtClient = new WorkloadApiClient({ address: open.address });
      try {
        await assert.rejects(jwtClient.fetchJwtSvid({ audience: 'spiffe://example.org/api' }), {
          code: 'ERR_WORKLOADAPI_PERMISSION_DENIED',
        });
      } finally {
        jwtClient.close();
      }
    });
  });

  describe('attestation failure', () => {
    it('answers Unavailable "workload attestation failed" without detail', async () => {
      entitle();
      h.attestFailure = new Error('secret detail of /proc');
      try {
        const c = rawClient(h.address);
        const res = await rawStream(c, X509, EMPTY, ['true']);
        const unary = await rawUnary(c, JWT, jwtRequest(['a']), ['true']);
        c.close();
        assert.equal(res.code, status.UNAVAILABLE);
        assert.equal(res.details, 'workload attestation failed');
        assert.equal(unary.code, status.UNAVAILABLE);
        assert.equal(unary.details, 'workload attestation failed');
      } finally {
        h.attestFailure = undefined;
      }
    });

    it('attests from the kernel: the peer is this process', async () => {
      entitle();
      await client.fetchX509Context();
      const peer = h.peers.at(-1)!;
      assert.equal(peer.pid, process.pid);
      assert.equal(peer.uid, process.getuid?.());
    });
  });

  describe('attestation when a connection is accepted', () => {
    // A long window, so that a slow test machine cannot make the first call miss it; the real one is 100 ms.
    let e: Harness;
    let failures = 0;
    before(async () => {
      e = await startHarness({ earlyAttestationMaxAgeMs: 60_000, onAttestationFailed: () => failures++ });
    });
    after(() => e.close());

    it('attests a new caller when it connects, before it sends anything, for its first call only', async () => {
      entitleIn(e);
      const before = e.peers.length;
      const c = rawClient(e.address);
      try {
        c.getChannel().getConnectivityState(true); // connects without calling
        assert.ok(await eventually(() => e.peers.length === before + 1), 'attested at accept');
        const first = await rawStream(c, X509, EMPTY, ['true'], 1);
        assert.equal(first.code, 0);
        assert.equal(e.peers.length, before + 1, 'the first call used the attestation made at accept');
        const second = await rawStream(c, X509, EMPTY, ['true'], 1);
        assert.equal(second.code, 0);
        assert.equal(e.peers.length, before + 2, 'a later call on the connection is attested again');
      } finally {
        c.close();
      }
    });

    it('attests again when the first call comes after earlyAttestationMaxAgeMs', async () => {
      const short = await startHarness({ earlyAttestationMaxAgeMs: 50 });
      entitleIn(short);
      const before = short.peers.length;
      const c = rawClient(short.address);
      try {
        c.getChannel().getConnectivityState(true);
        assert.ok(await eventually(() => short.peers.length === before + 1));
        await new Promise((r) => setTimeout(r, 150));
        const res = await rawStream(c, X509, EMPTY, ['true'], 1);
        assert.equal(res.code, 0);
        assert.equal(short.peers.length, before + 2);
      } finally {
        c.close();
        await short.close();
      }
    });

    it('refuses an earlyAttestationMaxAgeMs that is negative or not an integer', () => {
      for (const bad of [-1, 1.5, Number.NaN]) {
        assert.throws(
          () =>
            createWorkloadEndpoints({
              provider: new MemoryProvider('example.org', TEST_NOW),
              attestors: { attest: async () => [] },
              socketPath: '/nonexistent/api.sock',
              earlyAttestationMaxAgeMs: bad,
            }),
          { name: 'RangeError', message: /earlyAttestationMaxAgeMs must be a non-negative integer/ },
        );
      }
    });

    it('uses the early attestation for the first call that gets to attestation (not one refused for its header)', async () => {
      entitleIn(e);
      const before = e.peers.length;
      const c = rawClient(e.address);
      try {
        c.getChannel().getConnectivityState(true);
        assert.ok(await eventually(() => e.peers.length === before + 1));
        const refused = await rawStream(c, X509, EMPTY, undefined);
        assert.equal(refused.code, status.INVALID_ARGUMENT);
        const res = await rawStream(c, X509, EMPTY, ['true'], 1);
        assert.equal(res.code, 0);
        assert.equal(e.peers.length, before + 1);
      } finally {
        c.close();
      }
    });

    it('counts a failed attestation once per call, not for the attempt made at accept', async () => {
      entitleIn(e);
      const before = e.peers.length;
      const failedBefore = failures;
      e.attestFailure = new Error('gone');
      const c = rawClient(e.address);
      try {
        c.getChannel().getConnectivityState(true);
        assert.ok(await eventually(() => e.peers.length === before + 1));
        assert.equal(failures, failedBefore, 'the early attempt is not counted');
        const res = await rawStream(c, X509, EMPTY, ['true']);
        assert.equal(res.code, status.UNAVAILABLE);
        assert.equal(failures, failedBefore + 1);
      } finally {
        e.attestFailure = undefined;
        c.close();
      }
    });

    it('attests only when calls arrive when earlyAttestationMaxAgeMs is 0', async () => {
      const off = await startHarness({ earlyAttestationMaxAgeMs: 0 });
      entitleIn(off);
      const c = rawClient(off.address);
      try {
        c.getChannel().getConnectivityState(true);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(off.peers.length, 0, 'nothing attested at accept');
        const res = await rawStream(c, X509, EMPTY, ['true'], 1);
        assert.equal(res.code, 0);
        assert.equal(off.peers.length, 1);
      } finally {
        c.close();
        await off.close();
      }
    });

    it('attests again when the attestation at accept failed, and counts no failure', async () => {
      entitleIn(e);
      const before = e.peers.length;
      const failedBefore = failures;
      e.attestFailure = new Error('transient');
      const c = rawClient(e.address);
      try {
        c.getChannel().getConnectivityState(true);
        assert.ok(await eventually(() => e.peers.length === before + 1));
        e.attestFailure = undefined;
        const res = await rawStream(c, X509, EMPTY, ['true'], 1);
        assert.equal(res.code, 0);
        assert.equal(e.peers.length, before + 2);
        assert.equal(failures, failedBefore);
      } finally {
        e.attestFailure = undefined;
        c.close();
      }
    });
  });

  describe('FetchX509SVID', () => {
    it('sends the first message at once with the SVID, key and bundle, verifying against the bundle', async () => {
      entitle();
      const ctx = await client.fetchX509Context();
      assert.equal(ctx.svids.length, 1);
      const svid = ctx.svids[0]!;
      assert.equal(svid.id.toString(), WEB);
      assert.equal(svid.hint, 'web');
      const expected = h.provider.svidOf('e-web')!;
      assert.deepEqual(Buffer.concat(svid.certificates.map((c) => c.raw)), expected.chainDer);
      const { id } = await verifyX509Svid([...svid.certificates], ctx.bundles);
      assert.equal(id.toString(), WEB);
    });

    it('pushes the full state on rotation, entry change and federated bundle change', async () => {
      entitle();
      const updates: X509Context[] = [];
      const ac = new AbortController();
      const watch = client.watchX509Context(
        { onX509ContextUpdate: (c) => updates.push(c) },
        { signal: ac.signal },
      );
      assert.ok(await eventually(() => updates.length === 1));
      const firstSerial = updates[0]!.svids[0]!.certificates[0]!.serialNumber;

      h.provider.rotate();
      assert.ok(await eventually(() => updates.length === 2));
      assert.notEqual(updates[1]!.svids[0]!.certificates[0]!.serialNumber, firstSerial);

      // A second entry: the message carries both SVIDs (complete state), the first one first.
      const fedCa = TestCa.create({ trustDomain: 'partner.org' });
      h.provider.setFederatedBundle('partner.org', [fedCa.certificate]);
      assert.ok(await eventually(() => updates.length === 3));
      assert.equal(
        updates[2]!.bundles.has(TrustDomain.fromString('partner.org')),
        false,
        'no entry federates yet',
      );
      h.provider.setEntries([
        { id: 'e-web', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'web' },
        {
          id: 'e-db',
          spiffeId: DB,
          selectors: [h.selfSelectors[1]!],
          hint: 'db',
          federatesWith: ['partner.org'],
        },
      ]);
      assert.ok(await eventually(() => updates.length === 4));
      assert.deepEqual(
        updates[3]!.svids.map((s) => s.id.toString()),
        [WEB, DB],
      );
      assert.equal(updates[3]!.bundles.has(TrustDomain.fromString('partner.org')), true);

      // Federated bundle changes reach the stream.
      const fedCa2 = TestCa.create({ trustDomain: 'partner.org' });
      h.provider.setFederatedBundle('partner.org', [fedCa.certificate, fedCa2.certificate]);
      assert.ok(await eventually(() => updates.length === 5));
      const partner = updates[4]!.bundles.getX509Bundle(TrustDomain.fromString('partner.org'))!;
      assert.equal(partner.x509Authorities().length, 2);
      h.provider.setFederatedBundle('partner.org', undefined);

      ac.abort();
      await watch;
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0), 'the subscription is closed');
    });

    it('keeps only the first SVID of a duplicated hint', async () => {
      h.provider.setEntries([
        { id: 'e-1', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'same' },
        { id: 'e-2', spiffeId: DB, selectors: [h.selfSelectors[0]!], hint: 'same' },
      ]);
      const c = rawClient(h.address);
      const res = await rawStream(c, X509, EMPTY, ['true'], 1);
      c.close();
      const msg = W.fetchX509Svid.responseDeserialize(res.messages[0]!);
      assert.deepEqual(
        msg.svids.map((s) => s.spiffeId),
        [WEB],
      );
    });

    it('waits for an SVID still being issued instead of answering PermissionDenied', async () => {
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      h.provider.setEntries([
        { id: 'e-new', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'new', issued: false },
      ]);
      const c = rawClient(h.address);
      try {
        const first = new Promise<Buffer>((resolve, reject) => {
          const s = openRawStream(c, X509, EMPTY, ['true']);
          s.once('data', (m: Buffer) => {
            resolve(m);
            s.cancel();
          });
          s.on('error', (e: { code: number }) => {
            if (e.code !== status.CANCELLED) reject(e);
          });
        });
        assert.ok(await eventually(() => h.provider.openSubscriptions === 1));
        await new Promise((r) => setTimeout(r, 100)); // the stream stays open, with nothing sent
        h.provider.issue('e-new');
        const msg = W.fetchX509Svid.responseDeserialize(await first);
        assert.equal(msg.svids.length, 1);
        assert.equal(msg.svids[0]?.spiffeId, WEB);
        assert.equal(msg.svids[0]?.hint, 'new');
      } finally {
        c.close();
      }
    });

    it('sends nothing while the SVID of its oldest entry is being issued, then the whole set, oldest first', async () => {
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      // e-old is the default identity (first); its SVID is not issued yet, e-newer's is.
      h.provider.setEntries([
        { id: 'e-old', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'old', issued: false },
        { id: 'e-newer', spiffeId: DB, selectors: [h.selfSelectors[0]!], hint: 'newer' },
      ]);
      const c = rawClient(h.address);
      try {
        const messages: Buffer[] = [];
        const s = openRawStream(c, X509, EMPTY, ['true']);
        s.on('data', (m: Buffer) => messages.push(m));
        s.on('error', () => {});
        assert.ok(await eventually(() => h.provider.openSubscriptions === 1));
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(messages.length, 0, 'no message names e-newer the default while e-old is pending');
        h.provider.issue('e-old');
        assert.ok(await eventually(() => messages.length === 1));
        const msg = W.fetchX509Svid.responseDeserialize(messages[0]!);
        assert.deepEqual(
          msg.svids.map((x) => x.spiffeId),
          [WEB, DB],
        );
        s.cancel();
      } finally {
        c.close();
      }
    });

    it('sends the SVIDs there are while a missing one cannot be issued (server unreachable), and waits when there is none', async () => {
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      h.provider.issuing = false;
      try {
        h.provider.setEntries([
          { id: 'e-out-old', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'old', issued: false },
          { id: 'e-out-newer', spiffeId: DB, selectors: [h.selfSelectors[0]!], hint: 'newer' },
        ]);
        const c = rawClient(h.address);
        const partial = await rawStream(c, X509, EMPTY, ['true'], 1);
        c.close();
        assert.deepEqual(
          W.fetchX509Svid.responseDeserialize(partial.messages[0]!).svids.map((x) => x.spiffeId),
          [DB],
        );
        // Nothing at all to send: the stream waits (no PermissionDenied) until the server is back.
        h.provider.setEntries([
          { id: 'e-out-only', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'only', issued: false },
        ]);
        const c2 = rawClient(h.address);
        const waiting = rawStream(c2, X509, EMPTY, ['true'], 1);
        assert.ok(await eventually(() => h.provider.openSubscriptions === 1));
        await new Promise((r) => setTimeout(r, 150));
        h.provider.issuing = true;
        h.provider.issue('e-out-only');
        const res = await waiting;
        c2.close();
        assert.equal(W.fetchX509Svid.responseDeserialize(res.messages[0]!).svids[0]?.spiffeId, WEB);
      } finally {
        h.provider.issuing = true;
      }
    });

    it('ends the stream with PermissionDenied when the last entry goes away', async () => {
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      entitle();
      const c = rawClient(h.address);
      const pending = rawStream(c, X509, EMPTY, ['true']);
      assert.ok(await eventually(() => h.provider.openSubscriptions === 1));
      h.provider.setEntries([]);
      const res = await pending;
      c.close();
      assert.equal(res.messages.length, 1);
      assert.equal(res.code, status.PERMISSION_DENIED);
      assert.equal(res.details, 'no identity issued');
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
    });
  });

  describe('FetchX509Bundles and FetchJWTBundles', () => {
    it('serve the own trust domain keyed by its ID, and JWKS with JWT keys only', async () => {
      entitle();
      const x = await client.fetchX509Bundles();
      const own = x.getX509Bundle(TrustDomain.fromString('example.org'))!;
      assert.equal(own.x509Authorities()[0]!.fingerprint256, h.provider.ca.certificate.fingerprint256);
      const c = rawClient(h.address);
      const res = await rawStream(c, JWT_BUNDLES, EMPTY, ['true'], 1);
      c.close();
      const msg = W.fetchJwtBundles.responseDeserialize(res.messages[0]!);
      assert.deepEqual(Object.keys(msg.bundles), [TD]);
      const jwks = JSON.parse(msg.bundles[TD]!.toString()) as { keys: Record<string, unknown>[] };
      assert.equal(jwks.keys.length, 1);
      for (const k of jwks.keys) {
        assert.equal(k.use, undefined);
        assert.equal(k.x5c, undefined);
        assert.equal(typeof k.kid, 'string');
      }
    });

    it('sends bundle messages only when the bundles change, not on SVID rotation', async () => {
      entitle();
      const c = rawClient(h.address);
      const got: Buffer[] = [];
      const md = new Metadata();
      md.set('workload.spiffe.io', 'true');
      const call = c.makeServerStreamRequest(
        X509_BUNDLES,
        (b: Buffer) => b,
        (b: Buffer) => b,
        EMPTY,
        md,
      );
      call.on('data', (b: Buffer) => got.push(b));
      call.on('error', () => {});
      assert.ok(await eventually(() => got.length === 1));
      h.provider.rotate();
      h.provider.rotate();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got.length, 1);
      h.provider.rotateCa();
      assert.ok(await eventually(() => got.length === 2));
      call.cancel();
      c.close();
    });
  });

  describe('FetchJWTSVID', () => {
    it('refuses an empty audience with InvalidArgument', async () => {
      entitle();
      const c = rawClient(h.address);
      const res = await rawUnary(c, JWT, jwtRequest([]), ['true']);
      c.close();
      assert.equal(res.code, status.INVALID_ARGUMENT);
      assert.equal(res.details, 'audience must be specified');
    });

    it('refuses a malformed spiffe_id with InvalidArgument naming it', async () => {
      const c = rawClient(h.address);
      const res = await rawUnary(c, JWT, jwtRequest(['a'], 'spiffe://Example.org/x'), ['true']);
      c.close();
      assert.equal(res.code, status.INVALID_ARGUMENT);
      assert.match(res.details, /^invalid requested SPIFFE ID: /);
    });

    it('refuses a spiffe_id the caller is not entitled to with PermissionDenied', async () => {
      entitle();
      const c = rawClient(h.address);
      const res = await rawUnary(c, JWT, jwtRequest(['a'], DB), ['true']);
      c.close();
      assert.equal(res.code, status.PERMISSION_DENIED);
      assert.equal(res.details, 'no identity issued');
    });

    it('mints a JWT-SVID that validates against the JWT bundle', async () => {
      entitle();
      const c = rawClient(h.address);
      const res = await rawUnary(c, JWT, jwtRequest(['spiffe://example.org/api', 'extra']), ['true']);
      c.close();
      assert.equal(res.code, 0);
      const msg = W.fetchJwtsvid.responseDeserialize(res.messages[0]!);
      assert.equal(msg.svids.length, 1);
      assert.equal(msg.svids[0]!.spiffeId, WEB);
      assert.equal(msg.svids[0]!.hint, 'web');
      const svid = await JwtSvid.parseAndValidate(msg.svids[0]!.svid, h.provider.bundles().own, ['extra'], {
        now: TEST_NOW,
      });
      assert.equal(svid.id.toString(), WEB);
    });

    it('answers Unavailable when minting fails', async () => {
      entitle();
      h.provider.jwtFailure = new Error('server unreachable');
      try {
        const c = rawClient(h.address);
        const res = await rawUnary(c, JWT, jwtRequest(['a']), ['true']);
        c.close();
        assert.equal(res.code, status.UNAVAILABLE);
        assert.equal(res.details, 'could not fetch JWT-SVID: server unreachable');
      } finally {
        h.provider.jwtFailure = undefined;
      }
    });
  });

  describe('ValidateJWTSVID', () => {
    it('returns the SPIFFE ID and claims with aud as a list', async () => {
      entitle();
      const token = h.provider.jwt.mint({
        sub: WEB,
        aud: 'spiffe://example.org/api',
        extraClaims: { team: 'x' },
      });
      const c = rawClient(h.address);
      const res = await rawUnary(c, VALIDATE, validateRequest('spiffe://example.org/api', token), ['true']);
      c.close();
      assert.equal(res.code, 0, res.details);
      const msg = W.validateJwtsvid.responseDeserialize(res.messages[0]!);
      assert.equal(msg.spiffeId, WEB);
      assert.deepEqual(msg.claims?.aud, ['spiffe://example.org/api']);
      assert.equal(msg.claims?.team, 'x');
      assert.equal(msg.claims?.sub, WEB);
    });

    const bad: { name: string; audience: string; token: () => string; details: RegExp }[] = [
      { name: 'an empty audience', audience: '', token: () => 'x', details: /^audience must be specified$/ },
      { name: 'an empty svid', audience: 'a', token: () => '', details: /^svid must be specified$/ },
      {
        name: 'an expired token',
        audience: 'a',
        token: () =>
          h.provider.jwt.mint({ sub: WEB, aud: 'a', exp: new Date(TEST_NOW.getTime() - 3600_000) }),
        details: /expired/,
      },
      {
        name: 'a token for another audience',
        audience: 'a',
        token: () => h.provider.jwt.mint({ sub: WEB, aud: 'b' }),
        details: /audience/,
      },
      {
        name: 'a token signed by an unknown key',
        audience: 'a',
        token: () => h.provider.jwt.mint({ sub: WEB, aud: 'a', signWithOtherKey: true }),
        details: /^jwtsvid: /,
      },
      { name: 'garbage', audience: 'a', token: () => 'not.a.jwt', details: /jwtsvid/ },
    ];
    for (const tc of bad) {
      it(`refuses ${tc.name} with InvalidArgument`, async () => {
        entitle();
        const c = rawClient(h.address);
        const res = await rawUnary(c, VALIDATE, validateRequest(tc.audience, tc.token()), ['true']);
        c.close();
        assert.equal(res.code, status.INVALID_ARGUMENT);
        assert.match(res.details, tc.details);
      });
    }
  });

  describe('WIT RPCs', () => {
    for (const [method, details] of [
      ['/SpiffeWorkloadAPI/FetchWITSVID', 'fetching WIT-SVIDs is not implemented'],
      ['/SpiffeWorkloadAPI/FetchWITBundles', 'fetching WIT bundles is not implemented'],
    ] as const) {
      it(`answers ${method} with Unimplemented`, async () => {
        const c = rawClient(h.address);
        const res = await rawStream(c, method, EMPTY, ['true']);
        c.close();
        assert.equal(res.code, status.UNIMPLEMENTED);
        assert.equal(res.details, details);
      });
    }
  });

  describe('bad input', () => {
    it('refuses an oversized request with ResourceExhausted and keeps serving', async () => {
      entitle();
      const c = rawClient(h.address);
      const res = await rawUnary(c, VALIDATE, validateRequest('a', 'x'.repeat(2 * 1024 * 1024)), ['true']);
      assert.equal(res.code, status.RESOURCE_EXHAUSTED);
      const ok = await rawStream(c, X509, EMPTY, ['true'], 1);
      c.close();
      assert.equal(ok.messages.length, 1);
    });

    it('refuses malformed protobuf bytes and keeps serving', async () => {
      entitle();
      const c = rawClient(h.address);
      // Field 1 (audience) declared as 100 bytes long with only 3 present.
      const res = await rawUnary(c, JWT, Buffer.from([0x0a, 0x64, 0x61, 0x62, 0x63]), ['true']);
      // The client's fault, said so: InvalidArgument (grpc-js alone would answer Internal).
      assert.equal(res.code, status.INVALID_ARGUMENT);
      assert.match(res.details, /^malformed request: /);
      const stream = await rawStream(c, X509, Buffer.from([0x0a, 0x64, 0x61]), ['true']);
      assert.equal(stream.code, status.INVALID_ARGUMENT);
      assert.match(stream.details, /^malformed request: /);
      const noHeader = await rawUnary(c, JWT, Buffer.from([0x0a, 0x64, 0x61, 0x62, 0x63]), undefined);
      assert.equal(noHeader.code, status.INVALID_ARGUMENT);
      assert.match(noHeader.details, /security header/, 'the header is checked before the request is read');
      const ok = await rawStream(c, X509, EMPTY, ['true'], 1);
      c.close();
      assert.equal(ok.messages.length, 1);
    });

    it('refuses a non-UTF-8 string field', async () => {
      const c = rawClient(h.address);
      const res = await rawUnary(c, JWT, Buffer.from([0x0a, 0x02, 0xff, 0xfe]), ['true']);
      c.close();
      // Either the decoder refuses it or the garbage audience is accepted as a string; never a crash.
      assert.ok([0, status.INVALID_ARGUMENT].includes(res.code), `code ${res.code}`);
    });
  });

  describe('a connection that outlives the attested process', () => {
    /**
     * Process A opens a FetchX509SVID stream, hands its socket to a child B (fd 3) and exits: after the first
     * message (`handOver` 'data'), or 300 ms after its request while no message came ('timer'). B keeps the
     * connection open but is not the process the agent attested. Returns B's pid.
     */
    async function handOver(when: 'data' | 'timer'): Promise<number> {
      const script = `
        const http2 = require('node:http2');
        const net = require('node:net');
        const { spawn } = require('node:child_process');
        let sock;
        const session = http2.connect('http://localhost', { createConnection: () => (sock = net.connect(process.argv[1])) });
        const req = session.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/FetchX509SVID',
          'content-type': 'application/grpc', te: 'trailers', 'workload.spiffe.io': 'true' });
        req.end(Buffer.alloc(5));
        const handOver = () => {
          const b = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: ['ignore', 'ignore', 'ignore', sock] });
          process.stdout.write(String(b.pid) + '\\n', () => process.exit(0));
        };
        if (process.argv[2] === 'data') req.once('data', handOver);
        else setTimeout(handOver, 300);`;
      return handOverConnection(['-e', script, h.socketPath, when]);
    }

    it('ends the stream with Unavailable at the next update instead of sending SVIDs to the process that inherited it', async () => {
      entitle();
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      const childPid = await handOver('data');
      await expectStreamEndsAtRotation(h, childPid);
    });

    it('does not send the first message either when it comes after the attested process exited', async () => {
      h.provider.setEntries([
        { id: 'e-late', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'late', issued: false },
      ]);
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      const childPid = await handOver('timer');
      try {
        assert.ok(
          await eventually(() => h.provider.openSubscriptions === 1),
          'the stream waits for the SVID',
        );
        h.provider.issue('e-late');
        assert.ok(
          await eventually(() => h.provider.openSubscriptions === 0),
          'the stream ended instead of sending the SVID to the process that inherited the connection',
        );
      } finally {
        process.kill(childPid, 'SIGKILL');
      }
    });
  });

  describe('clients that vanish', () => {
    it('releases the streams, subscriptions and file descriptors of 100 killed clients', async () => {
      entitle();
      // Warm up so lazily opened descriptors are in the baseline.
      await client.fetchX509Context();
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
      await settle(() => h.endpoints.connectionCount);
      const baseline = fdCount();
      const baseConnections = h.endpoints.connectionCount;
      const grpcPath = createRequire(import.meta.url).resolve('@grpc/grpc-js');
      const script = join(h.socketPath, '..', 'vanish.cjs');
      await writeFile(
        script,
        `const grpc = require(${JSON.stringify(grpcPath)});
const md = new grpc.Metadata(); md.set('workload.spiffe.io', 'true');
let got = 0;
let failed = 0;
for (let i = 0; i < 100; i++) {
  const c = new grpc.Client(${JSON.stringify(h.address)}, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const s = c.makeServerStreamRequest(${JSON.stringify(X509)}, (b) => b, (b) => b, Buffer.alloc(0), md);
  s.on('data', () => { if (++got === 100) process.stdout.write('ready\\n'); });
  s.on('error', (e) => { failed++; process.stderr.write('stream error ' + e.code + ' ' + e.details + '\\n'); });
}
// Never outlive the test process.
setInterval(() => { if (process.ppid === 1) process.exit(1); }, 200);
`,
      );
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error('the 100 streams did not all open within 60 s')),
            60_000,
          );
          child.stdout.on('data', (d: Buffer) => {
            if (d.toString().includes('ready')) {
              clearTimeout(timer);
              resolve();
            }
          });
          child.once('exit', () => {
            clearTimeout(timer);
            reject(new Error('child exited early'));
          });
        });
        assert.equal(h.endpoints.connectionCount, baseConnections + 100);
        assert.equal(h.provider.openSubscriptions, 100);
      } finally {
        child.kill('SIGKILL');
      }
      assert.ok(
        await eventually(() => h.endpoints.connectionCount === baseConnections),
        'connections closed',
      );
      assert.ok(await eventually(() => h.provider.openSubscriptions === 0), 'subscriptions closed');
      assert.ok(await eventually(() => fdCount() <= baseline), `fds back to ${baseline}, now ${fdCount()}`);
    });

    it('releases a client that connected and hung without sending a request once it goes', async () => {
      const { connect } = await import('node:net');
      await settle(() => h.endpoints.connectionCount);
      const baseline = fdCount();
      const baseConnections = h.endpoints.connectionCount;
      const sockets = Array.from({ length: 20 }, () => connect(h.socketPath));
      assert.ok(await eventually(() => h.endpoints.connectionCount === baseConnections + 20));
      for (const s of sockets) s.destroy();
      assert.ok(await eventually(() => h.endpoints.connectionCount === baseConnections));
      assert.ok(await eventually(() => fdCount() <= baseline), `fds back to ${baseline}, now ${fdCount()}`);
    });
  });
});
