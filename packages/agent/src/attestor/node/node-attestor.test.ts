import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TestCa } from '@tessera/testing';
import { createJoinTokenAttestor, createX509PopAttestor, x509PopResponse } from './node-attestor.js';

const nonce = Buffer.from('0123456789abcdef0123456789abcdef');
const challenge = Buffer.from(JSON.stringify({ nonce: nonce.toString('base64') }));

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
  const cases = [
    { name: 'signs the nonce with ECDSA/SHA-256', key: generateKeyPairSync('ec', { namedCurve: 'P-256' }) },
    {
      name: 'signs the nonce with RSA-PSS/SHA-256',
      key: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    },
    { name: 'signs the nonce with Ed25519', key: generateKeyPairSync('ed25519') },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const res = JSON.parse(x509PopResponse(tc.key.privateKey, challenge).toString()) as {
        signature: string;
      };
      const sig = Buffer.from(res.signature, 'base64');
      const ok =
        tc.key.publicKey.asymmetricKeyType === 'rsa'
          ? verify('sha256', nonce, { key: tc.key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING }, sig)
          : verify(
              tc.key.publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256',
              nonce,
              tc.key.publicKey,
              sig,
            );
      assert.equal(ok, true);
      assert.equal(
        verify(
          tc.key.publicKey.asymmetricKeyType === 'ed25519' ? null : 'sha256',
          Buffer.from('other'),
          tc.key.publicKey,
          sig,
        ),
        false,
      );
    });
  }

  const bad = [
    { name: 'not JSON', c: 'nope', re: /not JSON/ },
    { name: 'no nonce', c: '{}', re: /no nonce/ },
    { name: 'a non-string nonce', c: '{"nonce":5}', re: /no nonce/ },
  ];
  for (const tc of bad) {
    it(`rejects a challenge with ${tc.name}`, () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      assert.throws(() => x509PopResponse(privateKey, Buffer.from(tc.c)), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: tc.re,
      });
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
      JSON.parse((await a.respond(challenge)).toString());

      const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      writeFileSync(join(dir, 'node.key'), other.export({ type: 'pkcs8', format: 'pem' }));
      await assert.rejects(a.payload(), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: /does not match certificate/,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
