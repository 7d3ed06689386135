import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JwtSvid } from '@tessera/spiffe/svid';
import { eventually, type Harness, startHarness, TEST_NOW } from '../endpoints/test-support/harness.js';
import { type CliIo, runCli } from './index.js';

const WEB = 'spiffe://example.org/web';

function capture(signal?: AbortSignal): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout(t: string) {
      io.out += t;
    },
    stderr(t: string) {
      io.err += t;
    },
    ...(signal !== undefined ? { signal } : {}),
  };
  return io;
}

describe('tessera-agent api against the real socket', () => {
  let h: Harness;
  let dir: string;

  before(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'tessera-cli-'));
    h.provider.setEntries([{ id: 'e-web', spiffeId: WEB, selectors: [h.selfSelectors[0]!], hint: 'web' }]);
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fetch x509 --write writes svid.0.pem, svid.0.key (0600) and bundle.0.pem', async () => {
    const io = capture();
    const out = join(dir, 'x509');
    const code = await runCli(['api', 'fetch', 'x509', '--socket', h.socketPath, '--write', out], io);
    assert.equal(code, 0, io.err);
    assert.match(io.out, /^Received 1 svid after [\d.]+ms\n/);
    assert.match(io.out, /SPIFFE ID:\t\tspiffe:\/\/example\.org\/web\n/);
    assert.match(io.out, /Hint:\t\t\tweb\n/);
    const key = await stat(join(out, 'svid.0.key'));
    assert.equal(key.mode & 0o777, 0o600);
    const cert = new X509Certificate(await readFile(join(out, 'svid.0.pem')));
    assert.equal(cert.subjectAltName, `URI:${WEB}`);
    const ca = new X509Certificate(await readFile(join(out, 'bundle.0.pem')));
    assert.ok(cert.checkIssued(ca));
    assert.match(await readFile(join(out, 'svid.0.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('fetch x509 --write replaces an existing world-readable key or a planted symlink without following it', async () => {
    const out = join(dir, 'x509-existing');
    await mkdir(out);
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'untouched');
    await writeFile(join(out, 'svid.0.key'), 'old key', { mode: 0o644 });
    await symlink(victim, join(out, 'svid.0.pem'));
    const io = capture();
    const code = await runCli(['api', 'fetch', 'x509', '--socket', h.socketPath, '--write', out], io);
    assert.equal(code, 0, io.err);
    const key = await lstat(join(out, 'svid.0.key'));
    assert.ok(key.isFile());
    assert.equal(key.mode & 0o777, 0o600);
    assert.match(await readFile(join(out, 'svid.0.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok((await lstat(join(out, 'svid.0.pem'))).isFile());
    assert.equal(await readFile(victim, 'utf8'), 'untouched');
    assert.deepEqual(
      (await readdir(out)).filter((n) => n.endsWith('.tmp')),
      [],
    );
  });

  it('fetch x509 --output json prints the SVIDs machine-readably', async () => {
    const io = capture();
    const code = await runCli(
      ['api', 'fetch', 'x509', '--socket', `unix://${h.socketPath}`, '--output', 'json'],
      io,
    );
    assert.equal(code, 0, io.err);
    const doc = JSON.parse(io.out) as { svids: { spiffe_id: string; x509_svid: string; hint: string }[] };
    assert.equal(doc.svids.length, 1);
    assert.equal(doc.svids[0]!.spiffe_id, WEB);
    assert.equal(doc.svids[0]!.hint, 'web');
    assert.deepEqual(Buffer.from(doc.svids[0]!.x509_svid, 'base64'), h.provider.svidOf('e-web')!.chainDer);
  });

  it('fetch jwt --audience prints a token that validates, and the JWT bundle', async () => {
    const io = capture();
    const code = await runCli(
      [
        'api',
        'fetch',
        'jwt',
        '--socket',
        h.socketPath,
        '--audience',
        'spiffe://example.org/db',
        '--output',
        'json',
      ],
      io,
    );
    assert.equal(code, 0, io.err);
    const doc = JSON.parse(io.out) as {
      svids: { spiffe_id: string; svid: string }[];
      bundles: Record<string, unknown>;
    };
    assert.equal(doc.svids[0]!.spiffe_id, WEB);
    const svid = await JwtSvid.parseAndValidate(
      doc.svids[0]!.svid,
      h.provider.bundles().own,
      ['spiffe://example.org/db'],
      {
        now: TEST_NOW,
      },
    );
    assert.equal(svid.id.toString(), WEB);
    assert.deepEqual(Object.keys(doc.bundles), ['spiffe://example.org']);
  });

  it('fetch jwt --spiffe-id for an identity not held fails with exit code 1', async () => {
    const io = capture();
    const code = await runCli(
      [
        'api',
        'fetch',
        'jwt',
        '--socket',
        h.socketPath,
        '--audience',
        'a',
        '--spiffe-id',
        'spiffe://example.org/other',
      ],
      io,
    );
    assert.equal(code, 1);
    assert.match(io.err, /no identity issued/);
  });

  const usage: { name: string; argv: string[]; err: RegExp }[] = [
    { name: 'fetch jwt without --audience', argv: ['api', 'fetch', 'jwt'], err: /--audience is required/ },
    { name: 'an unknown flag', argv: ['api', 'fetch', 'x509', '--nope'], err: /unknown flag "--nope"/ },
    { name: 'a bad --output', argv: ['api', 'fetch', 'x509', '--output', 'xml'], err: /--output must be/ },
    {
      name: 'a relative --socket',
      argv: ['api', 'fetch', 'x509', '--socket', 'x.sock'],
      err: /--socket must be/,
    },
    {
      name: 'an unknown command',
      argv: ['api', 'fetch', 'nothing'],
      err: /unknown command "api fetch nothing"/,
    },
    {
      name: 'validate jwt without --svid',
      argv: ['api', 'validate', 'jwt', '--audience', 'a'],
      err: /--svid is required/,
    },
    {
      name: 'a bad --spiffe-id',
      argv: ['api', 'fetch', 'jwt', '--audience', 'a', '--spiffe-id', 'x'],
      err: /--spiffe-id: /,
    },
  ];
  for (const tc of usage) {
    it(`exits 2 on ${tc.name}`, async () => {
      const io = capture();
      assert.equal(await runCli(tc.argv, io), 2);
      assert.match(io.err, tc.err);
    });
  }

  it('fetch bundles --output json prints X.509 and JWT bundles', async () => {
    const io = capture();
    const code = await runCli(['api', 'fetch', 'bundles', '--socket', h.socketPath, '--output', 'json'], io);
    assert.equal(code, 0, io.err);
    const doc = JSON.parse(io.out) as {
      x509_bundles: Record<string, string>;
      jwt_bundles: Record<string, { keys: unknown[] }>;
    };
    assert.match(doc.x509_bundles['spiffe://example.org']!, /BEGIN CERTIFICATE/);
    assert.equal(doc.jwt_bundles['spiffe://example.org']!.keys.length, 1);
  });

  it('validate jwt accepts a valid token and refuses a bad one', async () => {
    const token = h.provider.jwt.mint({ sub: WEB, aud: 'a' });
    const ok = capture();
    assert.equal(
      await runCli(
        ['api', 'validate', 'jwt', '--socket', h.socketPath, '--audience', 'a', '--svid', token],
        ok,
      ),
      0,
      ok.err,
    );
    assert.match(ok.out, /^SVID is valid\.\nSPIFFE ID : spiffe:\/\/example\.org\/web\n/);
    const bad = capture();
    const wrongAud = h.provider.jwt.mint({ sub: WEB, aud: 'b' });
    assert.equal(
      await runCli(
        ['api', 'validate', 'jwt', '--socket', h.socketPath, '--audience', 'a', '--svid', wrongAud],
        bad,
      ),
      1,
    );
    assert.match(bad.err, /^error: .*audience/);
  });

  it('watch prints every update until stopped', async () => {
    const ac = new AbortController();
    const io = capture(ac.signal);
    const running = runCli(['api', 'watch', '--socket', h.socketPath, '--output', 'json'], io);
    assert.ok(await eventually(() => io.out.split('\n').length >= 2));
    h.provider.rotate();
    assert.ok(await eventually(() => io.out.split('\n').filter((l) => l !== '').length >= 2));
    ac.abort();
    assert.equal(await running, 0);
    const lines = io.out.split('\n').filter((l) => l !== '');
    const serials = lines.map(
      (l) => (JSON.parse(l) as { svids: { x509_svid: string }[] }).svids[0]!.x509_svid,
    );
    assert.notEqual(serials[0], serials[1]);
  });

  for (const timeout of ['3000000s', '5000000s', '2147483648ms', '35792m', `${'9'.repeat(400)}s`]) {
    it(`refuses --timeout ${timeout.length > 20 ? 'of 400 digits' : timeout} (above 2^31-1 ms) as a usage error`, async () => {
      const io = capture();
      const code = await runCli(
        ['api', 'fetch', 'x509', '--socket', join(dir, 'missing.sock'), '--timeout', timeout],
        io,
      );
      assert.equal(code, 2, io.err);
      assert.match(io.err, /--timeout must be at most 2147483647ms/);
    });
  }

  it('accepts --timeout of exactly 2^31-1 ms', async () => {
    const io = capture();
    const code = await runCli(
      ['api', 'fetch', 'x509', '--socket', h.socketPath, '--timeout', '2147483647ms', '--output', 'json'],
      io,
    );
    assert.equal(code, 0, io.err);
  });

  it('fails with exit code 1 when no agent listens', async () => {
    const io = capture();
    const code = await runCli(
      ['api', 'fetch', 'x509', '--socket', join(dir, 'missing.sock'), '--timeout', '300ms'],
      io,
    );
    assert.equal(code, 1);
    assert.match(io.err, /^error: /);
  });

  it('works as the built tessera-agent binary in another process', async (t) => {
    const bin = fileURLToPath(new URL('../bin/tessera-agent.js', import.meta.url));
    if (!existsSync(bin)) {
      t.skip('bin not built');
      return;
    }
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, 'api', 'fetch', 'x509', '--socket', h.socketPath, '--output', 'json'],
        (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr }),
      );
    });
    assert.equal(out.code, 0, out.stderr);
    assert.equal((JSON.parse(out.stdout) as { svids: { spiffe_id: string }[] }).svids[0]!.spiffe_id, WEB);
  });
});
