/** svidstore: the disk SVIDStore end to end with the built server and agent (see README.md). */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { JwtSvid, verifyX509SvidSync } from '@tessera/spiffe/svid';
import { WorkloadApiClient } from '@tessera/spiffe/workloadapi';
import { createJoinToken, TesseraAgent, waitFor } from '../../harness/agent.js';
import { TesseraServer, tempDir } from '../../harness/server.js';

const TD = TrustDomain.fromString('example.org');

interface StoredDoc {
  spiffeID: string;
  x509SVID: string;
  x509SVIDKey: string;
  bundle: string;
  federatedBundles?: Record<string, string>;
  jwtSVIDs?: Record<string, string>;
}

async function readDoc(path: string): Promise<StoredDoc | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as StoredDoc;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function leafOf(doc: StoredDoc): X509Certificate {
  const first = doc.x509SVID.split(/(?<=-----END CERTIFICATE-----\n)/)[0] as string;
  return new X509Certificate(first);
}

describe('svidstore: the disk store with the built server and agent', () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let agentId: string;
  let storeDir: string;
  let removeStoreDir: () => Promise<void>;
  let entryId: string;
  let firstSerial: string;
  const file = () => join(storeDir, 'fn.json');

  before(async () => {
    server = await TesseraServer.start();
    const t = await createJoinToken(server);
    agentId = t.agentId;
    const d = await tempDir('svidstore');
    storeDir = join(d.path, 'svids');
    removeStoreDir = d.remove;
    agent = await TesseraAgent.start({
      server,
      joinToken: t.token,
      config: { svid_stores: { disk: { directory: storeDir } } },
    });
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    await removeStoreDir?.();
  });

  it('01 stores the SVID of a --store-svid entry within seconds, as SPIRE writes it, with a JWT-SVID', async () => {
    const started = Date.now();
    const r = await server.cli([
      'entry',
      'create',
      '--parent-id',
      agentId,
      '--spiffe-id',
      'spiffe://example.org/fn',
      '--selector',
      'disk:name:fn.json',
      '--selector',
      'disk:jwtaudience:https://api.example.org',
      '--store-svid',
      '--x509-svid-ttl',
      '12',
      '--output',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    entryId = (JSON.parse(r.stdout) as { results: { entry: { id: string } }[] }).results[0]?.entry
      .id as string;
    assert.ok(entryId);
    const doc = await waitFor('the stored SVID file', () => readDoc(file()), 10_000, 50);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 5000, `stored after ${elapsed} ms`);
    assert.equal((await stat(file())).mode & 0o777, 0o600);
    assert.equal((await stat(storeDir)).mode & 0o777, 0o700);
    assert.deepEqual(Object.keys(doc), ['spiffeID', 'x509SVID', 'x509SVIDKey', 'bundle', 'jwtSVIDs']);
    assert.equal(doc.spiffeID, 'spiffe://example.org/fn');
    const bundle = X509Bundle.parse(TD, doc.bundle);
    const chain = doc.x509SVID
      .split(/(?<=-----END CERTIFICATE-----\n)/)
      .filter((p) => p.trim() !== '')
      .map((p) => new X509Certificate(p));
    assert.equal(verifyX509SvidSync(chain, bundle).id.toString(), 'spiffe://example.org/fn');
    assert.match(doc.x509SVIDKey, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok((chain[0] as X509Certificate).checkPrivateKey(createPrivateKey(doc.x509SVIDKey)));
    const token = doc.jwtSVIDs?.['https://api.example.org'];
    assert.ok(token);
    const jwt = JwtSvid.parseInsecure(token, ['https://api.example.org']);
    assert.equal(jwt.id.toString(), 'spiffe://example.org/fn');
    firstSerial = (chain[0] as X509Certificate).serialNumber;
  });

  it('02 rewrites the file when the SVID rotates', async () => {
    const rotated = await waitFor(
      'a rotated SVID in the store',
      async () => {
        const doc = await readDoc(file());
        return doc !== undefined && leafOf(doc).serialNumber !== firstSerial ? doc : undefined;
      },
      20_000,
      200,
    );
    const leaf = leafOf(rotated);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(rotated.x509SVIDKey)));
    assert.equal(
      verifyX509SvidSync([leaf], X509Bundle.parse(TD, rotated.bundle)).id.toString(),
      'spiffe://example.org/fn',
    );
    assert.match(agent.logs(), /SVID stored/);
  });

  it('03 never serves a store-SVID entry on the Workload API', async () => {
    const uid = process.getuid?.() ?? 0;
    for (const [path, extra] of [
      ['served', []],
      ['hidden', ['--store-svid']],
    ] as const) {
      const r = await server.cli([
        'entry',
        'create',
        '--parent-id',
        agentId,
        '--spiffe-id',
        `spiffe://example.org/${path}`,
        '--selector',
        `unix:uid:${uid}`,
        ...extra,
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    const client = new WorkloadApiClient({ address: agent.address });
    try {
      const ids = await waitFor(
        'the served entry on the Workload API',
        async () => {
          const list = (await client.fetchX509Svids()).map((s) => s.id.toString());
          return list.includes('spiffe://example.org/served') ? list : undefined;
        },
        10_000,
      );
      assert.deepEqual(ids, ['spiffe://example.org/served']);
      // Nor as a JWT-SVID: asking for the store-SVID entry's ID gets nothing.
      await assert.rejects(
        client.fetchJwtSvid({ audience: 'x', subject: SpiffeId.fromString('spiffe://example.org/hidden') }),
      );
      const jwt = await client.fetchJwtSvid({ audience: 'x' });
      assert.equal(jwt.id.toString(), 'spiffe://example.org/served');
    } finally {
      client.close();
    }
    await agent.waitForLog(/no SVID store \\?"unix\\?" is configured/, 10_000);
  });

  it('04 removes the file when the entry is deleted', async () => {
    const r = await server.cli(['entry', 'delete', '--entry-id', entryId]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(
      'the stored file to be removed',
      async () => ((await readDoc(file())) === undefined ? true : undefined),
      10_000,
      50,
    );
    await agent.waitForLog(/Stored SVID deleted/, 5000);
  });
});
