/**
 * Library benchmarks: SPIFFE ID parsing, X509-SVID verification and JWT-SVID validation, each beside a
 * floor measured in the same run with raw node:crypto / platform operations.
 */
import { createSign, verify as cryptoVerify, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { type JwtBundle, X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { JwtSvid, verifyX509SvidSync } from '@tessera/spiffe/svid';
import { TestCa, TestJwtAuthority } from '@tessera/testing';
import { opsPerSecond, opsPerSecondSync, rate, type Suite } from '../harness.js';

const ID = 'spiffe://example.org/ns/prod/sa/payments-api';

export const spiffeIdParse: Suite = {
  name: 'spiffeid.parse',
  async run() {
    let sink = 0;
    const floor = opsPerSecondSync(() => {
      sink += new URL(ID).pathname.length;
    });
    const value = opsPerSecondSync(() => {
      sink += SpiffeId.fromString(ID).path.length;
    });
    if (sink < 0) console.log(sink);
    return [rate('spiffeid.parse', value, floor, 'WHATWG new URL() of the same string')];
  },
};

export const x509SvidVerify: Suite = {
  name: 'x509svid.verify',
  async run() {
    const ca = TestCa.create({ trustDomain: 'example.org' });
    const svid = ca.issueX509Svid({ spiffeId: ID });
    const leafDer = Buffer.from(svid.certificates[0]!.raw);
    const bundle = X509Bundle.fromAuthorities(TrustDomain.fromString('example.org'), [ca.certificate]);
    const caKey = ca.certificate.publicKey;
    const floor = opsPerSecondSync(() => {
      const c = new X509Certificate(leafDer);
      if (!c.verify(caKey)) throw new Error('floor: verify failed');
    });
    const value = opsPerSecondSync(() => {
      verifyX509SvidSync([new X509Certificate(leafDer)], bundle);
    });
    return [rate('x509svid.verify', value, floor, 'new X509Certificate + one verify', 'ratio >= 0.5')];
  },
};

export const jwtSvidValidate: Suite = {
  name: 'jwtsvid.validate',
  async run() {
    const now = new Date();
    const authority = new TestJwtAuthority('example.org', { now, keyTypes: ['ec-p256'] });
    const bundle: JwtBundle = authority.jwtBundle();
    const token = authority.mint({ sub: ID, aud: ['bench'], exp: new Date(now.getTime() + 3600_000) });
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.from(token.slice(0, token.lastIndexOf('.')));
    const sig = createSign('sha256').update(data).sign({ key: privateKey, dsaEncoding: 'ieee-p1363' });
    const floor = opsPerSecondSync(() => {
      if (!cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig))
        throw new Error('x');
    });
    const value = await opsPerSecond(() => JwtSvid.parseAndValidate(token, bundle, ['bench'], { now }));
    return [
      rate('jwtsvid.validate', value, floor, 'one crypto.verify of an ES256 signature', 'ratio >= 0.5'),
    ];
  },
};
