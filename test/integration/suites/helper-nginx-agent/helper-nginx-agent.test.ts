/**
 * helper-nginx-agent: the helper's nginx scenario against the REAL agent: nginx (Debian's) serves mTLS with
 * the SVID tessera-helper writes from the agent, reloads it on every rotation (10 s SVIDs) while curl keeps
 * succeeding, and rejects a client from another trust domain and a client without a certificate.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ClientFiles, runNginxScenario } from '@tessera/helper/e2e/nginx-scenario';
import { TestCa } from '@tessera/testing';
import { createEntries, createJoinToken, TesseraAgent } from '../../harness/agent.js';
import { TesseraServer, tempDir } from '../../harness/server.js';

const NGINX = '/usr/sbin/nginx';
const SERVER_NAME = 'nginx.example.org';
const NGINX_ID = 'spiffe://example.org/it/nginx';
const CURL_ID = 'spiffe://example.org/it/curl';
const TTL_SECONDS = 10;

describe('helper-nginx-agent: nginx with the helper, fed by the real agent', {
  skip: !existsSync(NGINX) && 'nginx is not installed',
}, () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    server = await TesseraServer.start({ config: { default_x509_svid_ttl: `${TTL_SECONDS}s` } });
    const t = await createJoinToken(server);
    await createEntries(server, [
      {
        parentId: t.agentId,
        spiffeId: NGINX_ID,
        selectors: [`unix:uid:${process.getuid?.() ?? 0}`],
        x509SvidTtl: TTL_SECONDS,
        dnsNames: [SERVER_NAME],
      },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: t.token, config: { log_level: 'info' } });
    dir = await tempDir('nginx');
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    await dir?.remove();
  });

  it('serves mTLS with the rotating agent SVID, reloaded on every rotation, and rejects foreign clients', async () => {
    // curl's own SVID, minted by the same server (tessera-server x509 mint), and one from another trust domain.
    const mint = await server.cli([
      'x509',
      'mint',
      '--spiffe-id',
      CURL_ID,
      '--ttl',
      '300',
      '--write',
      join(dir.path, 'curl'),
    ]);
    assert.equal(mint.code, 0, mint.stderr);
    const client: ClientFiles = {
      certFile: join(dir.path, 'curl', 'svid.pem'),
      keyFile: join(dir.path, 'curl', 'key.pem'),
    };
    const foreignSvid = TestCa.create({ trustDomain: 'other.org' }).issueX509Svid({
      spiffeId: 'spiffe://other.org/curl',
    });
    const foreignClient: ClientFiles = {
      certFile: join(dir.path, 'foreign.pem'),
      keyFile: join(dir.path, 'foreign.key'),
    };
    await writeFile(foreignClient.certFile, foreignSvid.certPem);
    await writeFile(foreignClient.keyFile, foreignSvid.keyPem, { mode: 0o600 });

    const started = Date.now();
    const result = await runNginxScenario({
      agentAddress: agent.address,
      workDir: join(dir.path, 'work'),
      serverName: SERVER_NAME,
      nginx: NGINX,
      client,
      foreignClient,
      minServedSerials: 3,
      timeoutMs: 60_000,
    });
    process.stdout.write(
      `# helper-nginx-agent: ${result.requests} curl requests OK over ${result.serials.length} served certificates in ${Date.now() - started} ms\n`,
    );
    assert.ok(result.serials.length >= 3, `served serials: ${result.serials.join(', ')}`);
    assert.equal(new Set(result.serials).size, result.serials.length);
    assert.ok(result.requests >= result.serials.length);
    assert.equal(result.foreign.status, 400);
    assert.match(result.foreign.body, /The SSL certificate error/);
    assert.equal(result.anonymous.status, 400);
    assert.match(result.anonymous.body, /No required SSL certificate was sent/);
    assert.match(result.helperLog, /X\.509 certificates updated/);
    assert.doesNotMatch(result.helperLog, /PRIVATE KEY/);
  });
});
