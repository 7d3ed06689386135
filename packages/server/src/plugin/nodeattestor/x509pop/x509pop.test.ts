import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { marshalX509PopPayload, signX509PopChallenge } from '@tessera/common/attestation';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { type LeafOptions, TestCa, type TestCaOptions } from '@tessera/testing';
import { createX509PopAttestor } from './x509pop.js';

const td = TrustDomain.fromString('example.org');

describe('x509pop node attestor', () => {
  const root = TestCa.create({ trustDomain: 'pop.example', subjectSpiffeId: null });
  const intermediate = root.createIntermediate({ subjectSpiffeId: null });
  const rootCert = new X509Certificate(root.rootDer());

  it('attests a leaf chaining through an intermediate, with SPIRE-style ID and selectors', async () => {
    const leaf = intermediate.issueX509Svid({
      spiffeId: 'spiffe://pop.example/node',
      subject: { commonName: 'node-1' },
    });
    const attestor = createX509PopAttestor({ trustDomain: td, caCertificates: [rootCert] });
    const chain = [leaf.leaf, ...intermediate.chainToRoot()];
    const r = await attestor.attest(marshalX509PopPayload(chain), async (c) =>
      signX509PopChallenge(leaf.privateKey, c),
    );
    const fp = createHash('sha1').update(leaf.leaf.raw).digest('hex');
    assert.equal(r.agentId, `spiffe://example.org/spire/agent/x509pop/${fp}`);
    assert.ok(r.selectors.some((s) => s.value === 'subject:cn:node-1'));
    assert.equal(r.selectors.filter((s) => s.value.startsWith('ca:fingerprint:')).length, 2);
    assert.equal(r.canReattest, true);
  });

  it('refuses a response signed by another key', async () => {
    const leaf = intermediate.issueX509Svid({ spiffeId: 'spiffe://pop.example/node' });
    const attestor = createX509PopAttestor({ trustDomain: td, caCertificates: [rootCert] });
    const chain = [leaf.leaf, ...intermediate.chainToRoot()];
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await assert.rejects(
      attestor.attest(marshalX509PopPayload(chain), async (c) => signX509PopChallenge(other, c)),
      { code: 'ERR_NODE_ATTESTATION_FAILED', message: /does not verify/ },
    );
  });

  it('refuses a chain from an untrusted CA', async () => {
    const stranger = TestCa.create({ trustDomain: 'pop.example', subjectSpiffeId: null });
    const leaf = stranger.issueX509Svid({ spiffeId: 'spiffe://pop.example/node' });
    const attestor = createX509PopAttestor({ trustDomain: td, caCertificates: [rootCert] });
    await assert.rejects(
      attestor.attest(marshalX509PopPayload([leaf.leaf]), async () => Buffer.from('{}')),
      { code: 'ERR_NODE_ATTESTATION_FAILED', message: /does not chain to a trusted CA/ },
    );
  });

  /**
   * Issues a leaf from `issuer` and attests it against the issuer's root (the only trusted CA), answering the
   * challenge with the leaf's own key, so that nothing but the chain checks can refuse it.
   */
  function attestLeafOf(issuer: TestCa, leafOptions: LeafOptions = {}) {
    const leaf = issuer.issueX509Svid({ spiffeId: 'spiffe://pop.example/node', ...leafOptions });
    const attestor = createX509PopAttestor({
      trustDomain: td,
      caCertificates: [new X509Certificate(issuer.rootDer())],
    });
    return attestor.attest(marshalX509PopPayload(leaf.certificates), async (c) =>
      signX509PopChallenge(leaf.privateKey, c),
    );
  }

  const popRoot = (o: TestCaOptions = {}) =>
    TestCa.create({ trustDomain: 'pop.example', subjectSpiffeId: null, ...o });

  const accepted: { name: string; issuer: () => TestCa; leaf?: LeafOptions }[] = [
    {
      name: 'accepts a leaf issued by an intermediate with path length 0 under a root with path length 1',
      issuer: () => popRoot({ pathLen: 1 }).createIntermediate({ pathLen: 0 }),
    },
    {
      name: 'accepts two intermediates under a root with path length 2',
      issuer: () =>
        popRoot({ pathLen: 2 }).createIntermediate({ pathLen: 1 }).createIntermediate({ pathLen: 0 }),
    },
    {
      name: 'accepts a leaf issued directly by a root with path length 0',
      issuer: () => popRoot({ pathLen: 0 }),
    },
    {
      name: 'accepts CA certificates and a leaf without keyUsage extensions',
      issuer: () => popRoot({ keyUsage: null }).createIntermediate({ keyUsage: null }),
      leaf: { keyUsage: null },
    },
    {
      name: 'accepts a leaf whose only key usage is digitalSignature',
      issuer: () => popRoot().createIntermediate(),
      leaf: { keyUsage: ['digitalSignature'] },
    },
  ];
  for (const tc of accepted) {
    it(tc.name, async () => {
      const r = await attestLeafOf(tc.issuer(), tc.leaf);
      assert.match(r.agentId, /^spiffe:\/\/example\.org\/spire\/agent\/x509pop\/[0-9a-f]{40}$/);
    });
  }

  const refused: { name: string; issuer: () => TestCa; leaf?: LeafOptions; message: RegExp }[] = [
    {
      name: 'refuses a CA certificate issued by an intermediate with path length 0',
      issuer: () => popRoot().createIntermediate({ pathLen: 0 }).createIntermediate(),
      message: /intermediate certificate ".*" path length constraint 0 exceeded by 1 intermediates below it/,
    },
    {
      name: 'refuses two intermediates under a root with path length 1',
      issuer: () => popRoot({ pathLen: 1 }).createIntermediate().createIntermediate(),
      message: /CA certificate ".*" path length constraint 1 exceeded by 2 intermediates below it/,
    },
    {
      name: 'refuses two intermediates under an intermediate with path length 1',
      issuer: () => popRoot().createIntermediate({ pathLen: 1 }).createIntermediate().createIntermediate(),
      message: /path length constraint 1 exceeded by 2 intermediates below it/,
    },
    {
      name: 'refuses an intermediate whose keyUsage lacks keyCertSign',
      issuer: () => popRoot().createIntermediate({ keyUsage: ['digitalSignature', 'cRLSign'] }),
      message: /intermediate certificate ".*" key usage lacks keyCertSign/,
    },
    {
      name: 'refuses a root whose keyUsage lacks keyCertSign',
      issuer: () => popRoot({ keyUsage: ['cRLSign'] }).createIntermediate(),
      message: /CA certificate ".*" key usage lacks keyCertSign/,
    },
    {
      name: 'refuses a leaf whose keyUsage lacks digitalSignature',
      issuer: () => popRoot().createIntermediate(),
      leaf: { keyUsage: ['keyEncipherment', 'keyAgreement'] },
      message: /leaf certificate key usage lacks digitalSignature/,
    },
  ];
  for (const tc of refused) {
    it(tc.name, async () => {
      await assert.rejects(attestLeafOf(tc.issuer(), tc.leaf), {
        code: 'ERR_NODE_ATTESTATION_FAILED',
        message: tc.message,
      });
    });
  }

  it('refuses a malformed payload as invalid', async () => {
    const attestor = createX509PopAttestor({ trustDomain: td, caCertificates: [rootCert] });
    await assert.rejects(
      attestor.attest(Buffer.from('not json'), async () => Buffer.alloc(0)),
      {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: /payload is not JSON/,
      },
    );
  });
});
