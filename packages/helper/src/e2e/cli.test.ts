import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeWorkloadApi, TestCa, TestJwtAuthority } from '@tessera/testing';
import { fakeSvid, HELPER_BIN, runHelper, spawnProcess, waitFor } from './support.js';

const root = TestCa.create({ trustDomain: 'example.org' });
const inter = root.createIntermediate();
const foreignRoot = TestCa.create({ trustDomain: 'other.org' });
const jwtAuthority = new TestJwtAuthority('example.org', { now: new Date() });

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function pemCerts(path: string): X509Certificate[] {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map(
    (m) => new X509Certificate(m[0]),
  );
}

let dir: string;
let api: FakeWorkloadApi;
const tokens: string[] = [];

function setSvids(): void {
  api.setX509Svids(
    [
      fakeSvid(inter, { spiffeId: 'spiffe://example.org/a', hint: 'a' }),
      fakeSvid(inter, { spiffeId: 'spiffe://example.org/b', hint: 'b' }),
    ],
    { 'spiffe://other.org': foreignRoot.rootDer() },
  );
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-helper-cli-'));
  api = await FakeWorkloadApi.start();
  setSvids();
  api.setJwtBundles({ 'spiffe://example.org': jwtAuthority.jwtBundle().marshal() });
  api.setJwtSvidHandler((req) =>
    ['a', 'b'].map((h) => {
      const token = jwtAuthority.mint({
        sub: `spiffe://example.org/${h}`,
        aud: req.audience,
        exp: new Date(Date.now() + 600_000),
        iat: new Date(),
      });
      tokens.push(token);
      return { spiffeId: `spiffe://example.org/${h}`, token, hint: h };
    }),
  );
});
after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function newDir(): string {
  const d = join(dir, `case-${++n}`);
  return d;
}

function writeConf(d: string, lines: string): string {
  const conf = join(dir, `case-${n}.conf`);
  writeFileSync(conf, `agent_address = "${api.address}"\ncert_dir = "${d}"\n${lines}`);
  return conf;
}

describe('one-shot mode (daemon_mode = false)', () => {
  it('writes chain, key and bundle with default modes and exits 0', async () => {
    const d = newDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    const conf = writeConf(
      d,
      'svid_file_name = "svid.pem"\nsvid_key_file_name = "key.pem"\nsvid_bundle_file_name = "bundle.pem"\ndaemon_mode = false\n',
    );
    const r = await runHelper(['--config', conf]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(join(d, 'svid.pem')), 0o644);
    assert.equal(mode(join(d, 'key.pem')), 0o600);
    assert.equal(mode(join(d, 'bundle.pem')), 0o644);
    const chain = pemCerts(join(d, 'svid.pem'));
    assert.equal(chain.length, 2, 'leaf and intermediate');
    assert.equal(chain[0]!.subjectAltName, 'URI:spiffe://example.org/a');
    assert.ok(chain[1]!.checkIssued(chain[1]!) === false && chain[0]!.checkIssued(chain[1]!));
    assert.ok(
      chain[0]!.checkPrivateKey(
        (await import('node:crypto')).createPrivateKey(readFileSync(join(d, 'key.pem'))),
      ),
    );
    const bundle = pemCerts(join(d, 'bundle.pem'));
    assert.deepEqual(
      bundle.map((c) => c.fingerprint256),
      [root.certificate.fingerprint256],
    );
    assert.deepEqual(readdirSync(d).sort(), ['bundle.pem', 'key.pem', 'svid.pem'], 'no temporary files left');
    assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
  });

  it('honours hint, modes, intermediates in the bundle, federated domains and JWT outputs', async () => {
    const d = newDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    const conf = writeConf(
      d,
      `svid_file_name = "svid.pem"
svid_key_file_name = "key.pem"
svid_bundle_file_name = "bundle.pem"
cert_file_mode = 0640
key_file_mode = 0400
jwt_svid_file_mode = 0440
add_intermediates_to_bundle = true
include_federated_domains = true
hint = "b"
jwt_bundle_file_name = "jwt_bundle.json"
jwt_svids = [{ jwt_audience = "db", jwt_svid_file_name = "db.jwt", jwt_extra_audiences = ["db2"] }]
daemon_mode = false
`,
    );
    const r = await runHelper(['--config', conf]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(join(d, 'svid.pem')), 0o640);
    assert.equal(mode(join(d, 'bundle.pem')), 0o640);
    assert.equal(mode(join(d, 'key.pem')), 0o400);
    assert.equal(mode(join(d, 'db.jwt')), 0o440);
    assert.equal(mode(join(d, 'jwt_bundle.json')), 0o600);
    const chain = pemCerts(join(d, 'svid.pem'));
    assert.equal(chain.length, 1, 'leaf only');
    assert.equal(chain[0]!.subjectAltName, 'URI:spiffe://example.org/b');
    assert.deepEqual(
      pemCerts(join(d, 'bundle.pem')).map((c) => c.fingerprint256),
      [
        root.certificate.fingerprint256,
        inter.certificate.fingerprint256,
        foreignRoot.certificate.fingerprint256,
      ],
    );
    const token = readFileSync(join(d, 'db.jwt'), 'utf8');
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(claims.sub, 'spiffe://example.org/b');
    assert.deepEqual(claims.aud, ['db', 'db2']);
    const jwtBundles = JSON.parse(readFileSync(join(d, 'jwt_bundle.json'), 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(jwtBundles), ['example.org']);
    const jwks = JSON.parse(Buffer.from(jwtBundles['example.org']!, 'base64').toString()) as {
      keys: { kid: string }[];
    };
    assert.deepEqual(
      jwks.keys.map((k) => k.kid).sort(),
      jwtAuthority
        .keys()
        .map((k) => k.kid)
        .sort(),
    );
    for (const t of tokens) assert.ok(!r.stderr.includes(t), 'a token was logged');
    assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
  });

  it('exits 1 when the hinted SVID is missing', async () => {
    const d = newDir();
    const conf = writeConf(
      d,
      'svid_file_name = "s"\nsvid_key_file_name = "k"\nsvid_bundle_file_name = "b"\nhint = "zzz"\ndaemon_mode = false\n',
    );
    const r = await runHelper(['--config', conf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no SVID with hint \\"zzz\\" among 2 received/);
  });

  it('exits 1 when the Workload API is unreachable', async () => {
    const d = newDir();
    const conf = join(dir, 'unreachable.yaml');
    writeFileSync(
      conf,
      `agent_address: unix://${join(dir, 'nope.sock')}\ncert_dir: ${d}\njwt_bundle_file_name: b.json\ndaemon_mode: false\n`,
    );
    const r = await runHelper(['--config', conf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /workloadapi: FetchJWTBundles failed with UNAVAILABLE/);
    assert.equal(existsSync(join(d, 'b.json')), false);
  });

  it('refuses a bad configuration with every issue, and validate reports them as JSON', async () => {
    const conf = join(dir, 'bad.conf');
    writeFileSync(conf, 'bogus = 1\nsvid_file_name = "a"\nkey_file_mode = 0999\n');
    const r = await runHelper(['--config', conf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /helper config: line 3, column 17: invalid number "0999"/);
    writeFileSync(conf, 'bogus = 1\nsvid_file_name = "a"\n');
    const v = await runHelper(['validate', '--config', conf, '--output', 'json']);
    assert.equal(v.code, 1);
    const out = JSON.parse(v.stdout) as { valid: boolean; code: string; issues: { path: string }[] };
    assert.equal(out.valid, false);
    assert.equal(out.code, 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      out.issues.map((i) => i.path),
      ['bogus', 'svid_file_name'],
    );
    const usage = await runHelper(['--nope']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown flag "--nope"/);
  });
});

describe('exec mode', () => {
  it('starts the program with its credentials in place and returns its exit code', async () => {
    const script = `
const fs = require('node:fs');
for (const v of ['TESSERA_SVID_FILE', 'TESSERA_SVID_KEY_FILE', 'TESSERA_SVID_BUNDLE_FILE']) {
  if (!fs.readFileSync(process.env[v], 'utf8').includes('-----BEGIN')) process.exit(3);
}
console.log('files-ok ' + (fs.statSync(process.env.TESSERA_SVID_KEY_FILE).mode & 0o777).toString(8) + ' ' + process.env.TESSERA_CERT_DIR);
process.exit(7);`;
    const r = await runHelper(['exec', '--', process.execPath, '-e', script], {
      env: { SPIFFE_ENDPOINT_SOCKET: api.address },
    });
    assert.equal(r.code, 7, r.stderr);
    const m = /files-ok 600 (\S+)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(existsSync(m[1]!), false, 'the temporary directory is removed');
  });

  it('forwards SIGHUP and SIGTERM, signals renewals, and exits with the program', async () => {
    const d = newDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    const conf = writeConf(
      d,
      'svid_file_name = "s.pem"\nsvid_key_file_name = "k.pem"\nsvid_bundle_file_name = "b.pem"\nrenew_signal = "SIGUSR2"\n',
    );
    const script = `
process.on('SIGHUP', () => console.log('got-hup'));
process.on('SIGUSR2', () => console.log('got-renew'));
process.on('SIGTERM', () => { console.log('got-term'); process.exit(42); });
console.log('ready');
setInterval(() => {}, 1000);`;
    const p = spawnProcess(process.execPath, [
      HELPER_BIN,
      'exec',
      '--config',
      conf,
      '--',
      process.execPath,
      '-e',
      script,
    ]);
    try {
      await waitFor('the program', () => (p.stdout().includes('ready') ? true : undefined));
      p.signal('SIGHUP');
      await waitFor('SIGHUP forwarded', () => (p.stdout().includes('got-hup') ? true : undefined));
      setSvids();
      await waitFor('renew signal', () => (p.stdout().includes('got-renew') ? true : undefined));
      p.signal('SIGTERM');
      const exit = await p.exited;
      assert.equal(exit.code, 42, p.stderr());
      assert.match(p.stdout(), /got-term/);
    } finally {
      await p.kill();
    }
  });
});

describe('daemon mode', () => {
  it('restarts cmd on rotation when no renew_signal is set, and serves /live and /ready', async () => {
    const d = newDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    const pids = join(dir, 'pids.txt');
    const script = `require('node:fs').appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n'); setInterval(() => {}, 1000);`;
    const conf = writeConf(
      d,
      `svid_file_name = "s.pem"
svid_key_file_name = "k.pem"
svid_bundle_file_name = "b.pem"
cmd = ${JSON.stringify(process.execPath)}
cmd_args = ["-e", ${JSON.stringify(script)}]
health_checks {
  listener_enabled = true
  bind_port = 0
  bind_address = "127.0.0.1"
}
`,
    );
    const p = spawnProcess(process.execPath, [HELPER_BIN, '--config', conf]);
    try {
      const port = await waitFor('health listener', () => {
        const m = /"msg":"Health listener started".*"port":(\d+)/.exec(p.stderr());
        return m ? Number(m[1]) : undefined;
      });
      await waitFor('first start', () => (existsSync(pids) ? true : undefined));
      const ready = await waitFor('ready', async () => {
        const res = await fetch(`http://127.0.0.1:${port}/ready`);
        return res.status === 200 ? res : undefined;
      });
      assert.deepEqual(await ready.json(), { live: true, ready: true, pending: [] });
      assert.equal((await fetch(`http://127.0.0.1:${port}/live`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
      setSvids();
      const lines = await waitFor('restart', () => {
        const l = readFileSync(pids, 'utf8').trim().split('\n');
        return l.length >= 2 ? l : undefined;
      });
      assert.notEqual(lines[0], lines[1]);
      assert.throws(
        () => process.kill(Number(lines[0]), 0),
        { code: 'ESRCH' },
        'the old process was stopped',
      );
      p.signal('SIGTERM');
      assert.equal((await p.exited).code, 0, p.stderr());
      assert.throws(
        () => process.kill(Number(lines.at(-1)), 0),
        { code: 'ESRCH' },
        'cmd is stopped with the helper',
      );
    } finally {
      await p.kill();
    }
  });

  it('signals the process named by pid_file_name after each update', async () => {
    const d = newDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(d);
    const pidFile = join(dir, 'target.pid');
    const target = spawnProcess(process.execPath, [
      '-e',
      `require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); process.on('SIGUSR1', () => console.log('usr1')); setInterval(() => {}, 1000);`,
    ]);
    await waitFor('pid file', () => (existsSync(pidFile) ? true : undefined));
    const conf = writeConf(
      d,
      `svid_file_name = "s.pem"\nsvid_key_file_name = "k.pem"\nsvid_bundle_file_name = "b.pem"\npid_file_name = "${pidFile}"\nrenew_signal = "USR1"\n`,
    );
    const p = spawnProcess(process.execPath, [HELPER_BIN, '--config', conf]);
    try {
      await waitFor('files', () => (existsSync(join(d, 's.pem')) ? true : undefined));
      setSvids();
      await waitFor('signal', () => (target.stdout().includes('usr1') ? true : undefined));
    } finally {
      await p.kill();
      await target.kill();
    }
  });
});
