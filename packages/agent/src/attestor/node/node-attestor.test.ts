import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createX509PopChallenge, verifyX509PopResponse } from '@tessera/common/attestation';
import { TestCa } from '@tessera/testing';
import { createJoinTokenAttestor, createX509PopAttestor } from './node-attestor.js';

describe('join_token attestor', () => {
  it('sends the token bytes and refuses any challenge', async () => {
    const a = createJoinTokenAttestor('abc');
    assert.equal(a.type, 'join_token');
    assert.equal((await a.payload()).toString(), 'abc');
    await assert.rejects(a.respond(Buffer.from('{}')), {
      code: 'ERR_NODE_ATTESTATION_INVALID',
      message: /unexpected challenge/,
    });
  });

  it('rejects an empty token', () => {
    assert.throws(() => createJoinTokenAttestor(''), TypeError);
  });
});

describe('x509pop attestor', () => {
  // The signature scheme and the challenge format are tested in @tessera/common/attestation; these tests cover
  // what the attestor adds: reading its files and answering through them.
  const bad = [
    { name: 'not JSON', c: 'nope', re: /challenge is not JSON/ },
    { name: 'no nonce', c: '{}', re: /challenge has no nonce/ },
  ];
  for (const tc of bad) {
    it(`rejects a challenge with ${tc.name}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'x509pop-'));
      try {
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        writeFileSync(join(dir, 'node.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
        const a = createX509PopAttestor({
          privateKeyPath: join(dir, 'node.key'),
          certificatePath: join(dir, 'node.crt'),
        });
        await assert.rejects(a.respond(Buffer.from(tc.c)), {
          code: 'ERR_NODE_ATTESTATION_INVALID',
          message: tc.re,
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('sends the chain from its files and refuses a key that does not match the certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'x509pop-'));
    try {
      const ca = TestCa.create({ trustDomain: 'example.org' });
      const inter = ca.createIntermediate();
      const leaf = inter.issueX509Svid({ uris: [], dnsNames: ['node1'] });
      writeFileSync(join(dir, 'node.crt'), leaf.certificates[0]?.toString() ?? '');
      writeFileSync(join(dir, 'inter.crt'), inter.certificate.toString());
      writeFileSync(join(dir, 'node.key'), leaf.keyPem);
      const a = createX509PopAttestor({
        privateKeyPath: join(dir, 'node.key'),
        certificatePath: join(dir, 'node.crt'),
        intermediatesPath: join(dir, 'inter.crt'),
      });
      const payload = JSON.parse((await a.payload()).toString()) as { certificates: string[] };
      assert.deepEqual(payload.certificates, [
        leaf.leaf.raw.toString('base64'),
        inter.der.toString('base64'),
      ]);
      const { nonce, challenge } = createX509PopChallenge();
      verifyX509PopResponse(leaf.leaf.publicKey, nonce, await a.respond(challenge));

      const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      writeFileSync(join(dir, 'node.key'), other.export({ type: 'pkcs8', format: 'pem' }));
      await assert.rejects(a.payload(), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: /does not match certificate/,
      });

      // Missing files: a coded error naming the config key and the file.
      rmSync(join(dir, 'inter.crt'));
      await assert.rejects(a.payload(), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: /cannot read intermediates_path ".*inter\.crt": ENOENT/,
      });
      rmSync(join(dir, 'node.crt'));
      await assert.rejects(a.payload(), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: /cannot read certificate_path ".*node\.crt": ENOENT/,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
