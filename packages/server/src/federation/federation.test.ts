import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credentials, status } from '@grpc/grpc-js';
import { makeClient, TrustDomainService } from '@tessera/common/api';
import { createNullLogger } from '@tessera/common/log';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { fetchBundle } from '@tessera/spiffe/federation';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { runCli } from '../cli/index.js';
import { validateServerConfig } from '../config/load.js';
import { startServer, type TesseraServer } from '../server.js';

const fps = (b: SpiffeBundle | undefined) => (b?.x509Authorities() ?? []).map((c) => c.fingerprint256);

const A = TrustDomain.fromString('a.test');
const B = TrustDomain.fromString('b.test');

async function start(td: TrustDomain, dir: string, refreshHint = '1s'): Promise<TesseraServer> {
  const r = validateServerConfig({
    trust_domain: td.name,
    bind_address: '127.0.0.1',
    socket_path: join(dir, td.name, 'api.sock'),
    data_dir: join(dir, td.name, 'data'),
    key_manager: { type: 'memory' },
    federation: { bundle_endpoint: { address: '127.0.0.1', refresh_hint: refreshHint } },
    health_checks: { listener_enabled: false },
  });
  if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
  return startServer({ config: r.config, logger: createNullLogger(), bindPort: 0, bundleEndpointPort: 0 });
}

async function storedBundle(server: TesseraServer, td: TrustDomain): Promise<SpiffeBundle | undefined> {
  const rec = await server.datastore.fetchBundle(td.name);
  return rec === undefined ? undefined : SpiffeBundle.parse(td, rec.data);
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting until ${what}`);
}

function rawGet(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, rejectUnauthorized: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('federation between two tessera servers (https_spiffe)', () => {
  let dir: string;
  let a: TesseraServer;
  let b: TesseraServer;
  const clients: { close(): void }[] = [];
  const admin = (s: TesseraServer, td: TrustDomain) => {
    void s;
    const c = makeClient(
      TrustDomainService,
      `unix://${join(dir, td.name, 'api.sock')}`,
      credentials.createInsecure(),
    );
    clients.push(c);
    return c;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-fed-'));
    a = await start(A, dir);
    b = await start(B, dir);
  });
  after(async () => {
    for (const c of clients) c.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves its own bundle on GET / with its SVID, 404 elsewhere and 405 for other methods', async () => {
    const port = a.federation.bundleEndpointPort;
    assert.ok(port !== undefined);
    const fetched = await fetchBundle(A, `https://127.0.0.1:${port}/`, {
      spiffeAuth: { bundleSource: a.ca.bundle(), endpointId: SpiffeId.fromPath(A, '/spire/server') },
    });
    assert.deepEqual(fps(fetched), fps(a.ca.bundle()));
    assert.equal(fetched.refreshHint, 1);
    assert.equal(fetched.sequenceNumber, a.ca.bundle().sequenceNumber);
    assert.equal((await rawGet(port, '/other')).status, 404);
    const post = await rawGet(port, '/', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.body, 'method is not allowed');
  });

  it('each server fetches and stores the other trust domain bundle after relationships are created through the API', async () => {
    // Bootstrap bundles (as `bundle set` would store them): authorities only, no sequence or hint.
    const bootA = SpiffeBundle.fromAuthorities(A, { x509Authorities: a.ca.bundle().x509Authorities() });
    const bootB = SpiffeBundle.fromAuthorities(B, { x509Authorities: b.ca.bundle().x509Authorities() });
    await a.datastore.setBundle({ trustDomain: B.name, data: Buffer.from(bootB.marshal()), sequence: 0 });
    await b.datastore.setBundle({ trustDomain: A.name, data: Buffer.from(bootA.marshal()), sequence: 0 });

    const create = async (
      s: TesseraServer,
      self: TrustDomain,
      peer: TrustDomain,
      port: number | undefined,
    ) => {
      const res = await admin(s, self).batchCreateFederationRelationship({
        federationRelationship: [
          {
            trustDomain: peer.name,
            bundleEndpointUrl: `https://127.0.0.1:${port}/`,
            httpsSpiffe: { endpointSpiffeId: SpiffeId.fromPath(peer, '/spire/server').toString() },
            trustDomainBundle: undefined,
          },
        ],
        outputMask: undefined,
      });
      assert.equal(res.results[0]?.status?.code, 0);
    };
    await create(a, A, B, b.federation.bundleEndpointPort);
    await create(b, B, A, a.federation.bundleEndpointPort);

    await eventually('a.test stores the bundle served by b.test', async () => {
      const got = await storedBundle(a, B);
      return got?.refreshHint === 1 && got.sequenceNumber === b.ca.bundle().sequenceNumber;
    });
    await eventually('b.test stores the bundle served by a.test', async () => {
      const got = await storedBundle(b, A);
      return got?.refreshHint === 1 && got.sequenceNumber === a.ca.bundle().sequenceNumber;
    });
    assert.deepEqual(fps(await storedBundle(a, B)), fps(b.ca.bundle()));
    assert.deepEqual(fps(await storedBundle(b, A)), fps(a.ca.bundle()));
    assert.deepEqual(a.federation.poller.polling(), ['b.test']);
    assert.deepEqual(b.federation.poller.polling(), ['a.test']);
  });

  it('picks up a change of the foreign bundle (a prepared X.509 authority) at the refresh hint', async () => {
    const before = b.ca.bundle().x509Authorities().length;
    await b.ca.prepareAuthority('x509');
    assert.equal(b.ca.bundle().x509Authorities().length, before + 1);
    await eventually('a.test stores the bundle with the prepared authority', async () => {
      const got = await storedBundle(a, B);
      return got !== undefined && got.x509Authorities().length === before + 1;
    });
    assert.equal((await storedBundle(a, B))?.sequenceNumber, b.ca.bundle().sequenceNumber);
  });

  it('stops polling when the relationship is deleted through the API', async () => {
    const res = await admin(a, A).batchDeleteFederationRelationship({ trustDomains: [B.name] });
    assert.equal(res.results[0]?.status?.code, 0);
    await eventually('a.test stops polling b.test', async () => a.federation.poller.polling().length === 0);
    const kept = await storedBundle(a, B);
    await b.ca.prepareAuthority('jwt');
    // b.test's bundle changed; a.test no longer fetches it (its poll interval is 1 s).
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(kept !== undefined && (await storedBundle(a, B))?.equals(kept));
    assert.deepEqual(b.federation.poller.polling(), ['a.test']);
  });
});

describe('TrustDomain.RefreshBundle and `federation refresh`', () => {
  let dir: string;
  let a: TesseraServer;
  let b: TesseraServer;
  let admin: ReturnType<typeof makeClient<typeof TrustDomainService>>;

  const cli = async (argv: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli([...argv, '--socket', join(dir, A.name, 'api.sock')], {
      io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: dir },
    });
    return { code, stdout, stderr };
  };
  const refreshError = async (trustDomain: string) => {
    try {
      await admin.refreshBundle({ trustDomain });
    } catch (err) {
      return err as { code: number; details: string };
    }
    return assert.fail(`RefreshBundle of "${trustDomain}" succeeded`);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-fed-refresh-'));
    // A one-hour refresh hint: after its first fetch, a.test would not poll b.test again during this test, so
    // only a refresh can bring it a changed bundle.
    a = await start(A, dir, '1h');
    b = await start(B, dir, '1h');
    admin = makeClient(
      TrustDomainService,
      `unix://${join(dir, A.name, 'api.sock')}`,
      credentials.createInsecure(),
    );
    const bootB = SpiffeBundle.fromAuthorities(B, { x509Authorities: b.ca.bundle().x509Authorities() });
    await a.datastore.setBundle({ trustDomain: B.name, data: Buffer.from(bootB.marshal()), sequence: 0 });
    const res = await admin.batchCreateFederationRelationship({
      federationRelationship: [
        {
          trustDomain: B.name,
          bundleEndpointUrl: `https://127.0.0.1:${b.federation.bundleEndpointPort}/`,
          httpsSpiffe: { endpointSpiffeId: SpiffeId.fromPath(B, '/spire/server').toString() },
          trustDomainBundle: undefined,
        },
        {
          // Nothing listens on port 1: every fetch fails.
          trustDomain: 'down.test',
          bundleEndpointUrl: 'https://127.0.0.1:1/',
          httpsWeb: {},
          trustDomainBundle: undefined,
        },
      ],
      outputMask: undefined,
    });
    assert.deepEqual(
      res.results.map((r) => r.status?.code),
      [0, 0],
    );
    await eventually('a.test stores the bundle served by b.test', async () => {
      return (await storedBundle(a, B))?.sequenceNumber === b.ca.bundle().sequenceNumber;
    });
  });
  after(async () => {
    admin?.close();
    await a?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches and stores a changed bundle at once, through the API and through the CLI', async () => {
    await b.ca.prepareAuthority('jwt');
    const changed = b.ca.bundle();
    assert.notEqual((await storedBundle(a, B))?.sequenceNumber, changed.sequenceNumber);
    await admin.refreshBundle({ trustDomain: B.name });
    assert.equal((await storedBundle(a, B))?.sequenceNumber, changed.sequenceNumber);
    assert.equal((await storedBundle(a, B))?.jwtAuthorities().size, changed.jwtAuthorities().size);

    await b.ca.prepareAuthority('x509');
    const next = b.ca.bundle();
    const r = await cli(['federation', 'refresh', '--id', B.name]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Bundle refreshed\n');
    assert.equal((await storedBundle(a, B))?.sequenceNumber, next.sequenceNumber);
    assert.deepEqual(fps(await storedBundle(a, B)), fps(next));
  });

  it('answers NotFound without a relationship, InvalidArgument for a bad or own trust domain, and Internal with the reason when the fetch fails', async () => {
    const missing = await refreshError('none.test');
    assert.equal(missing.code, status.NOT_FOUND);
    assert.match(missing.details, /no relationship with trust domain "none\.test"/);
    assert.equal((await refreshError('')).code, status.INVALID_ARGUMENT);
    assert.equal((await refreshError('Bad TD')).code, status.INVALID_ARGUMENT);
    assert.equal((await refreshError(A.name)).code, status.INVALID_ARGUMENT);
    const down = await refreshError('down.test');
    assert.equal(down.code, status.INTERNAL);
    assert.match(down.details, /^failed to refresh bundle: /);
    const r = await cli(['federation', 'refresh', '--id', 'down.test']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /failed to refresh bundle/);
    assert.deepEqual(a.federation.poller.polling(), ['b.test', 'down.test']);
  });
});
