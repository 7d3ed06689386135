import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { SpiffeBundle, X509Bundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
import {
  type StoreSvidEntry,
  type StoreSvidSource,
  type StoreSvidState,
  type SvidStoreLogger,
  SvidStoreService,
} from './service.js';
import { type StoredSvid, type StoreSelector, type SvidStore, SvidStoreError } from './store.js';

const td = TrustDomain.fromString('example.org');
const ca = TestCa.create({ trustDomain: 'example.org' });
const fedCa = TestCa.create({ trustDomain: 'partner.org' });
const bundleOf = (c: TestCa) =>
  SpiffeBundle.fromBundle(X509Bundle.fromAuthorities(TrustDomain.fromString(c.trustDomain), [c.certificate]));

function svidFor(path: string, notAfter: Date) {
  const s = ca.issueX509Svid({
    spiffeId: `spiffe://example.org/${path}`,
    notAfter,
    now: new Date(notAfter.getTime() - 3600_000),
  });
  if (!('keyDer' in s)) throw new Error('no key');
  return { chainDer: s.certificates.map((c) => c.raw), keyDer: s.keyDer, expiresAt: notAfter };
}

class FakeSource implements StoreSvidSource {
  state: StoreSvidState = { synced: true, entries: [], bundle: bundleOf(ca), federated: new Map() };
  readonly listeners = new Set<() => void>();
  minted: { entryId: string; audience: readonly string[] }[] = [];
  now = () => new Date();
  storeSvidState(): StoreSvidState {
    return this.state;
  }
  onStoreSvidChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async mintStoreJwtSvid(entryId: string, audience: readonly string[]) {
    this.minted.push({ entryId, audience });
    const iat = this.now();
    return {
      token: `jwt-${entryId}-${audience.join(',')}-${this.minted.length}`,
      issuedAt: iat,
      expiresAt: new Date(iat.getTime() + 300_000),
    };
  }
  set(entries: readonly StoreSvidEntry[], extra: Partial<StoreSvidState> = {}): void {
    this.state = { ...this.state, entries, ...extra };
  }
}

class RecordingStore implements SvidStore {
  readonly ops: { op: 'put' | 'delete'; selectors: string[]; doc?: StoredSvid }[] = [];
  failures = 0;
  constructor(readonly name: string) {}
  validate(selectors: readonly StoreSelector[]): void {
    if (!selectors.some((s) => s.value.startsWith('name:')))
      throw new SvidStoreError('ERR_SVIDSTORE_INVALID', 'svidstore: needs a name');
  }
  async put(secret: StoredSvid, selectors: readonly StoreSelector[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new SvidStoreError('ERR_SVIDSTORE_FAILED', 'svidstore: backend down');
    }
    this.ops.push({ op: 'put', selectors: selectors.map((s) => s.value), doc: secret });
  }
  async delete(selectors: readonly StoreSelector[]): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new SvidStoreError('ERR_SVIDSTORE_FAILED', 'svidstore: backend down');
    }
    this.ops.push({ op: 'delete', selectors: selectors.map((s) => s.value) });
  }
  async close(): Promise<void> {}
}

class CapturingLogger implements SvidStoreLogger {
  readonly lines: string[] = [];
  #push(level: string, fields: Record<string, unknown>, msg: string) {
    this.lines.push(
      `${level} ${msg} ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? { message: v.message } : v))}`,
    );
  }
  debug(f: Record<string, unknown>, m: string) {
    this.#push('debug', f, m);
  }
  info(f: Record<string, unknown>, m: string) {
    this.#push('info', f, m);
  }
  warn(f: Record<string, unknown>, m: string) {
    this.#push('warn', f, m);
  }
  error(f: Record<string, unknown>, m: string) {
    this.#push('error', f, m);
  }
}

const T0 = new Date('2030-01-01T00:00:00Z');
const sel = (type: string, ...values: string[]) => values.map((value) => ({ type, value }));

function entry(
  id: string,
  selectors: StoreSelector[],
  svid: StoreSvidEntry['svid'],
  federatesWith: string[] = [],
): StoreSvidEntry {
  return { id, spiffeId: `spiffe://example.org/${id}`, selectors, federatesWith, svid };
}

describe('SvidStoreService', () => {
  let dir: string;
  let now: Date;
  let source: FakeSource;
  let disk: RecordingStore;
  let log: CapturingLogger;
  const services: SvidStoreService[] = [];
  const make = (extra: { statePath?: string } = {}) => {
    const s = new SvidStoreService({
      source,
      stores: [disk],
      now: () => now,
      random: () => 0.5,
      resyncMs: 0,
      logger: log,
      ...extra,
    });
    services.push(s);
    return s;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'svidstore-service-'));
    now = T0;
    source = new FakeSource();
    source.now = () => now;
    disk = new RecordingStore('disk');
    log = new CapturingLogger();
  });
  after(async () => {
    for (const s of services) await s.stop();
  });

  it('pushes an entry once it has an SVID, with the SPIRE document fields and federated bundles', async () => {
    const svc = make();
    source.set([entry('db', sel('disk', 'name:db'), undefined, ['partner.org', 'unknown.org'])]);
    await svc.start();
    assert.equal(disk.ops.length, 0, 'nothing to push before the SVID exists');
    const svid = svidFor('db', new Date(T0.getTime() + 3600_000));
    source.set([entry('db', sel('disk', 'name:db'), svid, ['partner.org', 'unknown.org'])], {
      federated: new Map([['partner.org', bundleOf(fedCa)]]),
    });
    await svc.reconcile();
    assert.equal(disk.ops.length, 1);
    const doc = disk.ops[0]?.doc as StoredSvid;
    assert.equal(doc.spiffeId, 'spiffe://example.org/db');
    assert.match(doc.x509Svid, /^-----BEGIN CERTIFICATE-----\n/);
    assert.match(doc.x509SvidKey, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(doc.bundle, ca.rootPem());
    assert.deepEqual(Object.keys(doc.federatedBundles), ['spiffe://partner.org']);
    assert.equal(doc.federatedBundles['spiffe://partner.org'], fedCa.rootPem());
    await svc.reconcile();
    assert.equal(disk.ops.length, 1, 'an unchanged document is not pushed again');
  });

  it('pushes again on rotation and on a bundle change', async () => {
    const svc = make();
    source.set([entry('db', sel('disk', 'name:db'), svidFor('db', new Date(T0.getTime() + 3600_000)))]);
    await svc.start();
    source.set([entry('db', sel('disk', 'name:db'), svidFor('db', new Date(T0.getTime() + 7200_000)))]);
    await svc.reconcile();
    assert.equal(disk.ops.length, 2);
    const other = TestCa.create({ trustDomain: 'example.org' });
    source.set(source.state.entries, {
      bundle: SpiffeBundle.fromBundle(X509Bundle.fromAuthorities(td, [ca.certificate, other.certificate])),
    });
    await svc.reconcile();
    assert.equal(disk.ops.length, 3);
    assert.equal(disk.ops[2]?.doc?.bundle, ca.rootPem() + other.rootPem());
  });

  it('deletes the secret when the entry goes away, and moves it when its selectors change', async () => {
    const svc = make();
    const svid = svidFor('db', new Date(T0.getTime() + 3600_000));
    source.set([entry('db', sel('disk', 'name:a'), svid)]);
    await svc.start();
    source.set([entry('db', sel('disk', 'name:b'), svid)]);
    await svc.reconcile();
    assert.deepEqual(
      disk.ops.map((o) => `${o.op} ${o.selectors.join(',')}`),
      ['put name:a', 'delete name:a', 'put name:b'],
    );
    source.set([]);
    await svc.reconcile();
    assert.deepEqual(disk.ops.at(-1), { op: 'delete', selectors: ['name:b'] });
    assert.deepEqual(svc.status(), { pushed: 0, pendingRetries: 0 });
  });

  it('deletes nothing before the manager has synced', async () => {
    const statePath = join(dir, 'state.json');
    const first = make({ statePath });
    source.set([entry('db', sel('disk', 'name:a'), svidFor('db', new Date(T0.getTime() + 3600_000)))]);
    await first.start();
    await first.stop();
    source.set([], { synced: false });
    const second = make({ statePath });
    await second.start();
    assert.equal(disk.ops.filter((o) => o.op === 'delete').length, 0);
    source.set([], { synced: true });
    await second.reconcile();
    assert.deepEqual(
      disk.ops.at(-1),
      { op: 'delete', selectors: ['name:a'] },
      'deleted after a restart, from the persisted record',
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries a failed push with exponential backoff on the injected clock', async () => {
    const svc = make();
    disk.failures = 2;
    source.set([entry('db', sel('disk', 'name:db'), svidFor('db', new Date(T0.getTime() + 3600_000)))]);
    await svc.start();
    assert.deepEqual(svc.status(), { pushed: 0, pendingRetries: 1 });
    now = new Date(T0.getTime() + 900);
    await svc.reconcile();
    assert.equal(disk.failures, 1, 'not retried before the first delay (1 s)');
    now = new Date(T0.getTime() + 1000);
    await svc.reconcile();
    assert.equal(disk.failures, 0, 'second attempt after 1 s');
    now = new Date(T0.getTime() + 2900);
    await svc.reconcile();
    assert.equal(disk.ops.length, 0, 'the third attempt waits 2 s more');
    now = new Date(T0.getTime() + 3000);
    await svc.reconcile();
    assert.equal(disk.ops.length, 1);
    assert.deepEqual(svc.status(), { pushed: 1, pendingRetries: 0 });
    assert.ok(
      log.lines.some(
        (l) => l.startsWith('warn Storing an SVID failed; will retry') && l.includes('"retry_in_ms":1000'),
      ),
    );
    assert.ok(log.lines.some((l) => l.includes('"retry_in_ms":2000')));
  });

  it('stores JWT-SVIDs for jwtaudience selectors and refreshes them at half-life', async () => {
    const svc = make();
    source.set([
      entry(
        'fn',
        sel('disk', 'name:fn', 'jwtaudience:https://api.example', 'jwtaudience:sts'),
        svidFor('fn', new Date(T0.getTime() + 3600_000)),
      ),
    ]);
    await svc.start();
    assert.deepEqual(
      source.minted.map((m) => m.audience),
      [['https://api.example'], ['sts']],
    );
    assert.deepEqual(Object.keys(disk.ops[0]?.doc?.jwtSvids ?? {}), ['https://api.example', 'sts']);
    now = new Date(T0.getTime() + 149_000);
    await svc.reconcile();
    assert.equal(disk.ops.length, 1, 'tokens are reused before half-life');
    now = new Date(T0.getTime() + 150_000);
    await svc.reconcile();
    assert.equal(disk.ops.length, 2);
    assert.equal(source.minted.length, 4);
    assert.notEqual(disk.ops[1]?.doc?.jwtSvids.sts, disk.ops[0]?.doc?.jwtSvids.sts);
  });

  it('skips and reports entries it cannot store, once per problem', async () => {
    const svc = make();
    const svid = svidFor('x', new Date(T0.getTime() + 3600_000));
    source.set([
      entry('a', sel('aws_secretsmanager', 'secretname:a'), svid),
      entry('b', [...sel('disk', 'name:b'), ...sel('gcp_secretmanager', 'name:b')], svid),
      entry('c', sel('disk', 'nameless:c'), svid),
      entry('d', sel('disk', 'name:same'), svid),
      entry('e', sel('disk', 'name:same'), svid),
    ]);
    await svc.start();
    await svc.reconcile();
    assert.deepEqual(
      disk.ops.map((o) => o.doc?.spiffeId),
      ['spiffe://example.org/d'],
    );
    const errors = log.lines.filter((l) => l.startsWith('error Store-SVID entry cannot be stored'));
    assert.equal(errors.length, 4);
    assert.ok(errors.some((l) => l.includes('no SVID store \\"aws_secretsmanager\\" is configured')));
    assert.ok(errors.some((l) => l.includes('selectors of more than one type')));
    assert.ok(errors.some((l) => l.includes('svidstore: needs a name')));
    assert.ok(errors.some((l) => l.includes('entry \\"d\\" already stores its SVID in the same place')));
  });

  it('never logs key material or tokens', async () => {
    const svc = make();
    disk.failures = 1;
    const svid = svidFor('db', new Date(T0.getTime() + 3600_000));
    source.set([entry('db', sel('disk', 'name:db', 'jwtaudience:aud'), svid)]);
    await svc.start();
    now = new Date(T0.getTime() + 2000);
    await svc.reconcile();
    assert.equal(disk.ops.length, 1);
    const all = log.lines.join('\n');
    assert.ok(!all.includes('PRIVATE KEY'));
    assert.ok(!all.includes(svid.keyDer.toString('base64').slice(0, 40)));
    assert.ok(!all.includes('jwt-db'));
  });
});
