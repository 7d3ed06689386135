import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { Datastore } from '../datastore/datastore.js';
import { openDatastore } from '../datastore/sql/open.js';
import type { NewRegistrationEntry } from '../datastore/types.js';
import { EntryIndex, type EntryIndexDatastore } from './entry-index.js';

const td = TrustDomain.fromString('example.org');
const AGENT = 'spiffe://example.org/spire/agent/join_token/a';
const SERVER = 'spiffe://example.org/spire/server';

function entry(
  spiffeId: string,
  parentId: string,
  selectors = [{ type: 'unix', value: 'uid:1' }],
): NewRegistrationEntry {
  return {
    spiffeId,
    parentId,
    selectors,
    x509SvidTtl: 0,
    jwtSvidTtl: 0,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    storeSvid: false,
    hint: '',
    expiresAt: undefined,
  };
}

describe('EntryIndex', () => {
  let dir: string;
  let ds: Datastore;
  let index: EntryIndex;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-index-'));
    ds = await openDatastore(join(dir, 'ds.sqlite3'));
    await ds.createAttestedNode({
      spiffeId: AGENT,
      attestationType: 'join_token',
      certSerial: '1',
      certNotAfter: new Date(Date.now() + 3_600_000),
      newCertSerial: undefined,
      newCertNotAfter: undefined,
      banned: false,
      canReattest: false,
    });
    await ds.setNodeSelectors(AGENT, [
      { type: 'k8s', value: 'cluster:a' },
      { type: 'k8s', value: 'zone:1' },
    ]);
    index = await EntryIndex.create({ datastore: ds, trustDomain: td });
  });

  after(async () => {
    await index.close();
    await ds.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('authorizes direct children, children of matching aliases, and descendants, but not other aliases', async () => {
    const direct = await ds.createEntry(entry('spiffe://example.org/direct', AGENT));
    const nested = await ds.createEntry(entry('spiffe://example.org/nested', 'spiffe://example.org/direct'));
    await ds.createEntry(
      entry('spiffe://example.org/alias-ok', SERVER, [{ type: 'k8s', value: 'cluster:a' }]),
    );
    await ds.createEntry(
      entry('spiffe://example.org/alias-no', SERVER, [
        { type: 'k8s', value: 'cluster:a' },
        { type: 'k8s', value: 'zone:2' },
      ]),
    );
    const viaOk = await ds.createEntry(entry('spiffe://example.org/via-ok', 'spiffe://example.org/alias-ok'));
    await ds.createEntry(entry('spiffe://example.org/via-no', 'spiffe://example.org/alias-no'));
    await ds.createEntry(
      entry('spiffe://example.org/elsewhere', 'spiffe://example.org/spire/agent/join_token/b'),
    );
    await index.refresh();
    const got = index
      .authorizedEntries(AGENT)
      .map((e) => e.id)
      .sort();
    assert.deepEqual(got, [direct.id, nested.id, viaOk.id].sort());
  });

  it('records when it last caught up with the datastore, and keeps that time while the datastore fails', async () => {
    let t = new Date('2030-01-01T00:00:00Z');
    const failing = { failing: false };
    const wrapped: EntryIndexDatastore = {
      listAllEntriesForIndex: () => ds.listAllEntriesForIndex(),
      currentSequence: () => ds.currentSequence(),
      listEventsSince: (after, limit) =>
        failing.failing ? Promise.reject(new Error('datastore down')) : ds.listEventsSince(after, limit),
      fetchEntry: (id) => ds.fetchEntry(id),
      fetchAttestedNode: (id) => ds.fetchAttestedNode(id),
      listAttestedNodes: (req) => ds.listAttestedNodes(req),
    };
    const ix = await EntryIndex.create({ datastore: wrapped, trustDomain: td, now: () => t });
    assert.deepEqual(ix.lastRefreshAt, new Date('2030-01-01T00:00:00Z'));
    t = new Date('2030-01-01T00:00:10Z');
    await ix.refresh();
    assert.deepEqual(ix.lastRefreshAt, new Date('2030-01-01T00:00:10Z'));
    failing.failing = true;
    t = new Date('2030-01-01T00:00:20Z');
    await assert.rejects(ix.refresh(), /datastore down/);
    assert.deepEqual(ix.lastRefreshAt, new Date('2030-01-01T00:00:10Z'));
    await ix.close();
  });

  it('leaves out expired entries', async () => {
    const past = await ds.createEntry({
      ...entry('spiffe://example.org/expired', AGENT),
      expiresAt: new Date(Date.now() - 1000),
    });
    await index.refresh();
    assert.ok(!index.authorizedEntries(AGENT).some((e) => e.id === past.id));
  });

  it('sees writes made through another index sharing the datastore', async () => {
    const other = await EntryIndex.create({ datastore: ds, trustDomain: td, pollIntervalMs: 10 });
    other.start();
    const changed = new Promise<void>((resolve) => other.onChange(() => resolve()));
    const created = await ds.createEntry(entry('spiffe://example.org/from-elsewhere', AGENT));
    // The index's poll timer is unref'd, so a (ref'd) deadline keeps the event loop alive while the change is
    // awaited, and bounds the wait.
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([
      changed,
      new Promise<never>((_, reject) => {
        deadline = setTimeout(
          () => reject(new Error('the other index did not see the write within 10 s')),
          10_000,
        );
      }),
    ]);
    clearTimeout(deadline);
    assert.ok(other.authorizedEntries(AGENT).some((e) => e.id === created.id));
    await ds.deleteEntry(created.id);
    await other.refresh();
    assert.ok(!other.authorizedEntries(AGENT).some((e) => e.id === created.id));
    await other.close();
  });

  it('answers one agent with 1,000 entries in a few milliseconds', async () => {
    const agent = 'spiffe://example.org/spire/agent/join_token/big';
    await ds.createEntries(
      Array.from({ length: 1000 }, (_, i) => entry(`spiffe://example.org/w/${i}`, agent)),
    );
    await index.refresh();
    const start = process.hrtime.bigint();
    const got = index.authorizedEntries(agent);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    assert.equal(got.length, 1000);
    assert.ok(ms < 50, `took ${ms} ms`);
  });
});
