import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { marshalX509PopPayload, signX509PopChallenge } from '@tessera/common/attestation';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
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
