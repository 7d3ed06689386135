import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, type KeyObject, sign, type X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildCertificate } from '../x509/certificate.js';
import {
  createX509PopChallenge,
  marshalX509PopPayload,
  parseX509PopPayload,
  signX509PopChallenge,
  verifyX509PopResponse,
  X509POP_MAX_CERTIFICATES,
  X509POP_NONCE_BYTES,
} from './x509pop.js';

const keys = {
  ec: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ed25519: generateKeyPairSync('ed25519'),
};

function selfSigned(key: KeyObject, cn: string): X509Certificate {
  return buildCertificate(
    {
      publicKey: key,
      subject: { commonName: cn },
      notBefore: new Date('2030-01-01T00:00:00Z'),
      notAfter: new Date('2030-01-02T00:00:00Z'),
    },
    { privateKey: key },
  ).certificate;
}
const leaf = selfSigned(keys.ec.privateKey, 'leaf');
const inter = selfSigned(keys.ed25519.privateKey, 'intermediate');

function response(signature: Buffer): Buffer {
  return Buffer.from(JSON.stringify({ signature: signature.toString('base64') }));
}

describe('x509pop wire format', () => {
  it('builds the payload as base64 DER certificates, leaf first, and parses it back', () => {
    const payload = marshalX509PopPayload([leaf, inter]);
    assert.deepEqual(JSON.parse(payload.toString('utf8')), {
      certificates: [leaf.raw.toString('base64'), inter.raw.toString('base64')],
    });
    const parsed = parseX509PopPayload(payload);
    assert.deepEqual(
      parsed.map((c) => c.raw),
      [leaf.raw, inter.raw],
    );
  });

  const badPayloads = [
    { name: 'not JSON', p: 'nope', message: 'nodeattestor(x509pop): payload is not JSON' },
    { name: 'a JSON array', p: '[]', message: 'nodeattestor(x509pop): payload must be a JSON object' },
    {
      name: 'no certificates',
      p: '{"certificates":[]}',
      message: `nodeattestor(x509pop): payload must hold 1 to ${X509POP_MAX_CERTIFICATES} certificates`,
    },
    {
      name: 'too many certificates',
      p: JSON.stringify({
        certificates: Array(X509POP_MAX_CERTIFICATES + 1).fill(leaf.raw.toString('base64')),
      }),
      message: `nodeattestor(x509pop): payload must hold 1 to ${X509POP_MAX_CERTIFICATES} certificates`,
    },
    {
      name: 'a non-string certificate',
      p: '{"certificates":[5]}',
      message: 'nodeattestor(x509pop): certificate 0 is not base64',
    },
    {
      name: 'a certificate that does not parse',
      p: JSON.stringify({ certificates: [leaf.raw.toString('base64'), 'AAAA'] }),
      message: 'nodeattestor(x509pop): certificate 1 cannot be parsed',
    },
  ];
  for (const tc of badPayloads) {
    it(`refuses a payload with ${tc.name} as invalid`, () => {
      assert.throws(() => parseX509PopPayload(Buffer.from(tc.p)), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: tc.message,
      });
    });
  }

  it('creates a challenge holding a fresh random nonce', () => {
    const a = createX509PopChallenge();
    const b = createX509PopChallenge();
    assert.equal(a.nonce.length, X509POP_NONCE_BYTES);
    assert.deepEqual(JSON.parse(a.challenge.toString('utf8')), { nonce: a.nonce.toString('base64') });
    assert.notDeepEqual(a.nonce, b.nonce);
  });

  for (const [name, pair] of Object.entries(keys)) {
    it(`verifies the response signed with the matching ${name} key`, () => {
      const { nonce, challenge } = createX509PopChallenge();
      verifyX509PopResponse(pair.publicKey, nonce, signX509PopChallenge(pair.privateKey, challenge));
    });

    it(`refuses a response signed with another ${name} key`, () => {
      const { nonce, challenge } = createX509PopChallenge();
      const other =
        name === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : name === 'rsa'
            ? generateKeyPairSync('rsa', { modulusLength: 2048 })
            : generateKeyPairSync('ed25519');
      assert.throws(
        () => verifyX509PopResponse(pair.publicKey, nonce, signX509PopChallenge(other.privateKey, challenge)),
        {
          code: 'ERR_NODE_ATTESTATION_FAILED',
          message: 'nodeattestor(x509pop): challenge response does not verify with the leaf key',
        },
      );
    });

    it(`refuses a ${name} response to a tampered nonce`, () => {
      const { nonce } = createX509PopChallenge();
      const tampered = Buffer.from(nonce);
      tampered[0] = (tampered[0] as number) ^ 1;
      const challenge = Buffer.from(JSON.stringify({ nonce: tampered.toString('base64') }));
      assert.throws(
        () => verifyX509PopResponse(pair.publicKey, nonce, signX509PopChallenge(pair.privateKey, challenge)),
        { code: 'ERR_NODE_ATTESTATION_FAILED', message: /does not verify with the leaf key/ },
      );
    });
  }

  const wrongScheme = [
    {
      name: 'RSA PKCS#1 v1.5 instead of RSA-PSS',
      key: keys.rsa,
      sign: (data: Buffer) => sign('sha256', data, keys.rsa.privateKey),
    },
    {
      name: 'RSA-PSS over SHA-384 instead of SHA-256',
      key: keys.rsa,
      sign: (data: Buffer) =>
        sign('sha384', data, { key: keys.rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING }),
    },
    {
      name: 'ECDSA over SHA-384 instead of SHA-256',
      key: keys.ec,
      sign: (data: Buffer) => sign('sha384', data, keys.ec.privateKey),
    },
    {
      name: 'ECDSA in IEEE P1363 form instead of ASN.1 DER',
      key: keys.ec,
      sign: (data: Buffer) => sign('sha256', data, { key: keys.ec.privateKey, dsaEncoding: 'ieee-p1363' }),
    },
  ];
  for (const tc of wrongScheme) {
    it(`refuses a signature made with ${tc.name}`, () => {
      const { nonce } = createX509PopChallenge();
      assert.throws(() => verifyX509PopResponse(tc.key.publicKey, nonce, response(tc.sign(nonce))), {
        code: 'ERR_NODE_ATTESTATION_FAILED',
        message: /does not verify with the leaf key/,
      });
    });
  }

  it('refuses a leaf key of a type x509pop does not verify with', () => {
    const { nonce } = createX509PopChallenge();
    const { publicKey } = generateKeyPairSync('x25519');
    assert.throws(() => verifyX509PopResponse(publicKey, nonce, response(Buffer.alloc(64))), {
      code: 'ERR_NODE_ATTESTATION_FAILED',
      message: 'nodeattestor(x509pop): leaf key type "x25519" is not supported',
    });
  });

  it('refuses to sign with a key of a type x509pop does not sign with', () => {
    const { privateKey } = generateKeyPairSync('x25519');
    assert.throws(() => signX509PopChallenge(privateKey, createX509PopChallenge().challenge), {
      code: 'ERR_NODE_ATTESTATION_INVALID',
      message: 'nodeattestor(x509pop): unsupported key type "x25519"',
    });
  });

  const badChallenges = [
    { name: 'not JSON', c: 'nope', message: 'nodeattestor(x509pop): challenge is not JSON' },
    { name: 'a JSON array', c: '[]', message: 'nodeattestor(x509pop): challenge must be a JSON object' },
    { name: 'JSON null', c: 'null', message: 'nodeattestor(x509pop): challenge must be a JSON object' },
    { name: 'no nonce', c: '{}', message: 'nodeattestor(x509pop): challenge has no nonce' },
    { name: 'an empty nonce', c: '{"nonce":""}', message: 'nodeattestor(x509pop): challenge has no nonce' },
    {
      name: 'a non-string nonce',
      c: '{"nonce":5}',
      message: 'nodeattestor(x509pop): challenge has no nonce',
    },
  ];
  for (const tc of badChallenges) {
    it(`refuses to sign a challenge with ${tc.name}`, () => {
      assert.throws(() => signX509PopChallenge(keys.ec.privateKey, Buffer.from(tc.c)), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: tc.message,
      });
    });
  }

  const badResponses = [
    { name: 'not JSON', r: 'nope', message: 'nodeattestor(x509pop): challenge response is not JSON' },
    {
      name: 'a JSON string',
      r: '"abc"',
      message: 'nodeattestor(x509pop): challenge response must be a JSON object',
    },
    { name: 'no signature', r: '{}', message: 'nodeattestor(x509pop): response has no signature' },
    {
      name: 'a non-string signature',
      r: '{"signature":[1]}',
      message: 'nodeattestor(x509pop): response has no signature',
    },
  ];
  for (const tc of badResponses) {
    it(`refuses a response with ${tc.name} as invalid`, () => {
      const { nonce } = createX509PopChallenge();
      assert.throws(() => verifyX509PopResponse(keys.ec.publicKey, nonce, Buffer.from(tc.r)), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: tc.message,
      });
    });
  }

  it('refuses an empty signature as not verifying', () => {
    const { nonce } = createX509PopChallenge();
    assert.throws(() => verifyX509PopResponse(keys.ec.publicKey, nonce, response(Buffer.alloc(0))), {
      code: 'ERR_NODE_ATTESTATION_FAILED',
      message: /does not verify/,
    });
  });
});
