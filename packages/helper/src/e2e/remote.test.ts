/**
 * Remote-attestation mode end to end: the built `tessera-helper` against the real serverless service with a
 * test OIDC issuer, tokens from a metadata-like endpoint (`token_command`) or a file (`token_file`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JwtBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { JwtSvid, X509Svid } from '@tessera/spiffe/svid';
import { FUNCTION_ID, SERVER_ID, type ServerlessStack, startServerlessStack } from './serverless-stack.js';
import { HELPER_BIN, runHelper, spawnProcess, waitFor } from './support.js';

const TD = TrustDomain.fromString('example.org');

function opensslVerify(bundleFile: string, svidFile: string): string {
  const r = spawnSync('openssl', ['verify', '-CAfile', bundleFile, '-purpose', 'sslclient', svidFile], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `openssl verify failed: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

describe('tessera-helper in remote-attestation mode against the serverless service', () => {
  let stack: ServerlessStack;
  let base: string;
  let n = 0;

  /** A fresh cert dir and a YAML config in it. */
  function setup(
    remote: Record<string, unknown>,
    extra: Record<string, unknown>,
  ): { dir: string; conf: string } {
    const dir = join(base, `case-${++n}`);
    execFileSync('mkdir', ['-p', join(dir, 'certs')]);
    const conf = join(dir, 'helper.json');
    writeFileSync(
      conf,
      JSON.stringify({
        cert_dir: join(dir, 'certs'),
        remote_attestation: {
          server_address: stack.address,
          ca_file: stack.bundleFile,
          server_spiffe_id: SERVER_ID,
          ...remote,
        },
        ...extra,
      }),
    );
    return { dir, conf };
  }

  const x509Files = {
    svid_file_name: 'svid.pem',
    svid_key_file_name: 'svid_key.pem',
    svid_bundle_file_name: 'bundle.pem',
  };

  before(async () => {
    stack = await startServerlessStack({ x509SvidTtlSeconds: 4 });
    base = mkdtempSync(join(tmpdir(), 'tessera-helper-remote-'));
  });
  after(async () => {
    await stack.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('one-shot: writes an SVID whose chain openssl verifies against the written bundle, plus JWT files', async () => {
    stack.project = 'my-gcp-project-id';
    const { conf, dir: caseDir } = setup(
      { attestations: [{ type: 'gcp_iit', token_command: `curl -sf ${stack.tokenUrl}` }] },
      {
        ...x509Files,
        jwt_svids: [{ jwt_audience: 'spiffe://example.org/db', jwt_svid_file_name: 'db.jwt' }],
        jwt_bundle_file_name: 'jwt_bundle.json',
        daemon_mode: false,
      },
    );
    const mintedBefore = stack.minted();
    const r = await runHelper(['run', '--config', conf]);
    assert.equal(r.code, 0, r.stderr);
    const certs = join(caseDir, 'certs');
    assert.match(opensslVerify(join(certs, 'bundle.pem'), join(certs, 'svid.pem')), /svid\.pem: OK/);
    const svid = X509Svid.load(join(certs, 'svid.pem'), join(certs, 'svid_key.pem'));
    assert.equal(svid.id.toString(), FUNCTION_ID);
    const leaf = svid.certificates[0]!;
    assert.equal(leaf.checkPrivateKey(svid.privateKey), true);
    assert.equal(statSync(join(certs, 'svid_key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(certs, 'svid.pem')).mode & 0o777, 0o644);
    // The bundle file is the trust domain's CA as the server holds it.
    assert.deepEqual(
      readFileSync(join(certs, 'bundle.pem'), 'utf8'),
      new X509Certificate(stack.bundlePem).toString(),
    );

    // The JWT-SVID validates against the written JWT bundle (spiffe-helper's format: td → base64 JWKS).
    const map = JSON.parse(readFileSync(join(certs, 'jwt_bundle.json'), 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(map), ['example.org']);
    const jwtBundle = JwtBundle.parse(TD, Buffer.from(map['example.org']!, 'base64'));
    const jwt = await JwtSvid.parseAndValidate(readFileSync(join(certs, 'db.jwt'), 'utf8'), jwtBundle, [
      'spiffe://example.org/db',
    ]);
    assert.equal(jwt.id.toString(), FUNCTION_ID);
    // One fresh token per request: the X.509 SVID, the JWT bundle and the JWT-SVID.
    assert.equal(stack.minted() - mintedBefore, 3);
    // Nothing secret in the logs.
    assert.doesNotMatch(r.stderr, /eyJ|PRIVATE KEY/);
  });

  it('one-shot: reads the token from token_file', async () => {
    stack.project = 'my-gcp-project-id';
    const { conf, dir } = setup(
      { attestations: { type: 'gcp_iit', token_file: join(base, `token-${n + 1}`) } },
      { ...x509Files, daemon_mode: false },
    );
    writeFileSync(join(base, `token-${n}`), `${await stack.mint()}\n`);
    const r = await runHelper(['run', '--config', conf]);
    assert.equal(r.code, 0, r.stderr);
    opensslVerify(join(dir, 'certs', 'bundle.pem'), join(dir, 'certs', 'svid.pem'));

    // The same token again is a replay: denied with the server's reason.
    const again = await runHelper(['run', '--config', conf]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /remote: attestation denied \(replayed: /);
  });

  it('a denied token: exit 1 with the server reason and nothing written', async () => {
    stack.project = 'other-project';
    try {
      const { conf, dir } = setup(
        { attestations: [{ type: 'gcp_iit', token_command: `curl -sf ${stack.tokenUrl}` }] },
        { ...x509Files, jwt_bundle_file_name: 'jwt_bundle.json', daemon_mode: false },
      );
      const r = await runHelper(['run', '--config', conf]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /remote: attestation denied \(policy_denied: .*project_id \\?"other-project\\?" is not in allowedProjectIDs\)/,
      );
      assert.deepEqual(readdirSync(join(dir, 'certs')), []);
      assert.ok(
        stack.log.audits().some((a) => a.decision === 'deny' && a.code === 'policy_denied'),
        'the server audited the denial',
      );
    } finally {
      stack.project = 'my-gcp-project-id';
    }
  });

  it('daemon: a denied first attestation exits 1 without writing', async () => {
    stack.project = 'other-project';
    try {
      const { conf, dir } = setup(
        { attestations: [{ type: 'gcp_iit', token_command: `curl -sf ${stack.tokenUrl}` }] },
        { ...x509Files },
      );
      const r = await runHelper(['run', '--config', conf]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /policy_denied/);
      assert.deepEqual(readdirSync(join(dir, 'certs')), []);
    } finally {
      stack.project = 'my-gcp-project-id';
    }
  });

  it('a failing token_command: exit 1 naming the attestation, stdout never echoed', async () => {
    const { conf, dir } = setup(
      {
        attestations: [
          { type: 'gcp_iit', token_command: 'echo secret-token-text; echo no metadata >&2; exit 7' },
        ],
      },
      { ...x509Files, daemon_mode: false },
    );
    const r = await runHelper(['run', '--config', conf]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /remote_attestation\.attestations\[0\]: token_command exited with code 7: no metadata/,
    );
    assert.doesNotMatch(r.stderr, /secret-token-text/);
    assert.deepEqual(readdirSync(join(dir, 'certs')), []);
  });

  it('daemon: re-attests before expiry with fresh tokens and rewrites the files, signalling the program', async () => {
    stack.project = 'my-gcp-project-id';
    const { conf, dir } = setup(
      { attestations: [{ type: 'gcp_iit', token_command: `curl -sf ${stack.tokenUrl}` }] },
      { ...x509Files, pid_file_name: 'prog.pid', renew_signal: 'SIGUSR1' },
    );
    // A program that counts SIGUSR1s into a file, its pid in prog.pid.
    const counter = join(dir, 'signals');
    const prog = spawnProcess(process.execPath, [
      '-e',
      `const fs=require('fs');let n=0;process.on('SIGUSR1',()=>fs.writeFileSync(${JSON.stringify(counter)},String(++n)));fs.writeFileSync(${JSON.stringify(join(dir, 'prog.pid'))},String(process.pid));setInterval(()=>{},1000);`,
    ]);
    const helper = spawnProcess(process.execPath, [HELPER_BIN, 'run', '--config', conf], { cwd: dir });
    try {
      await waitFor('prog.pid', () => (existsSync(join(dir, 'prog.pid')) ? true : undefined));
      const certs = join(dir, 'certs');
      const serialOf = (): string | undefined => {
        try {
          return new X509Certificate(readFileSync(join(certs, 'svid.pem'))).serialNumber;
        } catch {
          return undefined;
        }
      };
      const first = await waitFor('the first SVID', serialOf);
      const mintedAfterFirst = stack.minted();
      // 4 s SVIDs are renewed at half-life: a new certificate well within 8 s.
      const second = await waitFor(
        'a re-attested SVID',
        () => {
          const s = serialOf();
          return s !== undefined && s !== first ? s : undefined;
        },
        8000,
      );
      assert.notEqual(second, first);
      assert.ok(stack.minted() > mintedAfterFirst, 'a fresh token was read for the re-attestation');
      opensslVerify(join(certs, 'bundle.pem'), join(certs, 'svid.pem'));
      const svid = X509Svid.load(join(certs, 'svid.pem'), join(certs, 'svid_key.pem'));
      assert.equal(svid.id.toString(), FUNCTION_ID);
      assert.equal(svid.certificates[0]!.checkPrivateKey(svid.privateKey), true);
      await waitFor('the program signalled after the rewrite', () =>
        existsSync(counter) && Number(readFileSync(counter, 'utf8')) >= 1 ? true : undefined,
      );
      assert.equal(helper.child.exitCode, null, `helper exited: ${helper.stderr()}`);
      helper.signal('SIGTERM');
      const exit = await helper.exited;
      assert.equal(exit.code, 0, helper.stderr());
    } finally {
      await helper.kill();
      await prog.kill();
    }
  });

  it('validate reports every problem of a remote_attestation block at once', async () => {
    const conf = join(base, 'bad.yaml');
    writeFileSync(
      conf,
      `agent_address: /tmp/agent.sock
svid_file_name: a.pem
svid_key_file_name: k.pem
svid_bundle_file_name: b.pem
remote_attestation:
  server_address: http://spiffe.example.org
  server_spiffe_id: spiffe://example.org/spire/server
  retries: 3
  attestations:
  - type: gcp_iit
    token_file: /var/run/token
    token_env: TOKEN
`,
    );
    const r = await runHelper(['validate', '--config', conf, '--output', 'json']);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as { valid: boolean; code: string; issues: { path: string }[] };
    assert.equal(out.valid, false);
    assert.equal(out.code, 'ERR_CONFIG_INVALID');
    assert.deepEqual(out.issues.map((i) => i.path).sort(), [
      'agent_address',
      'remote_attestation.attestations[0]',
      'remote_attestation.retries',
      'remote_attestation.server_address',
      'remote_attestation.server_spiffe_id',
    ]);
  });
});
