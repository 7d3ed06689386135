import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeWorkloadApi, TestCa } from '@tessera/testing';
import { fakeSvid, runHelper, spawnProcess, waitFor } from './support.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Writes a one-shot helper config for `api` into `dir` and runs the helper; returns the file paths. */
async function helperFiles(dir: string, api: FakeWorkloadApi, format: 'yaml' | 'json') {
  mkdirSync(dir, { recursive: true });
  const conf = {
    agent_address: api.address,
    cert_dir: dir,
    svid_file_name: 'svid.pem',
    svid_key_file_name: 'svid_key.pem',
    svid_bundle_file_name: 'svid_bundle.pem',
    daemon_mode: false,
  };
  const file = join(dir, `helper.${format}`);
  writeFileSync(
    file,
    format === 'json'
      ? JSON.stringify(conf)
      : Object.entries(conf)
          .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
          .join('\n'),
  );
  const r = await runHelper(['--config', file]);
  assert.equal(r.code, 0, r.stderr);
  return {
    cert: join(dir, 'svid.pem'),
    key: join(dir, 'svid_key.pem'),
    bundle: join(dir, 'svid_bundle.pem'),
  };
}

describe('openssl s_server and s_client with two helpers', () => {
  let dir: string;
  let serverApi: FakeWorkloadApi;
  let clientApi: FakeWorkloadApi;
  let foreignApi: FakeWorkloadApi;
  const ca = TestCa.create({ trustDomain: 'example.org' });
  const foreignCa = TestCa.create({ trustDomain: 'other.org' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-helper-openssl-'));
    serverApi = await FakeWorkloadApi.start();
    clientApi = await FakeWorkloadApi.start();
    foreignApi = await FakeWorkloadApi.start();
    serverApi.setX509Svids([fakeSvid(ca, { spiffeId: 'spiffe://example.org/server' })]);
    clientApi.setX509Svids([fakeSvid(ca, { spiffeId: 'spiffe://example.org/client' })]);
    foreignApi.setX509Svids([fakeSvid(foreignCa, { spiffeId: 'spiffe://other.org/client' })]);
  });
  after(async () => {
    await Promise.all([serverApi.close(), clientApi.close(), foreignApi.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  async function session(server: { cert: string; key: string; bundle: string }, client: typeof server) {
    const port = await freePort();
    const s = spawnProcess('openssl', [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      server.cert,
      '-key',
      server.key,
      '-CAfile',
      server.bundle,
      '-Verify',
      '1',
      '-verify_return_error',
      '-rev',
      '-naccept',
      '1',
    ]);
    try {
      await waitFor('s_server to listen', () => (s.stdout().includes('ACCEPT') ? true : undefined), 10_000);
      const c = spawnProcess('sh', [
        '-c',
        `(echo hello-spiffe; sleep 2) | openssl s_client -connect 127.0.0.1:${port} -cert ${client.cert} -key ${client.key} -CAfile ${client.bundle} -verify_return_error -verify 1`,
      ]);
      try {
        const r = await Promise.race([
          c.exited,
          waitFor(
            's_client reply',
            () => (c.stdout().includes('effips-olleh') ? 'reply' : undefined),
            10_000,
          ),
        ]);
        return { reply: r === 'reply', client: c.stdout() + c.stderr(), server: s.stdout() + s.stderr() };
      } finally {
        await c.kill();
      }
    } finally {
      await s.kill();
    }
  }

  it('authenticates both sides with the files each helper wrote', async () => {
    const server = await helperFiles(join(dir, 'server'), serverApi, 'yaml');
    const client = await helperFiles(join(dir, 'client'), clientApi, 'json');
    const r = await session(server, client);
    assert.ok(r.reply, `no reply; client:\n${r.client}\nserver:\n${r.server}`);
    assert.match(r.client, /Verify return code: 0 \(ok\)/);
    assert.match(r.client, /Verification: OK/);
  });

  it('fails the handshake for a client from another trust domain', async () => {
    const server = await helperFiles(join(dir, 'server2'), serverApi, 'yaml');
    const foreign = await helperFiles(join(dir, 'foreign'), foreignApi, 'json');
    // The foreign client trusts the server (given its CA), but the server must refuse the client.
    const r = await session(server, { ...foreign, bundle: server.bundle });
    assert.equal(r.reply, false);
    assert.match(r.server, /verify error|certificate verify failed|unable to get local issuer/i);
  });
});
