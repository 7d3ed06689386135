import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { createBundleHandler } from '@tessera/spiffe/federation';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { createSpiffeHttpsServer, tlsServerOptions } from '@tessera/spiffe/tls';
import { TestCa } from '@tessera/testing';
import type { Bundle, FederationRelationship } from '../datastore/types.js';
import { createFederationPoller, type FederationPollerConfig } from './poller.js';

const OWN = TrustDomain.fromString('own.test');
const PEER = TrustDomain.fromString('peer.test');
const peerCa = TestCa.create({ trustDomain: 'peer.test' });
const ownCa = TestCa.create({ trustDomain: 'own.test' });

class FakeStore {
  bundles = new Map<string, Bundle>();
  relationships: FederationRelationship[] = [];
  writes = 0;
  async listFederationRelationships() {
    return { items: [...this.relationships], nextPageToken: undefined };
  }
  async fetchBundle(td: string) {
    return this.bundles.get(td);
  }
  async appendBundle(td: string, merge: (cur: Bundle | undefined) => Bundle) {
    this.writes++;
    const b = merge(this.bundles.get(td));
    this.bundles.set(td, b);
    return b;
  }
  stored(td: TrustDomain): SpiffeBundle | undefined {
    const b = this.bundles.get(td.name);
    return b === undefined ? undefined : SpiffeBundle.parse(td, b.data);
  }
}

interface Log {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}
function capture(): { logs: Log[]; logger: FederationPollerConfig['logger'] } {
  const logs: Log[] = [];
  const at = (level: string) => (fields: object, msg: string) =>
    logs.push({ level, fields: fields as Record<string, unknown>, msg });
  return { logs, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

/** A sleep that returns at once `n - 1` times, then signals `reached` and waits for the abort. */
function gate(n: number): {
  delays: number[];
  reached: Promise<void>;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
} {
  const delays: number[] = [];
  let release!: () => void;
  const reached = new Promise<void>((r) => {
    release = r;
  });
  return {
    delays,
    reached,
    sleep: (ms, signal) => {
      delays.push(ms);
      if (delays.length < n) return Promise.resolve();
      release();
      return new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    },
  };
}

const servers: { close(cb: () => void): void }[] = [];
after(async () => {
  for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
});

async function endpoint(id: string, ca: TestCa, next: () => SpiffeBundle): Promise<string> {
  const leaf = ca.issueX509Svid({ spiffeId: id });
  const svid = { certificates: leaf.certificates, privateKey: leaf.privateKey };
  const server = createSpiffeHttpsServer(
    tlsServerOptions({ getX509Svid: () => svid }),
    {},
    createBundleHandler(PEER, { getBundleForTrustDomain: () => next() }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

const peerBundle = (seq: number, extra: TestCa[] = []) =>
  SpiffeBundle.fromAuthorities(PEER, {
    x509Authorities: [peerCa.certificate, ...extra.map((c) => c.certificate)],
    sequenceNumber: seq,
    refreshHint: 30,
  });

function spiffeRel(url: string, endpointId = 'spiffe://peer.test/spire/server'): FederationRelationship {
  return {
    trustDomain: 'peer.test',
    bundleEndpointUrl: url,
    profile: 'https_spiffe',
    endpointSpiffeId: endpointId,
  };
}

function bootstrap(store: FakeStore): void {
  const b = SpiffeBundle.fromAuthorities(PEER, { x509Authorities: [peerCa.certificate] });
  store.bundles.set('peer.test', { trustDomain: 'peer.test', data: Buffer.from(b.marshal()), sequence: 0 });
}

function poller(store: FakeStore, extra: Partial<FederationPollerConfig> = {}) {
  const { logs, logger } = capture();
  const p = createFederationPoller({
    trustDomain: OWN,
    datastore: store,
    ca: { bundle: () => SpiffeBundle.fromAuthorities(OWN, { x509Authorities: [ownCa.certificate] }) },
    logger,
    ...extra,
  });
  return { p, logs };
}

describe('federation poller', () => {
  it('stores the fetched bundle once and does not rewrite an unchanged one', async () => {
    const url = await endpoint('spiffe://peer.test/spire/server', peerCa, () => peerBundle(3));
    const store = new FakeStore();
    bootstrap(store);
    store.relationships = [spiffeRel(url)];
    const g = gate(3);
    const { p } = poller(store, { sleep: g.sleep });
    await p.reconcile();
    await g.reached;
    await p.close();
    assert.equal(store.writes, 1);
    assert.equal(store.stored(PEER)?.sequenceNumber, 3n);
    assert.deepEqual(g.delays, [30_000, 30_000, 30_000]);
  });

  it('FED-04: does not store a bundle older than the last one fetched', async () => {
    const other = TestCa.create({ trustDomain: 'peer.test' });
    const served = [peerBundle(5), peerBundle(4, [other])];
    let last = served[0] as SpiffeBundle;
    const url = await endpoint('spiffe://peer.test/spire/server', peerCa, () => {
      last = served.shift() ?? last;
      return last;
    });
    const store = new FakeStore();
    bootstrap(store);
    store.relationships = [spiffeRel(url)];
    const g = gate(2);
    const { p, logs } = poller(store, { sleep: g.sleep });
    await p.reconcile();
    await g.reached;
    await p.close();
    assert.equal(store.stored(PEER)?.sequenceNumber, 5n);
    assert.ok(logs.some((l) => l.msg === 'Ignoring a federated bundle older than the last one fetched'));
  });

  it('FED-15: refuses an endpoint presenting another SPIFFE ID, stores nothing and retries at the interval', async () => {
    const url = await endpoint('spiffe://peer.test/other', peerCa, () => peerBundle(9));
    const store = new FakeStore();
    bootstrap(store);
    store.relationships = [spiffeRel(url)];
    const g = gate(2);
    const { p, logs } = poller(store, { sleep: g.sleep });
    await p.reconcile();
    await g.reached;
    await p.close();
    assert.equal(store.writes, 0);
    const failures = logs.filter((l) => l.msg === 'Federated bundle poll failed');
    assert.equal(failures.length, 2);
    assert.match(String(failures[0]?.fields.err), /tls: unexpected ID "spiffe:\/\/peer\.test\/other"/);
    // The bootstrap bundle has no refresh hint: 5 minutes (FED-18: no tight loop).
    assert.deepEqual(g.delays, [300_000, 300_000]);
  });

  it('fails without a bootstrap bundle and waits 60 s while no bundle is known', async () => {
    const url = await endpoint('spiffe://peer.test/spire/server', peerCa, () => peerBundle(1));
    const store = new FakeStore();
    store.relationships = [spiffeRel(url)];
    const g = gate(1);
    const { p, logs } = poller(store, { sleep: g.sleep });
    await p.reconcile();
    await g.reached;
    await p.close();
    assert.equal(store.writes, 0);
    assert.equal(
      logs.find((l) => l.msg === 'Federated bundle poll failed')?.fields.err,
      'federation: no bundle for trust domain "peer.test" to authenticate the bundle endpoint of "peer.test" (set one with "bundle set")',
    );
    assert.deepEqual(g.delays, [60_000]);
  });

  it('authenticates an endpoint of our own trust domain with our own bundle', async () => {
    const url = await endpoint('spiffe://own.test/federation/peer-mirror', ownCa, () => peerBundle(2));
    const store = new FakeStore();
    store.relationships = [spiffeRel(url, 'spiffe://own.test/federation/peer-mirror')];
    const g = gate(1);
    const { p } = poller(store, { sleep: g.sleep });
    await p.reconcile();
    await g.reached;
    await p.close();
    assert.equal(store.stored(PEER)?.sequenceNumber, 2n);
  });

  it('polls an https_web endpoint with the configured roots', async () => {
    const web = TestCa.create({ trustDomain: 'web.test', subjectSpiffeId: null });
    const leaf = web.issueX509Svid({ uris: [], dnsNames: ['localhost'] });
    const server = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) =>
      res.end(peerBundle(7).marshal()),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const store = new FakeStore();
    store.relationships = [
      {
        trustDomain: 'peer.test',
        bundleEndpointUrl: `https://localhost:${(server.address() as AddressInfo).port}/`,
        profile: 'https_web',
        endpointSpiffeId: undefined,
      },
    ];
    const g = gate(1);
    const { p } = poller(store, { sleep: g.sleep, webPkiRoots: [web.certificate] });
    await p.reconcile();
    await g.reached;
    await p.close();
    assert.equal(store.stored(PEER)?.sequenceNumber, 7n);
  });

  it('starts, restarts and stops polls as relationships are created, updated and deleted', async () => {
    const url = await endpoint('spiffe://peer.test/spire/server', peerCa, () => peerBundle(1));
    const store = new FakeStore();
    bootstrap(store);
    const { p, logs } = poller(store, {
      sleep: (_ms, signal) => new Promise((r) => signal.addEventListener('abort', () => r(), { once: true })),
    });
    await p.reconcile();
    assert.deepEqual(p.polling(), []);
    store.relationships = [spiffeRel(url)];
    await p.reconcile();
    assert.deepEqual(p.polling(), ['peer.test']);
    store.relationships = [spiffeRel(`${url}v2`)];
    await p.reconcile();
    assert.deepEqual(p.polling(), ['peer.test']);
    assert.ok(logs.some((l) => l.msg === 'Federation stopped' && l.fields.reason === 'relationship updated'));
    store.relationships = [];
    await p.reconcile();
    assert.deepEqual(p.polling(), []);
    assert.ok(logs.some((l) => l.msg === 'Federation stopped' && l.fields.reason === 'relationship deleted'));
    await p.close();
  });

  it('keeps polling a relationship of the configuration file that is not stored', async () => {
    const url = await endpoint('spiffe://peer.test/spire/server', peerCa, () => peerBundle(1));
    const store = new FakeStore();
    bootstrap(store);
    const { p } = poller(store, {
      staticRelationships: [spiffeRel(url)],
      sleep: (_ms, signal) => new Promise((r) => signal.addEventListener('abort', () => r(), { once: true })),
    });
    await p.reconcile();
    assert.deepEqual(p.polling(), ['peer.test']);
    await p.close();
    assert.deepEqual(p.polling(), []);
  });
});
