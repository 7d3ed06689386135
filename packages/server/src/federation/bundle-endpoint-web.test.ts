import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { createLogger } from '@tessera/common/log';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { fetchBundle } from '@tessera/spiffe/federation';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { selfSignedCertArgs } from '@tessera/testing';
import { validateServerConfig } from '../config/load.js';
import { startServer, type TesseraServer } from '../server.js';

const TD = TrustDomain.fromString('web.test');

/** Runs curl (asynchronously: the endpoint runs in this process); rejects on a non-zero exit. */
function curl(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--fail', '--max-time', '10', ...args],
      { encoding: 'utf8' },
      (err, stdout, stderr) => (err ? reject(new Error(`curl: ${stderr || err.message}`)) : resolve(stdout)),
    );
  });
}

/** A self-signed P-256 certificate for localhost and 127.0.0.1, made by the openssl program. */
function makeCert(dir: string, name: string): { cert: string; key: string; fingerprint: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    selfSignedCertArgs({
      keyPath: key,
      certPath: cert,
      days: 2,
      subject: `/CN=${name}`,
      extensions: ['subjectAltName=DNS:localhost,IP:127.0.0.1'],
    }),
    { stdio: 'ignore' },
  );
  return { cert, key, fingerprint: new X509Certificate(readFileSync(cert)).fingerprint256 };
}

/** The fingerprint of the certificate the endpoint presents to a new connection. */
function presented(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting until ${what}`);
}

function serverConfig(dir: string, servingCertFile: Record<string, unknown>) {
  return {
    trust_domain: TD.name,
    bind_address: '127.0.0.1',
    socket_path: join(dir, 'api.sock'),
    data_dir: join(dir, 'data'),
    key_manager: { type: 'memory' },
    federation: {
      bundle_endpoint: {
        address: '127.0.0.1',
        refresh_hint: '5m',
        profile: { https_web: { serving_cert_file: servingCertFile } },
      },
    },
    health_checks: { listener_enabled: false },
  };
}

describe('bundle endpoint, profile https_web (serving_cert_file)', () => {
  let dir: string;
  let server: TesseraServer;
  let port: number;
  let first: { cert: string; key: string; fingerprint: string };
  const lines: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-web-'));
    first = makeCert(dir, 'first');
    writeFileSync(join(dir, 'serving.crt'), readFileSync(first.cert));
    writeFileSync(join(dir, 'serving.key'), readFileSync(first.key));
    const r = validateServerConfig(
      serverConfig(dir, {
        cert_file_path: join(dir, 'serving.crt'),
        key_file_path: join(dir, 'serving.key'),
        file_sync_interval: '1s',
      }),
    );
    if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
    const logger = createLogger({ level: 'info', destination: { write: (l: string) => lines.push(l) } });
    server = await startServer({ config: r.config, logger, bindPort: 0, bundleEndpointPort: 0 });
    port = server.federation.bundleEndpointPort as number;
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the bundle with the Web PKI certificate: curl and fetchBundle verify it against that root', async () => {
    assert.equal(await presented(port), first.fingerprint);
    const body = await curl(['--cacert', first.cert, `https://localhost:${port}/`]);
    const served = SpiffeBundle.parse(TD, body);
    assert.ok(
      served.equals(
        server.ca
          .bundle()
          .withMetadata({ sequenceNumber: server.ca.bundle().sequenceNumber, refreshHint: 300 }),
      ),
    );
    const fetched = await fetchBundle(TD, `https://localhost:${port}/`, {
      webPkiRoots: [new X509Certificate(readFileSync(first.cert))],
    });
    assert.deepEqual(
      fetched.x509Authorities().map((c) => c.fingerprint256),
      server.ca
        .bundle()
        .x509Authorities()
        .map((c) => c.fingerprint256),
    );
    // A client without that root (curl's system store) refuses the self-signed test certificate.
    await assert.rejects(curl([`https://localhost:${port}/`]), /curl: /);
  });

  it('loads a renewed certificate for new connections, and keeps the current one when the new files do not load', async () => {
    const second = makeCert(dir, 'second');
    writeFileSync(join(dir, 'serving.key'), readFileSync(second.key));
    writeFileSync(join(dir, 'serving.crt'), readFileSync(second.cert));
    await eventually(
      'the endpoint presents the renewed certificate',
      async () => (await presented(port)) === second.fingerprint,
    );
    assert.ok(lines.some((l) => l.includes('Bundle endpoint certificate reloaded')));

    // A key that does not belong to the certificate: logged, and the renewed pair stays in use.
    writeFileSync(join(dir, 'serving.key'), readFileSync(first.key));
    await eventually('the failed reload is logged', async () =>
      lines.some((l) => l.includes('Bundle endpoint certificate reload failed')),
    );
    assert.equal(await presented(port), second.fingerprint);
    assert.ok(
      !lines.some((l) => l.includes('BEGIN') || l.includes('PRIVATE KEY')),
      'no key material in the logs',
    );
  });
});

describe('bundle endpoint https_web: bad configuration', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-web-bad-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const start = async (servingCertFile: Record<string, unknown>) => {
    const r = validateServerConfig(serverConfig(dir, servingCertFile));
    if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
    return startServer({
      config: r.config,
      logger: createLogger({ destination: { write: () => {} } }),
      bindPort: 0,
      bundleEndpointPort: 0,
    });
  };

  it('refuses to start on a missing file, a file without a certificate, or a key of another certificate, naming the field', async () => {
    const a = makeCert(dir, 'a');
    const b = makeCert(dir, 'b');
    await assert.rejects(start({ cert_file_path: join(dir, 'missing.crt'), key_file_path: a.key }), {
      code: 'ERR_CONFIG_INVALID',
      message: /serving_cert_file\.cert_file_path: cannot read ".*missing\.crt": ENOENT/,
    });
    await assert.rejects(start({ cert_file_path: a.key, key_file_path: a.key }), {
      code: 'ERR_CONFIG_INVALID',
      message: /serving_cert_file\.cert_file_path .* holds no PEM certificate/,
    });
    await assert.rejects(start({ cert_file_path: a.cert, key_file_path: a.cert }), {
      code: 'ERR_CONFIG_INVALID',
      message: /serving_cert_file\.key_file_path: ".*a\.crt" holds no usable PEM private key/,
    });
    await assert.rejects(start({ cert_file_path: a.cert, key_file_path: b.key }), {
      code: 'ERR_CONFIG_INVALID',
      message: /key_file_path: the key in ".*b\.key" does not belong to the first certificate/,
    });
  });

  it('validates the profile section: one profile, and serving_cert_file for https_web', () => {
    const errorsOf = (profile: unknown) => {
      const r = validateServerConfig({
        trust_domain: TD.name,
        federation: { bundle_endpoint: { profile } },
      });
      return 'errors' in r ? r.errors.map((e) => `${e.path} ${e.message}`) : [];
    };
    assert.deepEqual(errorsOf({ https_spiffe: {} }), []);
    assert.ok(errorsOf({ https_web: {} }).some((e) => e.includes('serving_cert_file')));
    assert.ok(errorsOf({ https_web: {}, https_spiffe: {} }).some((e) => /exactly one of/.test(e)));
    assert.ok(errorsOf({ acme: {} }).some((e) => e.includes('acme')));
    assert.ok(
      errorsOf({
        https_web: {
          serving_cert_file: { cert_file_path: 'c', key_file_path: 'k', file_sync_interval: '10ms' },
        },
      }).some((e) => e.includes('file_sync_interval')),
    );
    // Above 2^31-1 ms, Node would run the check every millisecond.
    assert.ok(
      errorsOf({
        https_web: {
          serving_cert_file: { cert_file_path: 'c', key_file_path: 'k', file_sync_interval: '25d' },
        },
      }).some((e) => e.includes('file_sync_interval') && e.includes('at most')),
    );
  });
});
