import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { JWT_SVID_ALGORITHMS, JwtSvid } from '@tessera/spiffe/svid';
import { JWT_TEST_NOW, type JwtKeyType, TestJwtAuthority } from '@tessera/testing';
import { jwtVerify, SignJWT } from 'jose';

// Independent implementations on both sides: tokens signed by jose and by the openssl CLI must validate,
// and tokens minted by TestJwtAuthority must verify under jose.

const ca = new TestJwtAuthority('example.org');
const bundle = ca.jwtBundle();
const AUD = ca.defaultAudience();
const SUB = 'spiffe://example.org/workload';
const NOW_S = Math.floor(JWT_TEST_NOW.getTime() / 1000);

function keyTypeFor(alg: string): JwtKeyType {
  if (alg === 'ES384') return 'ec-p384';
  if (alg === 'ES512') return 'ec-p521';
  if (alg === 'ES256') return 'ec-p256';
  return 'rsa-2048';
}

describe('JWT-SVID interoperability', () => {
  for (const alg of JWT_SVID_ALGORITHMS) {
    it(`validates a ${alg} token signed by jose`, async () => {
      const key = ca.key(keyTypeFor(alg));
      const token = await new SignJWT({})
        .setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
        .setSubject(SUB)
        .setAudience(AUD)
        .setIssuedAt(NOW_S)
        .setExpirationTime(NOW_S + 120)
        .sign(key.privateKey);
      const svid = await JwtSvid.parseAndValidate(token, bundle, [AUD], { now: JWT_TEST_NOW });
      assert.equal(svid.id.toString(), SUB);
      assert.deepEqual(svid.audience, [AUD]);
    });

    it(`mints a ${alg} token that jose verifies`, async () => {
      const token = ca.mint({ alg });
      const { payload, protectedHeader } = await jwtVerify(token, ca.key(keyTypeFor(alg)).publicKey, {
        algorithms: [alg],
        audience: AUD,
        currentDate: JWT_TEST_NOW,
      });
      assert.equal(payload.sub, SUB);
      assert.equal(protectedHeader.kid, ca.key(keyTypeFor(alg)).kid);
    });
  }

  describe('with the openssl CLI as signer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-jwt-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    const cases: { alg: string; args: string[]; ec?: number }[] = [
      { alg: 'RS256', args: ['-sha256'] },
      { alg: 'PS384', args: ['-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:48'] },
      { alg: 'ES256', args: ['-sha256'], ec: 32 },
      { alg: 'ES512', args: ['-sha512'], ec: 66 },
    ];
    for (const tc of cases) {
      it(`validates a ${tc.alg} token signed by openssl dgst`, () => {
        const key = ca.key(keyTypeFor(tc.alg));
        const keyFile = join(dir, `${tc.alg}.pem`);
        writeFileSync(keyFile, key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
        const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
        const input = `${enc({ alg: tc.alg, kid: key.kid })}.${enc({ sub: SUB, aud: AUD, exp: NOW_S + 60 })}`;
        const dataFile = join(dir, `${tc.alg}.txt`);
        writeFileSync(dataFile, input);
        let sig: Buffer = execFileSync('openssl', ['dgst', ...tc.args, '-sign', keyFile, dataFile]);
        if (tc.ec !== undefined) sig = derToP1363(sig, tc.ec);
        const token = `${input}.${sig.toString('base64url')}`;
        const svid = JwtSvid.parseAndValidateSync(token, bundle, [AUD], { now: JWT_TEST_NOW });
        assert.equal(svid.id.toString(), SUB);
        // The same bytes with one signature bit flipped must not verify.
        const bad = Buffer.from(sig);
        bad[5] = (bad[5] as number) ^ 1;
        assert.throws(
          () =>
            JwtSvid.parseAndValidateSync(`${input}.${bad.toString('base64url')}`, bundle, [AUD], {
              now: JWT_TEST_NOW,
            }),
          { code: 'ERR_JWTSVID_INVALID', message: /error in cryptographic primitive/ },
        );
      });
    }
  });
});

/** Converts an ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs) into r || s of `size` bytes each. */
function derToP1363(der: Buffer, size: number): Buffer {
  let pos = 0;
  const readLength = (): number => {
    let len = der[pos++] as number;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = (len << 8) | (der[pos++] as number);
    }
    return len;
  };
  assert.equal(der[pos++], 0x30);
  readLength();
  const out = Buffer.alloc(size * 2);
  for (let k = 0; k < 2; k++) {
    assert.equal(der[pos++], 0x02);
    const len = readLength();
    let v = der.subarray(pos, pos + len);
    pos += len;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    v.copy(out, k * size + (size - v.length));
  }
  return out;
}
