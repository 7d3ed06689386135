/**
 * cli-entry: registration entry CRUD round trips through the built CLI against the built server, and bad input
 * rejected with a clear error naming the field, exit 1, nothing stored, the server still up.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TesseraServer } from '../../harness/server.js';

describe('cli-entry: entry CRUD through the CLI', () => {
  let server: TesseraServer;
  let entryId = '';

  const count = async (): Promise<number> => {
    const r = await server.cli(['entry', 'count', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { count: number }).count;
  };

  before(async () => {
    server = await TesseraServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('01 creates an entry with kebab-case flags and prints it', async () => {
    const r = await server.cli([
      'entry',
      'create',
      '--spiffe-id',
      'spiffe://example.org/web',
      '--parent-id',
      'spiffe://example.org/agent',
      '--selector',
      'unix:uid:1000',
      '--selector',
      'unix:gid:1000',
      '--dns',
      'web.example.org',
      '--x509-svid-ttl',
      '15m',
      '--hint',
      'web',
      '--output',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as {
      results: { status: { code: number }; entry: { id: string; x509_svid_ttl: number } }[];
    };
    assert.equal(res.results[0]?.status.code, 0);
    entryId = res.results[0]?.entry.id ?? '';
    assert.notEqual(entryId, '');
    assert.equal(res.results[0]?.entry.x509_svid_ttl, 900);
  });

  it("02 creates an entry with SPIRE's flag spellings", async () => {
    const r = await server.cli([
      'entry',
      'create',
      '-spiffeID',
      'spiffe://example.org/db',
      '-parentID',
      'spiffe://example.org/agent',
      '-selector',
      'unix:uid:2000',
      '-x509SVIDTTL',
      '600',
      '-admin',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^SPIFFE ID {8}: spiffe:\/\/example.org\/db$/m);
    assert.match(r.stdout, /^Admin {12}: true$/m);
  });

  it('03 shows the entry by ID and by selector filter', async () => {
    const byId = await server.cli(['entry', 'show', '--entry-id', entryId]);
    assert.equal(byId.code, 0, byId.stderr);
    assert.match(byId.stdout, /^Found 1 entry$/m);
    assert.match(byId.stdout, /^SPIFFE ID {8}: spiffe:\/\/example.org\/web$/m);
    assert.match(byId.stdout, /^DNS name {9}: web.example.org$/m);
    const bySel = await server.cli(['entry', 'show', '--selector', 'unix:uid:2000', '--output', 'json']);
    const doc = JSON.parse(bySel.stdout) as { entries: { spiffe_id: { path: string } }[] };
    assert.deepEqual(
      doc.entries.map((e) => e.spiffe_id.path),
      ['/db'],
    );
  });

  it('04 updates only the given field', async () => {
    const r = await server.cli(['entry', 'update', '--entry-id', entryId, '--hint', 'web-v2']);
    assert.equal(r.code, 0, r.stderr);
    const shown = await server.cli(['entry', 'show', '--entry-id', entryId, '--output', 'json']);
    const e = (
      JSON.parse(shown.stdout) as { entries: { hint: string; dns_names: string[]; selectors: unknown[] }[] }
    ).entries[0];
    assert.equal(e?.hint, 'web-v2');
    assert.deepEqual(e?.dns_names, ['web.example.org']);
    assert.equal(e?.selectors.length, 2);
  });

  it("05 creates entries from a --data file in SPIRE's format", async () => {
    const file = join(server.dir, 'entries.json');
    await writeFile(
      file,
      JSON.stringify({
        entries: [
          {
            spiffe_id: { trust_domain: 'example.org', path: '/batch/1' },
            parent_id: { trust_domain: 'example.org', path: '/agent' },
            selectors: [{ type: 'unix', value: 'uid:3001' }],
            x509_svid_ttl: 200,
            jwt_svid_ttl: 30,
          },
          {
            spiffe_id: { trust_domain: 'example.org', path: '/batch/2' },
            parent_id: { trust_domain: 'example.org', path: '/agent' },
            selectors: [{ type: 'unix', value: 'uid:3002' }],
          },
        ],
      }),
    );
    const r = await server.cli(['entry', 'create', '--data', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await count(), 4);
  });

  const bad = [
    {
      name: 'an invalid SPIFFE ID',
      args: ['--spiffe-id', 'spiffe://example.org/a//b'],
      field: /--spiffe-id/,
    },
    {
      name: 'a selector without a colon',
      args: ['--selector', 'unixuid1000'],
      field: /--selector "unixuid1000": must be "type:value"/,
    },
    {
      name: 'a TTL out of range',
      args: ['--x509-svid-ttl', '3000000000'],
      field: /--x509-svid-ttl "3000000000": must be from 0 to 2147483647 seconds/,
    },
    {
      name: 'a hint over 1024 bytes',
      args: ['--hint', 'h'.repeat(1025)],
      field: /invalid hint: must be at most 1024 bytes/,
    },
    {
      name: 'a SPIFFE ID of another trust domain',
      args: ['--spiffe-id', 'spiffe://other.org/x'],
      field: /spiffe_id/,
    },
    { name: 'a DNS name that is not one', args: ['--dns', 'not a name'], field: /dns_names/ },
  ];
  let step = 6;
  for (const tc of bad) {
    it(`${String(step++).padStart(2, '0')} rejects ${tc.name}: exit 1, the field named, nothing stored, server up`, async () => {
      const base: Record<string, string> = {
        '--spiffe-id': 'spiffe://example.org/bad',
        '--parent-id': 'spiffe://example.org/agent',
        '--selector': 'unix:uid:9',
      };
      const flag = tc.args[0] as string;
      if (flag in base) delete base[flag];
      const args = [...Object.entries(base).flat(), ...tc.args];
      const r = await server.cli(['entry', 'create', ...args]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, tc.field);
      assert.equal(await count(), 4);
      const health = await server.cli(['healthcheck']);
      assert.equal(health.code, 0, health.stderr);
    });
  }

  it(`${String(step++).padStart(2, '0')} rejects a duplicate entry`, async () => {
    const r = await server.cli([
      'entry',
      'create',
      '-spiffeID',
      'spiffe://example.org/db',
      '-parentID',
      'spiffe://example.org/agent',
      '-selector',
      'unix:uid:2000',
      '-x509SVIDTTL',
      '600',
      '-admin',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /AlreadyExists/);
    assert.equal(await count(), 4);
  });

  it(`${String(step++).padStart(2, '0')} deletes the entry and counts what is left`, async () => {
    const r = await server.cli(['entry', 'delete', '--entry-id', entryId]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Deleted entry with ID: ${entryId}`));
    assert.equal(await count(), 3);
    const again = await server.cli(['entry', 'show', '--entry-id', entryId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /NotFound/);
  });
});
