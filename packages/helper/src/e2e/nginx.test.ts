import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FakeWorkloadApi, TestCa } from '@tessera/testing';
import { type ClientFiles, runNginxScenario } from './nginx-scenario.js';
import { fakeSvid } from './support.js';

const NGINX = '/usr/sbin/nginx';
const SERVER_NAME = 'nginx.tessera.test';

function writeClient(dir: string, name: string, ca: TestCa, spiffeId: string): ClientFiles {
  const svid = ca.issueX509Svid({ spiffeId });
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(certFile, svid.certPem);
  writeFileSync(keyFile, svid.keyPem, { mode: 0o600 });
  return { certFile, keyFile };
}

describe('nginx with the helper (fake Workload API)', {
  skip: !existsSync(NGINX) && 'nginx is not installed',
}, () => {
  it('serves mTLS with rotating SVIDs, reloaded on every rotation, and rejects a foreign client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-helper-nginx-'));
    const root = TestCa.create({ trustDomain: 'example.org' });
    const inter = root.createIntermediate();
    const foreignCa = TestCa.create({ trustDomain: 'other.org' });
    const api = await FakeWorkloadApi.start();
    const serverSvid = () =>
      fakeSvid(inter, { spiffeId: 'spiffe://example.org/nginx', dnsNames: [SERVER_NAME] });
    // The fake serves the intermediate-issued chain with the root as the bundle.
    api.setX509Svids([serverSvid()]);
    let rotations = 0;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await runNginxScenario({
        agentAddress: api.address,
        workDir: dir,
        serverName: SERVER_NAME,
        nginx: NGINX,
        client: writeClient(dir, 'client', root, 'spiffe://example.org/curl'),
        foreignClient: writeClient(dir, 'foreign', foreignCa, 'spiffe://other.org/curl'),
        minServedSerials: 4,
        onServing: () => {
          timer = setInterval(() => {
            rotations++;
            api.setX509Svids([serverSvid()]);
          }, 1000);
        },
      });
      assert.ok(result.serials.length >= 4, `served serials: ${result.serials.join(', ')}`);
      assert.equal(new Set(result.serials).size, result.serials.length);
      assert.ok(result.requests >= result.serials.length);
      assert.ok(rotations >= 3);
      assert.equal(result.foreign.status, 400);
      assert.match(result.foreign.body, /The SSL certificate error/);
      assert.equal(result.anonymous.status, 400);
      assert.match(result.anonymous.body, /No required SSL certificate was sent/);
      // Logs carry serials and IDs, never the key.
      assert.match(result.helperLog, /X\.509 certificates updated/);
      assert.doesNotMatch(result.helperLog, /PRIVATE KEY/);
    } finally {
      clearInterval(timer);
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
