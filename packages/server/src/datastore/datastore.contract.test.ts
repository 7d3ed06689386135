/**
 * The datastore contract, run in one loop over SQLite, PostgreSQL and MariaDB. Every case opens a fresh,
 * empty database. PostgreSQL and MariaDB are started by scripts/db when installed; under CI=true a missing
 * engine fails the suite.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Datastore, ListEntriesRequest } from './datastore.js';
import { collectAll, openDatastore } from './index.js';
import { ENGINES, isUnavailable, startEngine, type TestEngine } from './test-support/engines.js';
import type { Bundle, MatchMode, NewRegistrationEntry, RegistrationEntry, Selector } from './types.js';

const T0 = Date.UTC(2030, 0, 1);
const bytes = (s: string) => new TextEncoder().encode(s);

function entry(over: Partial<NewRegistrationEntry> = {}): NewRegistrationEntry {
  return {
    spiffeId: 'spiffe://example.org/workload',
    parentId: 'spiffe://example.org/spire/agent/join_token/abc',
    selectors: [{ type: 'unix', value: 'uid:1000' }],
    x509SvidTtl: 3600,
    jwtSvidTtl: 300,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    storeSvid: false,
    hint: '',
    expiresAt: undefined,
    ...over,
  };
}

const sel = (s: string): Selector => {
  const i = s.indexOf(':');
  return { type: s.slice(0, i), value: s.slice(i + 1) };
};

for (const engineName of ENGINES) {
  describe(`datastore contract on ${engineName}`, () => {
    let engine: TestEngine | undefined;
    let skipReason: string | undefined;
    const open: Datastore[] = [];

    before(async () => {
      const e = await startEngine(engineName);
      if (isUnavailable(e)) {
        if (e.fail) throw new Error(`${engineName} is required here: ${e.reason}`);
        skipReason = e.reason;
      } else engine = e;
    });
    after(async () => {
      for (const ds of open.splice(0)) await ds.close().catch(() => {});
      await engine?.stop();
    });

    /** A fresh database; returns its connection string and an open datastore (with a fixed clock). */
    async function fresh(t: {
      skip: (m: string) => void;
    }): Promise<{ url: string; ds: Datastore } | undefined> {
      if (engine === undefined) {
        t.skip(skipReason ?? 'engine unavailable');
        return undefined;
      }
      const url = await engine.freshDatabase();
      const ds = await openDatastore(url, { now: () => T0 });
      open.push(ds);
      return { url, ds };
    }
    async function another(url: string): Promise<Datastore> {
      const ds = await openDatastore(url, { now: () => T0 });
      open.push(ds);
      return ds;
    }

    it('creates, fetches and round-trips every entry field', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await f.ds.createBundle({ trustDomain: 'partner.example', data: bytes('{}'), sequence: 1 });
      const created = await f.ds.createEntry(
        entry({
          id: 'entry-1',
          selectors: [sel('unix:uid:1000'), sel('k8s:ns:prod'), sel('k8s:label:ünïcode ✓')],
          dnsNames: ['a.example.org', 'b.example.org'],
          federatesWith: ['partner.example'],
          admin: true,
          downstream: true,
          storeSvid: true,
          hint: 'external',
          expiresAt: new Date(T0 + 86_400_000),
        }),
      );
      assert.equal(created.id, 'entry-1');
      assert.equal(created.revision, 0);
      assert.deepEqual(created.createdAt, new Date(T0));
      const fetched = await f.ds.fetchEntry('entry-1');
      assert.deepEqual(fetched, created);
      assert.equal(await f.ds.fetchEntry('nope'), undefined);
    });

    it('keeps SPIFFE IDs that differ only by case apart', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await f.ds.createEntry(entry({ spiffeId: 'spiffe://example.org/A' }));
      await f.ds.createEntry(entry({ spiffeId: 'spiffe://example.org/a' }));
      const r = await f.ds.listEntries({ bySpiffeId: 'spiffe://example.org/a' });
      assert.deepEqual(
        r.items.map((e) => e.spiffeId),
        ['spiffe://example.org/a'],
      );
    });

    it('refuses a duplicate entry (same SPIFFE ID, parent and selector set in another order)', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await f.ds.createEntry(entry({ selectors: [sel('a:1'), sel('b:2')] }));
      await assert.rejects(f.ds.createEntry(entry({ selectors: [sel('b:2'), sel('a:1')] })), {
        code: 'ERR_DATASTORE_CONFLICT',
        message: /^datastore: an entry with the same id, or the same spiffeId, parentId and selectors/,
      });
      await f.ds.createEntry(entry({ selectors: [sel('a:1')] }));
      assert.equal(await f.ds.countEntries(), 2);
    });

    it('creates a batch atomically: one conflict stores none of it', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const batch = [
        entry({ id: 'x1' }),
        entry({ id: 'x2', spiffeId: 'spiffe://example.org/b' }),
        entry({ id: 'x1', spiffeId: 'spiffe://example.org/c' }),
      ];
      await assert.rejects(f.ds.createEntries(batch), { code: 'ERR_DATASTORE_CONFLICT' });
      assert.equal(await f.ds.countEntries(), 0);
      assert.equal(await f.ds.currentSequence(), 0);
      const ok = await f.ds.createEntries(batch.slice(0, 2));
      assert.equal(ok.length, 2);
      assert.equal(await f.ds.countEntries(), 2);
    });

    const invalidEntries: { name: string; e: NewRegistrationEntry; message: RegExp }[] = [
      {
        name: 'no selectors',
        e: entry({ selectors: [] }),
        message: /^datastore: entry selectors must not be empty$/,
      },
      {
        name: 'a selector type with a colon',
        e: entry({ selectors: [{ type: 'a:b', value: 'c' }] }),
        message: /^datastore: entry selectors.type must not contain ":", got "a:b"$/,
      },
      {
        name: 'a duplicated selector',
        e: entry({ selectors: [sel('a:1'), sel('a:1')] }),
        message: /^datastore: entry selectors contains "a:1" twice$/,
      },
      {
        name: 'a non-ASCII SPIFFE ID',
        e: entry({ spiffeId: 'spiffe://example.org/é' }),
        message:
          /^datastore: entry spiffeId must be printable ASCII without spaces, got "spiffe:\/\/example.org\/é"$/,
      },
      {
        name: 'a hint over 1024 bytes',
        e: entry({ hint: 'é'.repeat(513) }),
        message: /^datastore: entry hint is longer than 1024 bytes$/,
      },
      {
        name: 'a negative TTL',
        e: entry({ x509SvidTtl: -1 }),
        message: /^datastore: entry x509SvidTtl must be an integer from 0 to 2147483647, got "-1"$/,
      },
      {
        name: 'an invalid expiry',
        e: entry({ expiresAt: new Date(Number.NaN) }),
        message: /^datastore: entry expiresAt must be a valid Date$/,
      },
    ];
    for (const tc of invalidEntries) {
      it(`refuses an entry with ${tc.name} and stores nothing`, async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        await assert.rejects(
          async () => f.ds.createEntries([entry({ spiffeId: 'spiffe://example.org/ok' }), tc.e]),
          { code: 'ERR_DATASTORE_INVALID', message: tc.message },
        );
        assert.equal(await f.ds.countEntries(), 0);
      });
    }

    it('requires a bundle for every federated trust domain', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await assert.rejects(f.ds.createEntry(entry({ federatesWith: ['missing.example'] })), {
        code: 'ERR_DATASTORE_NOT_FOUND',
        message: 'datastore: no bundle for federated trust domain "missing.example"',
      });
      assert.equal(await f.ds.countEntries(), 0);
    });

    it('filters entries by SPIFFE ID, parent ID and hint', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await f.ds.createEntry(
        entry({ id: 'a', spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/p1', hint: 'h1' }),
      );
      await f.ds.createEntry(entry({ id: 'b', spiffeId: 'spiffe://td/b', parentId: 'spiffe://td/p1' }));
      await f.ds.createEntry(
        entry({ id: 'c', spiffeId: 'spiffe://td/a', parentId: 'spiffe://td/p2', hint: 'h1' }),
      );
      const ids = async (req: ListEntriesRequest) => (await f.ds.listEntries(req)).items.map((e) => e.id);
      assert.deepEqual(await ids({ bySpiffeId: 'spiffe://td/a' }), ['a', 'c']);
      assert.deepEqual(await ids({ byParentId: 'spiffe://td/p1' }), ['a', 'b']);
      assert.deepEqual(await ids({ byHint: 'h1', byParentId: 'spiffe://td/p2' }), ['c']);
      assert.equal(await f.ds.countEntries({ bySpiffeId: 'spiffe://td/a' }), 2);
    });

    describe('selector match modes (as SPIRE)', () => {
      // e1 {a,b}  e2 {a}  e3 {a,b,c}  e4 {c}
      const data: Record<string, string[]> = {
        e1: ['t:a', 't:b'],
        e2: ['t:a'],
        e3: ['t:a', 't:b', 't:c'],
        e4: ['t:c'],
      };
      const cases: { mode: MatchMode; given: string[]; want: string[] }[] = [
        { mode: 'exact', given: ['t:b', 't:a'], want: ['e1'] },
        { mode: 'exact', given: ['t:a'], want: ['e2'] },
        { mode: 'subset', given: ['t:a', 't:b'], want: ['e1', 'e2'] },
        { mode: 'subset', given: ['t:a', 't:b', 't:c', 't:z'], want: ['e1', 'e2', 'e3', 'e4'] },
        { mode: 'subset', given: ['t:z'], want: [] },
        { mode: 'superset', given: ['t:a', 't:b'], want: ['e1', 'e3'] },
        { mode: 'superset', given: ['t:c'], want: ['e3', 'e4'] },
        { mode: 'any', given: ['t:b', 't:c'], want: ['e1', 'e3', 'e4'] },
        { mode: 'any', given: ['t:z'], want: [] },
        { mode: 'any', given: [], want: [] },
        { mode: 'superset', given: [], want: ['e1', 'e2', 'e3', 'e4'] },
      ];
      for (const tc of cases) {
        it(`${tc.mode} of {${tc.given.join(', ')}} finds ${tc.want.join(', ') || 'nothing'}`, async (t) => {
          const f = await fresh(t);
          if (f === undefined) return;
          for (const [id, s] of Object.entries(data)) {
            await f.ds.createEntry(entry({ id, spiffeId: `spiffe://td/${id}`, selectors: s.map(sel) }));
          }
          const req = { bySelectors: { selectors: tc.given.map(sel), match: tc.mode } };
          const got = (await f.ds.listEntries(req)).items.map((e) => e.id).sort();
          assert.deepEqual(got, tc.want);
          assert.equal(await f.ds.countEntries(req), tc.want.length);
        });
      }

      it('applies the same modes to federates-with, counting entries that federate with nothing', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        for (const td of ['one.example', 'two.example']) {
          await f.ds.createBundle({ trustDomain: td, data: bytes('{}'), sequence: 0 });
        }
        await f.ds.createEntry(entry({ id: 'none', spiffeId: 'spiffe://td/none' }));
        await f.ds.createEntry(
          entry({ id: 'one', spiffeId: 'spiffe://td/one', federatesWith: ['one.example'] }),
        );
        await f.ds.createEntry(
          entry({ id: 'both', spiffeId: 'spiffe://td/both', federatesWith: ['one.example', 'two.example'] }),
        );
        const ids = async (trustDomains: string[], match: MatchMode) =>
          (await f.ds.listEntries({ byFederatesWith: { trustDomains, match } })).items
            .map((e) => e.id)
            .sort();
        assert.deepEqual(await ids(['one.example'], 'subset'), ['none', 'one']);
        assert.deepEqual(await ids(['one.example'], 'exact'), ['one']);
        assert.deepEqual(await ids(['two.example'], 'superset'), ['both']);
        assert.deepEqual(await ids(['two.example', 'one.example'], 'any'), ['both', 'one']);
        assert.deepEqual(await ids([], 'exact'), ['none']);
      });
    });

    it('pages entries in a deterministic order without losing or repeating any', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const made = await f.ds.createEntries(
        Array.from({ length: 25 }, (_, i) => entry({ spiffeId: `spiffe://td/w${i}` })),
      );
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const p = await f.ds.listEntries({ pagination: { token, pageSize: 10 } });
        seen.push(...p.items.map((e) => e.id));
        token = p.nextPageToken;
        pages++;
      } while (token !== undefined);
      assert.equal(pages, 3);
      assert.deepEqual(
        seen,
        made.map((e) => e.id),
      );
      const exact = await f.ds.listEntries({ pagination: { pageSize: 25 } });
      assert.equal(exact.nextPageToken, undefined);
      assert.equal(exact.items.length, 25);
    });

    it('rejects an invalid page token and out-of-range page sizes, naming the field', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      for (const token of [
        'garbage!',
        'cDA',
        'cDAx',
        Buffer.from('p-1').toString('base64url'),
        'x'.repeat(30),
      ]) {
        await assert.rejects(f.ds.listEntries({ pagination: { token, pageSize: 10 } }), {
          code: 'ERR_DATASTORE_INVALID',
          message: /^datastore: pagination\.token is not a valid page token: "/,
        });
      }
      for (const pageSize of [0, -1, 1.5, 10_001, Number.NaN]) {
        await assert.rejects(f.ds.listEntries({ pagination: { pageSize } }), {
          name: 'RangeError',
          message: /^datastore: pagination\.pageSize must be an integer from 1 to 10000, got /,
        });
      }
      await assert.rejects(f.ds.listAttestedNodes({ pagination: { pageSize: 0 } }), RangeError);
    });

    it('updates only the masked fields, bumps the revision and reindexes selectors', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const e = await f.ds.createEntry(entry({ hint: 'old', selectors: [sel('t:old')] }));
      const changed: RegistrationEntry = {
        ...e,
        hint: 'new',
        selectors: [sel('t:new')],
        x509SvidTtl: 60,
        admin: true,
      };
      const u = await f.ds.updateEntry(changed, { hint: true, selectors: true });
      assert.equal(u.revision, 1);
      assert.equal(u.hint, 'new');
      assert.equal(u.x509SvidTtl, 3600);
      assert.equal(u.admin, false);
      assert.deepEqual(await f.ds.fetchEntry(e.id), u);
      const find = async (s: string) =>
        (await f.ds.listEntries({ bySelectors: { selectors: [sel(s)], match: 'any' } })).items.length;
      assert.equal(await find('t:old'), 0);
      assert.equal(await find('t:new'), 1);
      await assert.rejects(f.ds.updateEntry({ ...u, id: 'absent' }, { hint: true }), {
        code: 'ERR_DATASTORE_NOT_FOUND',
        message: 'datastore: entry "absent" not found',
      });
      await assert.rejects(f.ds.updateEntry({ ...u, selectors: [] }, { selectors: true }), {
        code: 'ERR_DATASTORE_INVALID',
      });
      const other = await f.ds.createEntry(entry({ selectors: [sel('t:other')] }));
      await assert.rejects(f.ds.updateEntry({ ...other, selectors: [sel('t:new')] }, { selectors: true }), {
        code: 'ERR_DATASTORE_CONFLICT',
      });
      assert.equal((await f.ds.fetchEntry(other.id))?.revision, 0);
    });

    it('deletes and prunes entries, with their selectors', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const keep = await f.ds.createEntry(
        entry({ spiffeId: 'spiffe://td/keep', expiresAt: new Date(T0 + 10_000) }),
      );
      await f.ds.createEntry(entry({ spiffeId: 'spiffe://td/old', expiresAt: new Date(T0 - 1) }));
      const del = await f.ds.createEntry(entry({ spiffeId: 'spiffe://td/del', selectors: [sel('t:del')] }));
      assert.deepEqual(await f.ds.deleteEntry(del.id), del);
      await assert.rejects(f.ds.deleteEntry(del.id), { code: 'ERR_DATASTORE_NOT_FOUND' });
      const any = { bySelectors: { selectors: [sel('t:del')], match: 'any' as const } };
      assert.equal(await f.ds.countEntries(any), 0);
      assert.equal(await f.ds.pruneEntries(new Date(T0)), 1);
      assert.deepEqual(
        (await f.ds.listEntries()).items.map((e) => e.id),
        [keep.id],
      );
    });

    it('records changes as events in commit order, visible to a second server', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const other = await another(f.url);
      const a = await f.ds.createEntry(entry({ spiffeId: 'spiffe://td/a' }));
      const b = await other.createEntry(entry({ spiffeId: 'spiffe://td/b' }));
      await f.ds.updateEntry({ ...a, hint: 'x' }, { hint: true });
      await other.deleteEntry(b.id);
      await f.ds.createAttestedNode({
        spiffeId: 'spiffe://td/agent',
        attestationType: 'join_token',
        certSerial: '1',
        certNotAfter: new Date(T0),
        newCertSerial: undefined,
        newCertNotAfter: undefined,
        banned: false,
        canReattest: false,
      });
      const events = await other.listEventsSince(0);
      assert.deepEqual(
        events.map((e) => [e.sequence, e.kind, e.action, e.id]),
        [
          [1, 'entry', 'created', a.id],
          [2, 'entry', 'created', b.id],
          [3, 'entry', 'updated', a.id],
          [4, 'entry', 'deleted', b.id],
          [5, 'node', 'created', 'spiffe://td/agent'],
        ],
      );
      assert.equal(await f.ds.currentSequence(), 5);
      assert.deepEqual(
        (await f.ds.listEventsSince(3, 1)).map((e) => e.sequence),
        [4],
      );
      assert.equal(await f.ds.pruneEvents(new Date(T0 + 1)), 5);
      await assert.rejects(f.ds.listEventsSince(-1), RangeError);
    });

    it('gives concurrent writers on two servers a dense, unique change sequence', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const other = await another(f.url);
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? f.ds : other).createEntry(entry({ spiffeId: `spiffe://td/c${i}` })),
        ),
      );
      const seqs = (await f.ds.listEventsSince(0)).map((e) => e.sequence);
      assert.deepEqual(
        seqs,
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
    });

    it('streams every entry for the in-memory index in batches', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await f.ds.createEntries(
        Array.from({ length: 23 }, (_, i) => entry({ spiffeId: `spiffe://td/s${i}` })),
      );
      const sizes: number[] = [];
      for await (const batch of f.ds.listAllEntriesForIndex(10)) sizes.push(batch.length);
      assert.deepEqual(sizes, [10, 10, 3]);
    });

    describe('attested nodes', () => {
      const node = (id: string, over: Record<string, unknown> = {}) => ({
        spiffeId: `spiffe://td/spire/agent/x509pop/${id}`,
        attestationType: 'x509pop',
        certSerial: `serial-${id}`,
        certNotAfter: new Date(T0 + 3_600_000),
        newCertSerial: undefined,
        newCertNotAfter: undefined,
        banned: false,
        canReattest: true,
        ...over,
      });

      it('creates, fetches, updates with a mask, bans and deletes a node with its selectors', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        const n = await f.ds.createAttestedNode({ ...node('a'), selectors: [sel('x509pop:subject:cn:a')] });
        assert.deepEqual(n.selectors, [sel('x509pop:subject:cn:a')]);
        assert.deepEqual(await f.ds.fetchAttestedNode(n.spiffeId), n);
        await assert.rejects(f.ds.createAttestedNode(node('a')), {
          code: 'ERR_DATASTORE_CONFLICT',
          message: `datastore: attested node "${n.spiffeId}" already exists`,
        });
        const renewed = await f.ds.updateAttestedNode(
          { ...n, newCertSerial: 'next', newCertNotAfter: new Date(T0 + 7_200_000), certSerial: 'ignored' },
          { newCertSerial: true, newCertNotAfter: true },
        );
        assert.equal(renewed.certSerial, 'serial-a');
        assert.equal(renewed.newCertSerial, 'next');
        const banned = await f.ds.updateAttestedNode(
          { ...renewed, banned: true, certSerial: '' },
          { banned: true, certSerial: true },
        );
        assert.deepEqual(await f.ds.fetchAttestedNode(n.spiffeId), banned);
        assert.equal(banned.banned, true);
        assert.deepEqual(await f.ds.deleteAttestedNode(n.spiffeId), banned);
        assert.equal(await f.ds.fetchAttestedNode(n.spiffeId), undefined);
        assert.deepEqual(await f.ds.getNodeSelectors(n.spiffeId), []);
        await assert.rejects(f.ds.deleteAttestedNode(n.spiffeId), { code: 'ERR_DATASTORE_NOT_FOUND' });
      });

      it('lists nodes by banned, attestation type, expiry and selectors, and prunes expired ones', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        await f.ds.createAttestedNode(node('a', { certNotAfter: new Date(T0 - 1) }));
        await f.ds.createAttestedNode(node('b', { banned: true, certNotAfter: new Date(T0 - 1) }));
        await f.ds.createAttestedNode(node('c', { attestationType: 'join_token' }));
        await f.ds.setNodeSelectors(node('a').spiffeId, [sel('region:eu'), sel('az:1')]);
        await f.ds.setNodeSelectors(node('c').spiffeId, [sel('region:eu')]);
        const ids = async (req: Parameters<Datastore['listAttestedNodes']>[0]) =>
          (await f.ds.listAttestedNodes(req)).items.map((n) => n.spiffeId.split('/').at(-1));
        assert.deepEqual(await ids({ byBanned: true }), ['b']);
        assert.deepEqual(await ids({ byAttestationType: 'x509pop' }), ['a', 'b']);
        assert.deepEqual(await ids({ byExpiresBefore: new Date(T0) }), ['a', 'b']);
        assert.deepEqual(await ids({ bySelectors: { selectors: [sel('region:eu')], match: 'superset' } }), [
          'a',
          'c',
        ]);
        assert.deepEqual(await ids({ bySelectors: { selectors: [sel('region:eu')], match: 'exact' } }), [
          'c',
        ]);
        assert.deepEqual(await ids({ bySelectors: { selectors: [sel('region:eu')], match: 'subset' } }), [
          'b',
          'c',
        ]);
        assert.equal(await f.ds.countAttestedNodes({ byBanned: false }), 2);
        const all = await collectAll((pagination) => f.ds.listAttestedNodes({ pagination }), 1);
        assert.equal(all.length, 3);
        assert.deepEqual(all[0]?.selectors, [sel('az:1'), sel('region:eu')]);
        // Banned nodes survive pruning so that the ban holds.
        assert.equal(await f.ds.pruneAttestedNodes(new Date(T0)), 1);
        assert.deepEqual(await ids({}), ['b', 'c']);
        assert.deepEqual(await f.ds.getNodeSelectors(node('a').spiffeId), []);
      });
    });

    describe('join tokens', () => {
      it('consumes a token once; an expired token is burned and refused', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        await f.ds.createJoinToken({ token: 'tok-1', expiresAt: new Date(T0 + 600_000) });
        await f.ds.createJoinToken({ token: 'tok-2', expiresAt: new Date(T0) });
        assert.deepEqual(await f.ds.fetchJoinToken('tok-1'), {
          token: 'tok-1',
          expiresAt: new Date(T0 + 600_000),
        });
        assert.deepEqual(await f.ds.consumeJoinToken('tok-1', new Date(T0)), {
          token: 'tok-1',
          expiresAt: new Date(T0 + 600_000),
        });
        assert.equal(await f.ds.consumeJoinToken('tok-1', new Date(T0)), undefined);
        assert.equal(await f.ds.consumeJoinToken('tok-2', new Date(T0)), undefined);
        assert.equal(await f.ds.fetchJoinToken('tok-2'), undefined);
        assert.equal(await f.ds.consumeJoinToken('never', new Date(T0)), undefined);
      });

      it('lets exactly one of 20 concurrent consumers on two servers win', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        const other = await another(f.url);
        for (let round = 0; round < 3; round++) {
          const token = `race-${round}`;
          await f.ds.createJoinToken({ token, expiresAt: new Date(T0 + 600_000) });
          const results: unknown[] = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              (i % 2 === 0 ? f.ds : other).consumeJoinToken(token, new Date(T0)),
            ),
          );
          assert.equal(results.filter((r) => r !== undefined).length, 1, `round ${round}`);
        }
      });

      it('refuses a duplicate token without quoting it, deletes and prunes tokens', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        await f.ds.createJoinToken({ token: 'secret-token', expiresAt: new Date(T0 - 1) });
        await assert.rejects(
          f.ds.createJoinToken({ token: 'secret-token', expiresAt: new Date(T0) }),
          (err: Error) => {
            assert.equal((err as { code?: string }).code, 'ERR_DATASTORE_CONFLICT');
            assert.equal(err.message, 'datastore: join token already exists');
            return true;
          },
        );
        await f.ds.createJoinToken({ token: 'other', expiresAt: new Date(T0 + 1) });
        assert.equal(await f.ds.pruneJoinTokens(new Date(T0)), 1);
        await f.ds.deleteJoinToken('other');
        await assert.rejects(f.ds.deleteJoinToken('other'), {
          code: 'ERR_DATASTORE_NOT_FOUND',
          message: 'datastore: join token not found',
        });
        await assert.rejects(async () => f.ds.createJoinToken({ token: '', expiresAt: new Date(T0) }), {
          code: 'ERR_DATASTORE_INVALID',
        });
      });
    });

    describe('bundles', () => {
      const b = (td: string, seq = 1, data = `{"td":"${td}","seq":${seq}}`): Bundle => ({
        trustDomain: td,
        data: bytes(data),
        sequence: seq,
      });

      it('creates, sets, updates, fetches, lists and counts bundles', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        assert.deepEqual(await f.ds.createBundle(b('one.example')), b('one.example'));
        await assert.rejects(f.ds.createBundle(b('one.example')), {
          code: 'ERR_DATASTORE_CONFLICT',
          message: 'datastore: bundle for "one.example" already exists',
        });
        await f.ds.setBundle(b('one.example', 2));
        await f.ds.setBundle(b('two.example', 1));
        assert.deepEqual(await f.ds.fetchBundle('one.example'), b('one.example', 2));
        await f.ds.updateBundle(b('two.example', 5));
        assert.deepEqual(await f.ds.fetchBundle('two.example'), b('two.example', 5));
        await assert.rejects(f.ds.updateBundle(b('three.example')), { code: 'ERR_DATASTORE_NOT_FOUND' });
        assert.equal(await f.ds.fetchBundle('three.example'), undefined);
        assert.equal(await f.ds.countBundles(), 2);
        const p1 = await f.ds.listBundles({ pagination: { pageSize: 1 } });
        assert.deepEqual(
          p1.items.map((x) => x.trustDomain),
          ['one.example'],
        );
        const p2 = await f.ds.listBundles({ pagination: { pageSize: 1, token: p1.nextPageToken } });
        assert.deepEqual(
          p2.items.map((x) => x.trustDomain),
          ['two.example'],
        );
        assert.equal(p2.nextPageToken, undefined);
      });

      it('serializes concurrent appends so that none is lost', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        const other = await another(f.url);
        const dec = new TextDecoder();
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? f.ds : other).appendBundle('fed.example', (cur) => {
              const keys = cur === undefined ? [] : (JSON.parse(dec.decode(cur.data)) as number[]);
              return {
                trustDomain: 'fed.example',
                data: bytes(JSON.stringify([...keys, i])),
                sequence: (cur?.sequence ?? 0) + 1,
              };
            }),
          ),
        );
        const got = await f.ds.fetchBundle('fed.example');
        assert.equal(got?.sequence, 20);
        assert.deepEqual(
          (JSON.parse(dec.decode(got?.data)) as number[]).sort((x, y) => x - y),
          Array.from({ length: 20 }, (_, i) => i),
        );
        await assert.rejects(
          f.ds.appendBundle('fed.example', () => b('elsewhere.example')),
          {
            code: 'ERR_DATASTORE_INVALID',
            message: /appended bundle is for "elsewhere.example", not "fed.example"/,
          },
        );
      });

      it('deletes a bundle in restrict, dissociate and delete modes', async (t) => {
        const f = await fresh(t);
        if (f === undefined) return;
        for (const td of ['r.example', 'd.example', 'x.example']) await f.ds.createBundle(b(td));
        const er = await f.ds.createEntry(entry({ spiffeId: 'spiffe://td/r', federatesWith: ['r.example'] }));
        const ed = await f.ds.createEntry(
          entry({ spiffeId: 'spiffe://td/d', federatesWith: ['d.example', 'r.example'] }),
        );
        const ex = await f.ds.createEntry(entry({ spiffeId: 'spiffe://td/x', federatesWith: ['x.example'] }));
        await assert.rejects(f.ds.deleteBundle('r.example'), {
          code: 'ERR_DATASTORE_CONFLICT',
          message: 'datastore: cannot delete bundle for "r.example": 2 entries federate with it',
        });
        await f.ds.deleteBundle('d.example', 'dissociate');
        const after = await f.ds.fetchEntry(ed.id);
        assert.deepEqual(after?.federatesWith, ['r.example']);
        assert.equal(after?.revision, 1);
        assert.equal(
          await f.ds.countEntries({ byFederatesWith: { trustDomains: ['d.example'], match: 'any' } }),
          0,
        );
        await f.ds.deleteBundle('x.example', 'delete');
        assert.equal(await f.ds.fetchEntry(ex.id), undefined);
        assert.ok(await f.ds.fetchEntry(er.id));
        await assert.rejects(f.ds.deleteBundle('x.example'), { code: 'ERR_DATASTORE_NOT_FOUND' });
      });
    });

    it('stores federation relationships and checks their profile', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const web = {
        trustDomain: 'web.example',
        bundleEndpointUrl: 'https://web.example/bundle',
        profile: 'https_web' as const,
        endpointSpiffeId: undefined,
      };
      await f.ds.createFederationRelationship(web);
      await assert.rejects(f.ds.createFederationRelationship(web), { code: 'ERR_DATASTORE_CONFLICT' });
      assert.deepEqual(await f.ds.fetchFederationRelationship('web.example'), web);
      const spiffe = await f.ds.updateFederationRelationship(
        { ...web, profile: 'https_spiffe', endpointSpiffeId: 'spiffe://web.example/bundle-server' },
        { profile: true, endpointSpiffeId: true },
      );
      assert.deepEqual(await f.ds.fetchFederationRelationship('web.example'), spiffe);
      await assert.rejects(
        async () =>
          f.ds.createFederationRelationship({ ...web, trustDomain: 'b.example', profile: 'https_spiffe' }),
        {
          code: 'ERR_DATASTORE_INVALID',
          message:
            'datastore: federation relationship endpointSpiffeId is required for profile "https_spiffe"',
        },
      );
      await assert.rejects(
        async () => f.ds.createFederationRelationship({ ...web, bundleEndpointUrl: 'http://x' }),
        {
          code: 'ERR_DATASTORE_INVALID',
        },
      );
      assert.equal((await f.ds.listFederationRelationships()).items.length, 1);
      await f.ds.deleteFederationRelationship('web.example');
      await assert.rejects(f.ds.deleteFederationRelationship('web.example'), {
        code: 'ERR_DATASTORE_NOT_FOUND',
      });
    });

    it('stores, finds and prunes CA journals', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      const j1 = await f.ds.createCaJournal({
        activeX509AuthorityId: 'x1',
        activeJwtAuthorityId: 'j1',
        entries: '{"x509":[]}',
        expiresAt: new Date(T0 - 1),
      });
      const j2 = await f.ds.createCaJournal({
        activeX509AuthorityId: 'x2',
        activeJwtAuthorityId: 'j2',
        entries: '{}',
        expiresAt: new Date(T0 + 1),
      });
      assert.ok(j2.id > j1.id);
      assert.deepEqual(await f.ds.fetchCaJournal(j1.id), j1);
      const u = await f.ds.updateCaJournal({ ...j2, activeX509AuthorityId: 'x3' });
      assert.deepEqual(await f.ds.fetchCaJournalByX509AuthorityId('x3'), u);
      assert.equal(await f.ds.fetchCaJournalByX509AuthorityId('x2'), undefined);
      await assert.rejects(f.ds.updateCaJournal({ ...j2, id: 999 }), { code: 'ERR_DATASTORE_NOT_FOUND' });
      assert.equal(await f.ds.pruneCaJournals(new Date(T0)), 1);
      assert.deepEqual(
        (await f.ds.listCaJournals()).items.map((j) => j.id),
        [j2.id],
      );
    });

    it('applies migrations once when several servers open a new database together', async (t) => {
      if (engine === undefined) return t.skip(skipReason ?? 'engine unavailable');
      const url = await engine.freshDatabase();
      const all = await Promise.all(Array.from({ length: 5 }, () => another(url)));
      await all[0]?.createEntry(entry());
      for (const ds of all) assert.equal(await ds.countEntries(), 1);
      const again = await another(url);
      assert.equal(await again.countEntries(), 1);
    });

    it('reports a closed datastore and an unreachable database without driver details or secrets', async (t) => {
      const f = await fresh(t);
      if (f === undefined) return;
      await f.ds.close();
      await assert.rejects(f.ds.countEntries(), {
        code: 'ERR_DATASTORE_FAILED',
        message: 'datastore: count entries failed: datastore is closed',
      });
      if (engineName === 'sqlite') {
        await assert.rejects(openDatastore('sqlite:/nonexistent-dir/x/y.db'), {
          code: 'ERR_DATASTORE_FAILED',
          message: /^datastore: cannot open sqlite file "\/nonexistent-dir\/x\/y.db" \(/,
        });
      } else {
        const scheme = engineName === 'postgres' ? 'postgres' : 'mysql';
        await assert.rejects(openDatastore(`${scheme}://user:hunter2@127.0.0.1:1/db`), (err: Error) => {
          assert.equal((err as { code?: string }).code, 'ERR_DATASTORE_FAILED');
          assert.match(
            err.message,
            new RegExp(`^datastore: cannot migrate "${scheme}://user@127.0.0.1:1/db" \\(ECONNREFUSED\\)$`),
          );
          assert.doesNotMatch(err.message, /hunter2/);
          return true;
        });
      }
    });
  });
}
