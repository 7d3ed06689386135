import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import {
  BatchCreateEntryRequest,
  BatchCreateFederatedBundleRequest,
  BatchDeleteFederatedBundleRequest,
  BatchDeleteFederatedBundleRequest_Mode,
  BatchSetFederatedBundleRequest,
  BatchUpdateFederatedBundleRequest,
  type Bundle,
  BundleService,
  CountBundlesRequest,
  EntryService,
  GetEntryRequest,
  GetFederatedBundleRequest,
  ListFederatedBundlesRequest,
} from '@tessera/common/api';
import { TestCa } from '@tessera/testing';
import { type LiveServer, startLiveServer } from '../testing/live-server.js';
import { runCli } from './index.js';

let live: LiveServer;

before(async () => {
  live = await startLiveServer();
});
after(async () => {
  await live.close();
});

/** Runs the CLI against the live server's admin socket. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...argv, '--socket', live.socketPath], {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: live.dir },
  });
  return { code, stdout, stderr };
}

async function cliJson<T>(argv: string[]): Promise<T> {
  const r = await cli([...argv, '--output', 'json']);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

interface JsonAuthority {
  readonly authority_id?: string;
  readonly expires_at?: string;
}
interface JsonState {
  readonly active?: JsonAuthority;
  readonly prepared?: JsonAuthority;
  readonly old?: JsonAuthority;
}

describe('localauthority through the CLI against a running server', () => {
  for (const kind of ['x509', 'jwt'] as const) {
    it(`rotates the ${kind} authority by hand: show, prepare, activate, taint, revoke`, async () => {
      const first = live.server.ca.showAuthorities(kind).active;
      assert.ok(first);
      const shown = await cliJson<JsonState>(['localauthority', kind, 'show']);
      assert.equal(shown.active?.authority_id, first.authorityId);
      assert.equal(shown.prepared?.authority_id ?? '', '');

      const pretty = await cli(['localauthority', kind, 'show']);
      assert.equal(pretty.code, 0, pretty.stderr);
      assert.match(pretty.stdout, new RegExp(`Authority ID: ${first.authorityId}`));

      const prepared = await cliJson<JsonAuthority>(['localauthority', kind, 'prepare']);
      const second = prepared.authority_id ?? '';
      assert.notEqual(second, '');
      assert.notEqual(second, first.authorityId);
      assert.equal(live.server.ca.showAuthorities(kind).prepared?.authorityId, second);

      // The active authority cannot be tainted, and an unknown ID cannot be activated.
      const taintActive = await cli(['localauthority', kind, 'taint', '--authority-id', first.authorityId]);
      assert.notEqual(taintActive.code, 0);
      assert.match(taintActive.stderr, /FailedPrecondition|InvalidArgument|old/i);
      const unknown = await cli(['localauthority', kind, 'activate', '-authorityID', 'feedface']);
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /feedface|prepared/);

      const activated = await cli(['localauthority', kind, 'activate', '--authority-id', second]);
      assert.equal(activated.code, 0, activated.stderr);
      assert.match(activated.stdout, new RegExp(`Activated .* authority:\\n  Authority ID: ${second}`));
      const afterActivate = live.server.ca.showAuthorities(kind);
      assert.equal(afterActivate.active?.authorityId, second);
      assert.deepEqual(
        afterActivate.old.map((a) => a.authorityId),
        [first.authorityId],
      );

      const tainted = await cliJson<JsonAuthority>([
        'localauthority',
        kind,
        'taint',
        '--authority-id',
        first.authorityId,
      ]);
      assert.equal(tainted.authority_id, first.authorityId);
      assert.ok(live.server.ca.taintedAuthorities()[kind].includes(first.authorityId));

      const revoked = await cli(['localauthority', kind, 'revoke', '--authority-id', first.authorityId]);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.match(
        revoked.stdout,
        new RegExp(`Revoked .* authority:\\n  Authority ID: ${first.authorityId}`),
      );
      const end = await cliJson<JsonState>(['localauthority', kind, 'show']);
      assert.equal(end.active?.authority_id, second);
      assert.equal(end.old?.authority_id ?? '', '');
      const bundle = live.server.ca.bundle();
      if (kind === 'x509') {
        assert.equal(bundle.x509Authorities().length, 1);
        assert.equal(
          bundle.x509Authorities()[0]?.fingerprint256,
          live.server.ca.activeX509Authority().fingerprint256,
        );
      } else {
        assert.deepEqual([...bundle.jwtAuthorities().keys()], [second]);
      }
    });
  }

  it('requires --authority-id for activate, taint and revoke', async () => {
    for (const verb of ['activate', 'taint', 'revoke']) {
      const r = await cli(['localauthority', 'x509', verb]);
      assert.equal(r.code, 1, `${verb}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^Error: localauthority x509 ${verb}: --authority-id is required`));
    }
  });
});

function apiBundle(ca: TestCa, td: string): Bundle {
  return {
    trustDomain: td,
    x509Authorities: [{ asn1: Buffer.from(ca.rootDer()), tainted: false, hint: '' }],
    jwtAuthorities: [],
    refreshHint: 0n,
    sequenceNumber: 0n,
  };
}

function rootsOf(b: Bundle | undefined): string[] {
  return (b?.x509Authorities ?? []).map((a) => new X509Certificate(a.asn1).fingerprint256);
}

describe('federated bundles through the Bundle API', () => {
  const caA = TestCa.create({ trustDomain: 'a.org' });
  const caA2 = TestCa.create({ trustDomain: 'a.org' });
  const caB = TestCa.create({ trustDomain: 'b.org' });
  const caC = TestCa.create({ trustDomain: 'c.org' });
  const fp = (ca: TestCa) => new X509Certificate(ca.rootDer()).fingerprint256;

  it('creates, reads, counts, updates, sets and deletes federated bundles in batches', async () => {
    const bundle = live.admin(BundleService);
    const countBefore = (await bundle.countBundles(CountBundlesRequest.fromPartial({}))).count;

    const created = await bundle.batchCreateFederatedBundle(
      BatchCreateFederatedBundleRequest.fromPartial({
        bundle: [
          apiBundle(caA, 'a.org'),
          apiBundle(caB, 'b.org'),
          apiBundle(caA, 'a.org'),
          apiBundle(caA, 'example.org'),
        ],
      }),
    );
    assert.deepEqual(
      created.results.map((r) => r.status?.code),
      [status.OK, status.OK, status.ALREADY_EXISTS, status.INVALID_ARGUMENT],
    );
    assert.match(created.results[3]?.status?.message ?? '', /trust_domain.*own trust domain/);
    assert.equal((await bundle.countBundles(CountBundlesRequest.fromPartial({}))).count, countBefore + 2);

    const listed = await bundle.listFederatedBundles(ListFederatedBundlesRequest.fromPartial({}));
    assert.deepEqual(listed.bundles.map((b) => b.trustDomain).sort(), ['a.org', 'b.org']);
    // Pages of one: the server's own bundle is left out after paging (as SPIRE), so a page may be short.
    const paged: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await bundle.listFederatedBundles(
        ListFederatedBundlesRequest.fromPartial({ pageSize: 1, pageToken }),
      );
      assert.ok(page.bundles.length <= 1);
      paged.push(...page.bundles.map((b) => b.trustDomain));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '' && pages < 10);
    assert.equal(pageToken, '');
    assert.deepEqual(paged.sort(), ['a.org', 'b.org']);
    const a = await bundle.getFederatedBundle(
      GetFederatedBundleRequest.fromPartial({ trustDomain: 'a.org' }),
    );
    assert.deepEqual(rootsOf(a), [fp(caA)]);

    const updated = await bundle.batchUpdateFederatedBundle(
      BatchUpdateFederatedBundleRequest.fromPartial({
        bundle: [apiBundle(caA2, 'a.org'), apiBundle(caC, 'c.org')],
      }),
    );
    assert.deepEqual(
      updated.results.map((r) => r.status?.code),
      [status.OK, status.NOT_FOUND],
    );
    assert.deepEqual(
      rootsOf(
        await bundle.getFederatedBundle(GetFederatedBundleRequest.fromPartial({ trustDomain: 'a.org' })),
      ),
      [fp(caA2)],
    );

    const set = await bundle.batchSetFederatedBundle(
      BatchSetFederatedBundleRequest.fromPartial({
        bundle: [apiBundle(caC, 'c.org'), apiBundle(caA, 'a.org')],
      }),
    );
    assert.deepEqual(
      set.results.map((r) => r.status?.code),
      [status.OK, status.OK],
    );
    assert.deepEqual(
      rootsOf(
        await bundle.getFederatedBundle(GetFederatedBundleRequest.fromPartial({ trustDomain: 'c.org' })),
      ),
      [fp(caC)],
    );
    assert.deepEqual(
      rootsOf(
        await bundle.getFederatedBundle(GetFederatedBundleRequest.fromPartial({ trustDomain: 'a.org' })),
      ),
      [fp(caA)],
    );

    // An entry federating with b.org: RESTRICT refuses, DISSOCIATE deletes the bundle and unlinks the entry.
    const entry = live.admin(EntryService);
    const e = await entry.batchCreateEntry(
      BatchCreateEntryRequest.fromPartial({
        entries: [
          {
            spiffeId: { trustDomain: 'example.org', path: '/federated' },
            parentId: { trustDomain: 'example.org', path: '/spire/agent/x' },
            selectors: [{ type: 'unix', value: 'uid:1' }],
            federatesWith: ['b.org'],
          },
        ],
      }),
    );
    const entryId = e.results[0]?.entry?.id ?? '';
    assert.notEqual(entryId, '');
    const restricted = await bundle.batchDeleteFederatedBundle(
      BatchDeleteFederatedBundleRequest.fromPartial({
        trustDomains: ['b.org'],
        mode: BatchDeleteFederatedBundleRequest_Mode.RESTRICT,
      }),
    );
    assert.equal(restricted.results[0]?.status?.code, status.FAILED_PRECONDITION);
    const dissociated = await bundle.batchDeleteFederatedBundle(
      BatchDeleteFederatedBundleRequest.fromPartial({
        trustDomains: ['b.org', 'missing.org', 'not a td'],
        mode: BatchDeleteFederatedBundleRequest_Mode.DISSOCIATE,
      }),
    );
    assert.deepEqual(
      dissociated.results.map((r) => [r.trustDomain, r.status?.code]),
      [
        ['b.org', status.OK],
        ['missing.org', status.NOT_FOUND],
        ['not a td', status.INVALID_ARGUMENT],
      ],
    );
    assert.deepEqual((await entry.getEntry(GetEntryRequest.fromPartial({ id: entryId }))).federatesWith, []);
    await assert.rejects(
      bundle.getFederatedBundle(GetFederatedBundleRequest.fromPartial({ trustDomain: 'b.org' })),
      { code: status.NOT_FOUND },
    );
    const del = await bundle.batchDeleteFederatedBundle(
      BatchDeleteFederatedBundleRequest.fromPartial({ trustDomains: ['a.org', 'c.org'] }),
    );
    assert.deepEqual(
      del.results.map((r) => r.status?.code),
      [status.OK, status.OK],
    );
    assert.equal((await bundle.countBundles(CountBundlesRequest.fromPartial({}))).count, countBefore);
  });

  it('sets, lists, counts and deletes a federated bundle with `bundle set|list|count|delete`', async () => {
    const ca = TestCa.create({ trustDomain: 'd.org' });
    const pemPath = join(live.dir, 'd.pem');
    await writeFile(pemPath, new X509Certificate(ca.rootDer()).toString());
    const countBefore = await cliJson<{ count: number }>(['bundle', 'count']);

    const set = await cli(['bundle', 'set', '--id', 'spiffe://d.org', '--path', 'd.pem']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'Bundle set successfully\n');
    assert.deepEqual(
      rootsOf(
        await live
          .admin(BundleService)
          .getFederatedBundle(GetFederatedBundleRequest.fromPartial({ trustDomain: 'd.org' })),
      ),
      [fp(ca)],
    );
    assert.equal((await cliJson<{ count: number }>(['bundle', 'count'])).count, countBefore.count + 1);

    const listed = await cliJson<{ bundles: { trust_domain: string }[] }>(['bundle', 'list']);
    assert.deepEqual(
      listed.bundles.map((b) => b.trust_domain),
      ['d.org'],
    );
    const one = await cli(['bundle', 'list', '--id', 'd.org']);
    assert.equal(one.code, 0, one.stderr);
    assert.ok(new X509Certificate(one.stdout).fingerprint256 === fp(ca));
    const spiffe = await cli(['bundle', 'list', '--id', 'd.org', '--format', 'spiffe']);
    assert.equal(spiffe.code, 0, spiffe.stderr);
    assert.equal((JSON.parse(spiffe.stdout) as { keys: unknown[] }).keys.length, 1);

    const own = await cli(['bundle', 'set', '--id', 'example.org', '--path', 'd.pem']);
    assert.equal(own.code, 1);
    assert.match(own.stderr, /own trust domain/);

    const deleted = await cli(['bundle', 'delete', '--id', 'd.org']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, 'Bundle deleted successfully\n');
    const again = await cli(['bundle', 'delete', '--id', 'd.org']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Failed to delete the bundle/);
    const empty = await cli(['bundle', 'list']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, 'No federated bundles found\n');
  });
});
