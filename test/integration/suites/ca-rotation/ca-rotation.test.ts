/**
 * ca-rotation: with `ca_ttl: 1m` and 10 s SVIDs the built server rotates its X.509 CA several times on its own;
 * every SVID minted during the run verifies against the bundle current when it was minted, and keeps verifying
 * against every later bundle until it expires (old authorities stay in the bundle while anything they signed
 * is valid).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GetBundleRequest, MintX509SVIDRequest } from '@tessera/common/api';
import { buildCsr, generateKey } from '@tessera/common/x509';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509Svid } from '@tessera/spiffe/svid';
import { adminClients } from '../../harness/api.js';
import { TesseraServer } from '../../harness/server.js';

const RUN_SECONDS = Number(process.env.TESSERA_IT_ROTATION_SECONDS ?? 170);
const MIN_AUTHORITIES = 3;

interface Minted {
  readonly chain: X509Certificate[];
  readonly at: Date;
}

describe('ca-rotation: every SVID verifies against the bundle current at its time', {
  timeout: (RUN_SECONDS + 120) * 1000,
}, () => {
  let server: TesseraServer;
  const td = TrustDomain.fromString('example.org');
  const minted: Minted[] = [];
  const sequences: bigint[] = [];
  let checks = 0;

  before(async () => {
    server = await TesseraServer.start({
      config: { ca_ttl: '1m', default_x509_svid_ttl: '10s', default_jwt_svid_ttl: '10s' },
    });
  });
  after(async () => {
    await server?.stop();
  });

  it(`01 mints an SVID every second for ${RUN_SECONDS} s and verifies all unexpired SVIDs against each new bundle`, async () => {
    const c = adminClients(server);
    try {
      const end = Date.now() + RUN_SECONDS * 1000;
      let n = 0;
      while (Date.now() < end) {
        const key = generateKey('ec-p256');
        const csr = buildCsr(key.privateKey, { uris: [`spiffe://example.org/rot/${n++}`] });
        const res = await c.svid.mintX509Svid(MintX509SVIDRequest.fromPartial({ csr }));
        const at = new Date();
        const b = await c.bundle.getBundle(GetBundleRequest.fromPartial({}));
        sequences.push(b.sequenceNumber);
        const bundle = X509Bundle.fromAuthorities(
          td,
          b.x509Authorities.map((a) => new X509Certificate(a.asn1)),
        );
        const chain = (res.svid?.certChain ?? []).map((d) => new X509Certificate(d));
        assert.ok(chain.length > 0, 'no certificate minted');
        minted.push({ chain, at });
        for (const m of minted) {
          const leaf = m.chain[0] as X509Certificate;
          if (Date.parse(leaf.validTo) <= at.getTime() + 1000) continue;
          try {
            await verifyX509Svid(m.chain, bundle, { now: at });
            checks++;
          } catch (err) {
            assert.fail(
              `SVID minted at ${m.at.toISOString()} (serial ${leaf.serialNumber}) does not verify against the bundle of ${at.toISOString()}: ${String(err)}`,
            );
          }
          const signer = bundle
            .x509Authorities()
            .find((a) => leaf.checkIssued(a) && leaf.verify(a.publicKey));
          if (signer !== undefined) {
            assert.ok(
              Date.parse(leaf.validTo) <= Date.parse(signer.validTo),
              'an SVID outlives its signing CA',
            );
          }
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      c.close();
    }
  });

  it(`02 observed at least ${MIN_AUTHORITIES} signing authorities (rotations happened)`, (t) => {
    const signers = new Set(minted.map((m) => akiOf(m.chain[0] as X509Certificate)));
    t.diagnostic(`${minted.length} SVIDs, ${signers.size} signing authorities, ${checks} verifications`);
    assert.ok(
      signers.size >= MIN_AUTHORITIES,
      `only ${signers.size} signing authorities in ${RUN_SECONDS} s`,
    );
    assert.ok(checks > minted.length, `only ${checks} verifications`);
  });

  it('03 the bundle sequence number never went down and grew with the rotations', () => {
    for (let i = 1; i < sequences.length; i++) {
      assert.ok((sequences[i] as bigint) >= (sequences[i - 1] as bigint), 'spiffe_sequence went down');
    }
    const first = sequences[0] ?? 0n;
    const last = sequences.at(-1) ?? 0n;
    assert.ok(last - first >= BigInt(MIN_AUTHORITIES - 1), `sequence ${first} -> ${last}`);
  });
});

/** The authority key identifier of a certificate (hex), naming its signing key. */
function akiOf(cert: X509Certificate): string {
  // Node exposes no AKI accessor: find the extension OID 2.5.29.35 in the DER and take its keyIdentifier.
  const der = cert.raw;
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  const i = der.indexOf(oid);
  if (i < 0) return cert.issuer;
  const rest = der.subarray(i + oid.length);
  const keyIdTag = rest.indexOf(0x80);
  const len = rest[keyIdTag + 1] ?? 0;
  return rest.subarray(keyIdTag + 2, keyIdTag + 2 + len).toString('hex');
}
