import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import {
  authorizeAny,
  authorizeId,
  authorizeMemberOf,
  connectSpiffeTls,
  createSpiffeHttpsServer,
  mtlsClientOptions,
  mtlsServerOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { TestCa } from '@tessera/testing';
import { listen, MutableBundles, MutableSvidSource, svid, tempDir } from './fixtures.js';

const ca = TestCa.create({ trustDomain: 'example.org' });
const dir = tempDir();

function writeSvid(name: string, s: { certPem: string; keyPem: string }): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, s.certPem);
  writeFileSync(key, s.keyPem, { mode: 0o600 });
  return { cert, key };
}

const rootFile = join(dir, 'root.pem');
writeFileSync(rootFile, ca.pem());

function run(
  cmd: string,
  args: string[],
  input = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(input);
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('SPIFFE https server against curl and openssl s_client', () => {
  const bundles = new MutableBundles(ca);
  const serverSvid = new MutableSvidSource(svid(ca, 'spiffe://example.org/server'));
  const good = writeSvid('good', svid(ca, 'spiffe://example.org/curl'));
  const wrong = writeSvid('wrong', svid(ca, 'spiffe://example.org/intruder'));
  let calls = 0;
  let port = 0;
  const server = createSpiffeHttpsServer(
    mtlsServerOptions(serverSvid, bundles, authorizeId(SpiffeId.require('spiffe://example.org/curl'))),
    {},
    (req, res) => {
      calls++;
      res.end(`hello ${peerIdFromSocket(req.socket as TLSSocket).toString()}`);
    },
  );

  before(async () => {
    port = await listen(server);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('accepts curl presenting an authorized SVID', async () => {
    const r = await run('curl', [
      '-sS',
      '-k',
      '--cert',
      good.cert,
      '--key',
      good.key,
      `https://127.0.0.1:${port}/`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello spiffe://example.org/curl');
  });

  it('refuses curl presenting an SVID with the wrong ID, before the handler', async () => {
    const before = calls;
    const r = await run('curl', [
      '-sS',
      '-k',
      '--cert',
      wrong.cert,
      '--key',
      wrong.key,
      `https://127.0.0.1:${port}/`,
    ]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(calls, before);
  });

  it('refuses curl without a client certificate, before the handler', async () => {
    const before = calls;
    const r = await run('curl', ['-sS', '-k', `https://127.0.0.1:${port}/`]);
    assert.notEqual(r.code, 0);
    assert.equal(calls, before);
  });

  it('accepts openssl s_client with an authorized SVID and refuses it without one', async () => {
    const request = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const ok = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-cert',
        good.cert,
        '-key',
        good.key,
        '-CAfile',
        rootFile,
        '-quiet',
      ],
      request,
    );
    assert.match(ok.stdout, /hello spiffe:\/\/example\.org\/curl/);
    const before = calls;
    const refused = await run(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', rootFile, '-quiet'],
      request,
    );
    assert.doesNotMatch(refused.stdout, /hello/);
    assert.equal(calls, before);
  });
});

describe('SPIFFE client against openssl s_server', () => {
  const bundles = new MutableBundles(ca);
  const clientSvid = new MutableSvidSource(svid(ca, 'spiffe://example.org/client'));
  let server: ChildProcess | undefined;
  let port = 0;

  async function startServer(name: string, s: { certPem: string; keyPem: string }): Promise<void> {
    const files = writeSvid(name, s);
    port = await freePort();
    server = spawn(
      'openssl',
      ['s_server', '-accept', String(port), '-cert', files.cert, '-key', files.key, '-naccept', '1'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const stdout = server.stdout;
    assert.ok(stdout);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`openssl s_server did not start: ${out}`)), 10_000);
      stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ACCEPT')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  after(() => server?.kill());

  async function connect(
    authorizer = authorizeAny(),
  ): Promise<{ id?: string; error?: Error & { code?: string } }> {
    const socket = connectSpiffeTls(() => mtlsClientOptions(clientSvid, bundles, authorizer), {
      host: '127.0.0.1',
      port,
    });
    try {
      await once(socket, 'secureConnect');
      const id = peerIdFromSocket(socket).toString();
      socket.destroy();
      return { id };
    } catch (error) {
      return { error: error as Error & { code?: string } };
    } finally {
      server?.kill();
    }
  }

  it('accepts an openssl server presenting an authorized SVID', async () => {
    await startServer('s-server', svid(ca, 'spiffe://example.org/openssl'));
    const r = await connect(authorizeMemberOf(TrustDomain.fromString('example.org')));
    assert.equal(r.error, undefined);
    assert.equal(r.id, 'spiffe://example.org/openssl');
  });

  it('refuses an openssl server whose ID is not authorized', async () => {
    await startServer('s-server-2', svid(ca, 'spiffe://example.org/openssl'));
    const r = await connect(authorizeId(SpiffeId.require('spiffe://example.org/db')));
    assert.equal(r.error?.code, 'ERR_TLS_AUTHORIZATION_FAILED');
    assert.match(r.error?.message ?? '', /^tls: unexpected ID "spiffe:\/\/example\.org\/openssl"$/);
  });

  it('refuses an openssl server presenting a certificate of an unknown CA', async () => {
    const stranger = TestCa.create({ trustDomain: 'example.org' });
    await startServer('s-server-3', svid(stranger, 'spiffe://example.org/openssl'));
    const r = await connect();
    assert.ok(r.error);
    assert.equal(r.id, undefined);
  });
});
