import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { Entry, GrpcStatusError } from '@tessera/common/api';
import { TestCa } from '@tessera/testing';
import type { AdminClients } from './context.js';
import { runCli } from './index.js';

type Handler = (request: unknown) => unknown;
interface Call {
  readonly service: string;
  readonly method: string;
  readonly request: unknown;
}

/** Admin clients whose methods are the given handlers; every call is recorded, unknown calls fail the test. */
function fakeClients(handlers: Record<string, Record<string, Handler>>, calls: Call[]): () => AdminClients {
  return () => {
    const services: Record<string, unknown> = { close: () => {} };
    for (const service of ['entry', 'agent', 'bundle', 'svid', 'trustDomain', 'localAuthority']) {
      services[service] = new Proxy(
        {},
        {
          get(_t, method: string) {
            return async (request: unknown) => {
              calls.push({ service, method, request });
              const h = handlers[service]?.[method];
              if (h === undefined) throw new Error(`unexpected call ${service}.${method}`);
              return h(request);
            };
          },
        },
      );
    }
    return services as unknown as AdminClients;
  };
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly calls: readonly Call[];
  readonly factoryUsed: boolean;
}

let cwd: string;

/** The request of call `i` (fails the test when there was no such call). */
function request<T>(r: Run, i: number): T {
  const call = r.calls[i];
  assert.ok(call, `expected call #${i}`);
  return call.request as T;
}

async function cli(argv: string[], handlers: Record<string, Record<string, Handler>> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const calls: Call[] = [];
  let factoryUsed = false;
  const make = fakeClients(handlers, calls);
  const code = await runCli(argv, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd },
    clients: () => {
      factoryUsed = true;
      return make();
    },
    now: () => new Date('2030-01-01T00:00:00Z'),
  });
  return { code, stdout, stderr, calls, factoryUsed };
}

const created = (req: unknown) => ({
  results: (req as { entries: Entry[] }).entries.map((e) => ({
    status: { code: 0, message: 'OK' },
    entry: { ...e, id: 'id-1' },
  })),
});

before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'tessera-cli-'));
});
after(async () => {
  await rm(cwd, { recursive: true, force: true });
});

describe('entry create', () => {
  it("builds the entry from SPIRE's flag spellings", async () => {
    const r = await cli(
      [
        'entry',
        'create',
        '-spiffeID',
        'spiffe://example.org/w',
        '-parentID',
        'spiffe://example.org/agent',
        '-selector',
        'unix:uid:1000',
        '-selector',
        'unix:gid:0',
        '-x509SVIDTTL',
        '1h',
        '-jwtSVIDTTL',
        '300',
        '-dns',
        'w.example.org',
        '-federatesWith',
        'spiffe://other.org',
        '-admin',
        '-storeSVID',
        '-hint',
        'h',
        '-entryExpiry',
        '2031-01-01T00:00:00Z',
        '-entryID',
        'my-id',
      ],
      { entry: { batchCreateEntry: created } },
    );
    assert.equal(r.code, 0, r.stderr);
    const req = r.calls[0]?.request as { entries: Entry[] };
    assert.deepEqual(req.entries, [
      Entry.fromPartial({
        id: 'my-id',
        spiffeId: { trustDomain: 'example.org', path: '/w' },
        parentId: { trustDomain: 'example.org', path: '/agent' },
        selectors: [
          { type: 'unix', value: 'uid:1000' },
          { type: 'unix', value: 'gid:0' },
        ],
        x509SvidTtl: 3600,
        jwtSvidTtl: 300,
        dnsNames: ['w.example.org'],
        federatesWith: ['other.org'],
        admin: true,
        storeSvid: true,
        hint: 'h',
        expiresAt: 1924992000n,
      }),
    ]);
    assert.match(r.stdout, /^Entry ID {9}: id-1$/m);
    assert.match(r.stdout, /^Selector {9}: unix:uid:1000$/m);
  });

  it('makes --node entries children of the server', async () => {
    const r = await cli(
      [
        'entry',
        'create',
        '--spiffe-id',
        'spiffe://example.org/nodes',
        '--node',
        '--selector',
        'x509pop:subject:cn:a',
      ],
      { entry: { batchCreateEntry: created } },
    );
    assert.equal(r.code, 0, r.stderr);
    const e = request<{ entries: Entry[] }>(r, 0).entries[0];
    assert.deepEqual(e?.parentId, { trustDomain: 'example.org', path: '/spire/server' });
  });

  const bad = [
    {
      name: 'an invalid SPIFFE ID',
      args: ['--spiffe-id', 'spiffe://example.org/a/../b'],
      msg: /invalid --spiffe-id "spiffe:\/\/example.org\/a\/..\/b": spiffeid: path cannot contain dot segments/,
    },
    {
      name: 'a SPIFFE ID without scheme',
      args: ['--spiffe-id', 'example.org/w'],
      msg: /invalid --spiffe-id "example.org\/w"/,
    },
    {
      name: 'a selector without a colon',
      args: ['--selector', 'unixuid'],
      msg: /invalid --selector "unixuid": must be "type:value"/,
    },
    {
      name: 'a selector with an empty value',
      args: ['--selector', 'unix:'],
      msg: /invalid --selector "unix:"/,
    },
    {
      name: 'a TTL out of range',
      args: ['--x509-svid-ttl', '2147483648'],
      msg: /invalid --x509-svid-ttl "2147483648": must be from 0 to 2147483647 seconds/,
    },
    { name: 'a negative TTL', args: ['--jwt-svid-ttl', '-5'], msg: /invalid --jwt-svid-ttl "-5"/ },
    { name: 'a malformed TTL', args: ['--jwt-svid-ttl', '1 hour'], msg: /invalid --jwt-svid-ttl "1 hour"/ },
    {
      name: 'a malformed expiry',
      args: ['--entry-expiry', 'tomorrow'],
      msg: /invalid --entry-expiry "tomorrow"/,
    },
    { name: 'an unknown flag', args: ['--colour', 'red'], msg: /unknown flag "--colour"/ },
    {
      name: 'both --parent-id and --node',
      args: ['--node'],
      msg: /--parent-id and --node cannot be used together/,
    },
    { name: 'a bad --output', args: ['--output', 'yaml'], msg: /invalid --output "yaml"/ },
    { name: 'an unexpected argument', args: ['stray'], msg: /unexpected argument "stray"/ },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name} before contacting the server`, async () => {
      const base = [
        '--spiffe-id',
        'spiffe://example.org/w',
        '--parent-id',
        'spiffe://example.org/a',
        '--selector',
        'unix:uid:1',
      ];
      // Later flags override nothing: drop the base flag the case replaces.
      const replaced = new Set(tc.args.filter((a) => a.startsWith('--')));
      const args: string[] = [];
      for (let i = 0; i < base.length; i += 2) {
        if (!replaced.has(base[i] as string)) args.push(base[i] as string, base[i + 1] as string);
      }
      const r = await cli(['entry', 'create', ...args, ...tc.args], { entry: { batchCreateEntry: created } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, tc.msg);
      assert.match(r.stderr, /^Error: entry create: /);
      assert.equal(r.factoryUsed, false);
      assert.equal(r.stdout, '');
    });
  }

  const missing = [
    { args: ['--parent-id', 'spiffe://e.org/a', '--selector', 'a:b'], msg: /--spiffe-id is required/ },
    {
      args: ['--spiffe-id', 'spiffe://e.org/w', '--selector', 'a:b'],
      msg: /--parent-id or --node is required/,
    },
    {
      args: ['--spiffe-id', 'spiffe://e.org/w', '--parent-id', 'spiffe://e.org/a'],
      msg: /at least one --selector is required/,
    },
  ];
  for (const tc of missing) {
    it(`requires its mandatory flags (${tc.msg.source})`, async () => {
      const r = await cli(['entry', 'create', ...tc.args]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, tc.msg);
      assert.equal(r.factoryUsed, false);
    });
  }

  it('reports a rejected entry with the server status and exits 1', async () => {
    const r = await cli(
      [
        'entry',
        'create',
        '--spiffe-id',
        'spiffe://example.org/w',
        '--parent-id',
        'spiffe://example.org/a',
        '--selector',
        'a:b',
        '--hint',
        'x'.repeat(1025),
      ],
      {
        entry: {
          batchCreateEntry: () => ({
            results: [
              {
                status: {
                  code: status.INVALID_ARGUMENT,
                  message: 'invalid hint: must be at most 1024 bytes',
                },
              },
            ],
          }),
        },
      },
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /Failed to create the following entry \(code: InvalidArgument, msg: "invalid hint: must be at most 1024 bytes"\)/,
    );
  });

  it("reads entries in SPIRE's --data format (objects or strings for IDs)", async () => {
    const file = join(cwd, 'entries.json');
    await writeFile(
      file,
      JSON.stringify({
        entries: [
          {
            spiffe_id: { trust_domain: 'example.org', path: '/a' },
            parent_id: { trust_domain: 'example.org', path: '/agent' },
            selectors: [{ type: 'unix', value: 'uid:1' }],
            x509_svid_ttl: 200,
            jwtSvidTtl: 30,
            admin: true,
            dns_names: ['a.example.org'],
          },
          {
            spiffe_id: 'spiffe://example.org/b',
            parent_id: 'spiffe://example.org/agent',
            selectors: ['unix:uid:2'],
          },
        ],
      }),
    );
    const r = await cli(['entry', 'create', '--data', 'entries.json'], {
      entry: { batchCreateEntry: created },
    });
    assert.equal(r.code, 0, r.stderr);
    const req = r.calls[0]?.request as { entries: Entry[] };
    assert.equal(req.entries.length, 2);
    assert.deepEqual(req.entries[0]?.spiffeId, { trustDomain: 'example.org', path: '/a' });
    assert.equal(req.entries[0]?.x509SvidTtl, 200);
    assert.equal(req.entries[0]?.jwtSvidTtl, 30);
    assert.equal(req.entries[0]?.admin, true);
    assert.deepEqual(req.entries[1]?.selectors, [{ type: 'unix', value: 'uid:2' }]);
  });

  const badData = [
    {
      name: 'an unknown entry field',
      doc: { entries: [{ spife_id: 'x' }] },
      msg: /--data: entries\[0\]\.spife_id is not a known entry field/,
    },
    {
      name: 'a selector type with a colon',
      doc: { entries: [{ selectors: [{ type: 'a:b', value: 'c' }] }] },
      msg: /entries\[0\]\.selectors\[0\]\.type must not contain ":"/,
    },
    {
      name: 'a TTL that is not an integer',
      doc: { entries: [{ x509_svid_ttl: 1.5 }] },
      msg: /entries\[0\]\.x509_svid_ttl must be an integer from 0 to 2147483647/,
    },
    {
      name: 'a boolean given as a string',
      doc: { entries: [{ admin: 'false' }] },
      msg: /entries\[0\]\.admin must be true or false/,
    },
    { name: 'a missing entries list', doc: { entry: [] }, msg: /"entry" is not a known key/ },
  ];
  for (const tc of badData) {
    it(`rejects a --data file with ${tc.name}`, async () => {
      const file = join(cwd, 'bad.json');
      await writeFile(file, JSON.stringify(tc.doc));
      const r = await cli(['entry', 'create', '--data', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, tc.msg);
      assert.equal(r.factoryUsed, false);
    });
  }

  it('rejects --data combined with field flags', async () => {
    const r = await cli(['entry', 'create', '--data', 'x.json', '--admin']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--data cannot be combined with --admin/);
  });

  it('prints the response as snake_case JSON with --output json', async () => {
    const r = await cli(
      [
        'entry',
        'create',
        '--spiffe-id',
        'spiffe://example.org/w',
        '--parent-id',
        'spiffe://example.org/a',
        '--selector',
        'a:b',
        '--output',
        'json',
      ],
      { entry: { batchCreateEntry: created } },
    );
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { results: { entry: Record<string, unknown> }[] };
    const e = doc.results[0]?.entry;
    assert.deepEqual(e?.spiffe_id, { trust_domain: 'example.org', path: '/w' });
    assert.equal(e?.x509_svid_ttl, 0);
    assert.equal(e?.expires_at, '0');
  });
});

describe('entry update', () => {
  it('updates only the fields given (input mask)', async () => {
    const r = await cli(['entry', 'update', '--entry-id', 'e1', '--hint', 'new', '--admin=false'], {
      entry: {
        batchUpdateEntry: (req) => ({
          results: [{ status: { code: 0, message: 'OK' }, entry: (req as { entries: Entry[] }).entries[0] }],
        }),
      },
    });
    assert.equal(r.code, 0, r.stderr);
    const req = r.calls[0]?.request as { entries: Entry[]; inputMask: Record<string, boolean> };
    assert.equal(req.entries[0]?.id, 'e1');
    assert.equal(req.entries[0]?.hint, 'new');
    const masked = Object.entries(req.inputMask)
      .filter(([, v]) => v)
      .map(([k]) => k)
      .sort();
    assert.deepEqual(masked, ['admin', 'hint']);
  });

  it('needs --entry-id and at least one field', async () => {
    const a = await cli(['entry', 'update', '--hint', 'x']);
    assert.match(a.stderr, /--entry-id is required/);
    const b = await cli(['entry', 'update', '--entry-id', 'e1']);
    assert.match(b.stderr, /nothing to update/);
    assert.equal(a.factoryUsed || b.factoryUsed, false);
  });
});

describe('entry show, count and delete', () => {
  it('pages through ListEntries and applies filters', async () => {
    const pages = [
      {
        entries: [Entry.fromPartial({ id: 'a', spiffeId: { trustDomain: 'e.org', path: '/a' } })],
        nextPageToken: 't1',
      },
      {
        entries: [Entry.fromPartial({ id: 'b', spiffeId: { trustDomain: 'e.org', path: '/b' } })],
        nextPageToken: '',
      },
    ];
    let i = 0;
    const r = await cli(['entry', 'show', '--selector', 'unix:uid:1', '--match', 'any', '--hint', 'h'], {
      entry: { listEntries: () => pages[i++] },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Found 2 entries$/m);
    const first = r.calls[0]?.request as { filter: { bySelectors: { match: number }; byHint: string } };
    assert.equal(first.filter.bySelectors.match, 3);
    assert.equal(first.filter.byHint, 'h');
    assert.equal(request<{ pageToken: string }>(r, 1).pageToken, 't1');
  });

  it('reports a server error with its code and exits 1', async () => {
    const r = await cli(['entry', 'show', '--entry-id', 'nope'], {
      entry: {
        getEntry: () => {
          throw new GrpcStatusError(status.NOT_FOUND, 'entry not found');
        },
      },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: entry show: entry not found \(code: NotFound\)$/m);
  });

  it('counts entries', async () => {
    const r = await cli(['entry', 'count', '-parentID', 'spiffe://e.org/a'], {
      entry: { countEntries: () => ({ count: 3 }) },
    });
    assert.equal(r.stdout, '3 registration entries\n');
  });

  it('deletes several entries and fails when one is missing', async () => {
    const r = await cli(['entry', 'delete', '--entry-id', 'a', '-entryID', 'b'], {
      entry: {
        batchDeleteEntry: () => ({
          results: [
            { id: 'a', status: { code: 0, message: 'OK' } },
            { id: 'b', status: { code: status.NOT_FOUND, message: 'entry not found' } },
          ],
        }),
      },
    });
    assert.equal(r.code, 1);
    assert.deepEqual(request<{ ids: string[] }>(r, 0).ids, ['a', 'b']);
    assert.match(r.stdout, /Deleted entry with ID: a/);
    assert.match(r.stderr, /Failed to delete entry with ID b \(code: NotFound/);
  });
});

describe('other commands', () => {
  it('generates a join token with an alias and TTL', async () => {
    const r = await cli(['token', 'generate', '-spiffeID', 'spiffe://e.org/host', '-ttl', '10m'], {
      agent: { createJoinToken: () => ({ value: 'tok', expiresAt: 0n }) },
    });
    assert.equal(r.stdout, 'Token: tok\n');
    assert.deepEqual(r.calls[0]?.request, {
      ttl: 600,
      token: '',
      agentId: { trustDomain: 'e.org', path: '/host' },
    });
  });

  it('requires an audience to mint a JWT-SVID', async () => {
    const r = await cli(['jwt', 'mint', '--spiffe-id', 'spiffe://e.org/w']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /at least one --audience is required/);
  });

  it('bans an agent by SPIFFE ID', async () => {
    const r = await cli(['agent', 'ban', '--spiffe-id', 'spiffe://e.org/spire/agent/join_token/t'], {
      agent: { banAgent: () => ({}) },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls[0]?.request, {
      id: { trustDomain: 'e.org', path: '/spire/agent/join_token/t' },
    });
  });

  it('purges agents expired for longer than --expired-for, relative to the clock', async () => {
    const r = await cli(['agent', 'purge', '--expired-for', '1h', '--dry-run'], {
      agent: { listAgents: () => ({ agents: [], nextPageToken: '' }) },
    });
    assert.equal(r.code, 0, r.stderr);
    const req = r.calls[0]?.request as { filter: { byExpiresBefore: string } };
    assert.equal(req.filter.byExpiresBefore, '2029-12-31T23:00:00.000Z');
  });

  it('sets a federated bundle from a PEM file', async () => {
    const ca = TestCa.create({ trustDomain: 'other.org' });
    const file = join(cwd, 'other.pem');
    await writeFile(file, ca.rootPem());
    const r = await cli(['bundle', 'set', '--id', 'spiffe://other.org', '--path', file], {
      bundle: { batchSetFederatedBundle: () => ({ results: [{ status: { code: 0, message: 'OK' } }] }) },
    });
    assert.equal(r.code, 0, r.stderr);
    const req = r.calls[0]?.request as {
      bundle: { trustDomain: string; x509Authorities: { asn1: Buffer }[] }[];
    };
    assert.equal(req.bundle[0]?.trustDomain, 'other.org');
    assert.equal(req.bundle[0]?.x509Authorities.length, 1);
  });

  it('rejects a bundle file that holds no certificate', async () => {
    const file = join(cwd, 'empty.pem');
    await writeFile(file, 'not a bundle');
    const r = await cli(['bundle', 'set', '--id', 'other.org', '--path', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not a valid pem bundle/);
    assert.equal(r.factoryUsed, false);
  });

  it('writes svid.pem, key.pem (0600) and bundle.pem with x509 mint --write', async () => {
    const ca = TestCa.create({ trustDomain: 'e.org' });
    const dir = join(cwd, 'minted');
    const r = await cli(['x509', 'mint', '--spiffe-id', 'spiffe://e.org/m', '--write', dir], {
      svid: {
        mintX509Svid: () => {
          const leaf = ca.issueX509Svid({ spiffeId: 'spiffe://e.org/m' });
          return { svid: { certChain: leaf.certificates.map((c) => c.raw), expiresAt: 0n } };
        },
      },
      bundle: { getBundle: () => ({ trustDomain: 'e.org', x509Authorities: [{ asn1: ca.rootDer() }] }) },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(((await stat(join(dir, 'key.pem'))).mode & 0o777).toString(8), '600');
    assert.match(await readFile(join(dir, 'svid.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    assert.match(await readFile(join(dir, 'bundle.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    const csr = request<{ csr: Buffer }>(r, 0).csr;
    assert.ok(csr.includes(Buffer.from('spiffe://e.org/m')), 'the CSR carries the SPIFFE ID');
  });

  it('validate lists every problem of a bad configuration', async () => {
    const file = join(cwd, 'bad.yaml');
    await writeFile(file, 'trust_domain: "Not A TD"\nbind_port: 70000\nbogus_key: 1\n');
    const r = await cli(['validate', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /trust_domain/);
    assert.match(r.stderr, /bind_port/);
    assert.match(r.stderr, /bogus_key/);
  });

  it('answers an unknown command with usage and exit 1', async () => {
    const r = await cli(['entry', 'frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /"entry" needs one of: create, update, delete, show, count/);
  });

  it('prints help for a command', async () => {
    const r = await cli(['entry', 'create', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--spiffe-id ID .*\(also -spiffeID\)/);
    assert.match(r.stdout, /--socket PATH/);
  });
});
