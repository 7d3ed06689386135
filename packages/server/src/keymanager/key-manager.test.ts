import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spkiDer } from '@tessera/common/x509';
import { createDiskKeyManager } from './disk.js';
import type { KeyManager } from './key-manager.js';
import { createMemoryKeyManager } from './memory.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-km-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const managers: { name: string; make: () => Promise<KeyManager> }[] = [
  { name: 'memory', make: async () => createMemoryKeyManager() },
  { name: 'disk', make: () => createDiskKeyManager({ directory: join(tempDir(), 'keys') }) },
];

for (const m of managers) {
  describe(`${m.name} key manager`, () => {
    it('generates, gets, lists, replaces and deletes keys', async () => {
      const km = await m.make();
      assert.equal(km.name, m.name);
      const a = await km.generateKey('x509-CA-A', 'ec-p256');
      const b = await km.generateKey('JWT-Signer-A', 'rsa-2048');
      assert.equal(a.type, 'ec-p256');
      assert.equal(b.privateKey.asymmetricKeyType, 'rsa');
      assert.ok(
        spkiDer((await km.getKey('x509-CA-A'))?.publicKey ?? a.privateKey).equals(spkiDer(a.publicKey)),
      );
      assert.deepEqual(
        (await km.listKeys()).map((k) => k.id),
        ['JWT-Signer-A', 'x509-CA-A'],
      );
      const a2 = await km.generateKey('x509-CA-A', 'ec-p384');
      assert.equal((await km.getKey('x509-CA-A'))?.type, 'ec-p384');
      assert.ok(!spkiDer(a2.publicKey).equals(spkiDer(a.publicKey)));
      await km.deleteKey('x509-CA-A');
      await km.deleteKey('x509-CA-A');
      assert.equal(await km.getKey('x509-CA-A'), undefined);
    });

    for (const id of ['', '../etc/passwd', 'a/b', '.hidden', 'x'.repeat(129), 'with space']) {
      it(`refuses the key id ${JSON.stringify(id.slice(0, 20))}`, async () => {
        const km = await m.make();
        await assert.rejects(km.generateKey(id, 'ec-p256'), {
          name: 'TypeError',
          message: /^keymanager: invalid key id/,
        });
      });
    }
  });
}

describe('disk key manager', () => {
  it('creates a 0700 directory and 0600 PKCS#8 PEM files', async () => {
    const dir = join(tempDir(), 'nested', 'keys');
    const km = await createDiskKeyManager({ directory: dir });
    await km.generateKey('x509-CA-A', 'ec-p256');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const file = join(dir, 'x509-CA-A.pem');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.deepEqual(readdirSync(dir), ['x509-CA-A.pem']);
  });

  it('tightens an existing directory to 0700', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    await createDiskKeyManager({ directory: dir });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  it('gives back the same keys under the same ids after a restart', async () => {
    const dir = tempDir();
    const km1 = await createDiskKeyManager({ directory: dir });
    const a = await km1.generateKey('x509-CA-A', 'ec-p256');
    const b = await km1.generateKey('JWT-Signer-B', 'ed25519');
    const km2 = await createDiskKeyManager({ directory: dir });
    const keys = await km2.listKeys();
    assert.deepEqual(
      keys.map((k) => [k.id, k.type]),
      [
        ['JWT-Signer-B', 'ed25519'],
        ['x509-CA-A', 'ec-p256'],
      ],
    );
    assert.ok(spkiDer(keys[1]?.publicKey ?? b.publicKey).equals(spkiDer(a.publicKey)));
    assert.ok(spkiDer(keys[0]?.publicKey ?? a.publicKey).equals(spkiDer(b.publicKey)));
  });

  it('removes leftovers of an interrupted write and keeps the previous key', async () => {
    const dir = tempDir();
    const km1 = await createDiskKeyManager({ directory: dir });
    const a = await km1.generateKey('x509-CA-A', 'ec-p256');
    writeFileSync(join(dir, 'x509-CA-A.pem.tmp-deadbeef'), 'half a key', { mode: 0o600 });
    const km2 = await createDiskKeyManager({ directory: dir });
    assert.deepEqual(readdirSync(dir), ['x509-CA-A.pem']);
    assert.ok(
      spkiDer((await km2.getKey('x509-CA-A'))?.publicKey ?? a.privateKey).equals(spkiDer(a.publicKey)),
    );
  });

  it('refuses a key file readable by others', async () => {
    const dir = tempDir();
    const km = await createDiskKeyManager({ directory: dir });
    await km.generateKey('x509-CA-A', 'ec-p256');
    chmodSync(join(dir, 'x509-CA-A.pem'), 0o644);
    await assert.rejects(createDiskKeyManager({ directory: dir }), {
      code: 'ERR_KEYMANAGER_FAILED',
      message: /^keymanager: key file ".*x509-CA-A\.pem" is accessible by group or others \(mode 644\)$/,
    });
  });

  it('refuses a key file that is not a private key', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o700);
    writeFileSync(join(dir, 'x509-CA-A.pem'), 'not a key', { mode: 0o600 });
    await assert.rejects(createDiskKeyManager({ directory: dir }), {
      code: 'ERR_KEYMANAGER_FAILED',
      message: /^keymanager: key file ".*x509-CA-A\.pem" does not hold a PEM private key$/,
    });
  });

  it('refuses a directory path that is a file', async () => {
    const file = join(tempDir(), 'file');
    writeFileSync(file, '');
    await assert.rejects(createDiskKeyManager({ directory: file }), { code: 'ERR_KEYMANAGER_FAILED' });
  });
});
