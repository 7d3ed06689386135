import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildCsr, spkiDer } from '@tessera/common/x509';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509SvidSync } from '@tessera/spiffe/svid';
import type { Datastore } from '../datastore/datastore.js';
import { openDatastore } from '../datastore/index.js';
import { createMemoryKeyManager } from '../keymanager/memory.js';
import { type CaManager, createCaManager, type SignedX509Svid } from './ca-manager.js';
import { IssuancePool } from './issuance-pool.js';

const td = TrustDomain.fromString('example.org');
const T0 = Date.UTC(2030, 0, 1);
const clock = { t: T0, now: () => new Date(clock.t) };

const dirs: string[] = [];
const stores: Datastore[] = [];
const cas: CaManager[] = [];
after(async () => {
  for (const ca of cas) await ca.close();
  for (const ds of stores) await ds.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function newCa(issuanceWorkers: number): Promise<CaManager> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-issuance-'));
  dirs.push(dir);
  const ds = await openDatastore(`sqlite:${join(dir, 'ds.sqlite3')}`);
  stores.push(ds);
  const ca = await createCaManager({
    trustDomain: td,
    keyManager: createMemoryKeyManager(),
    datastore: ds,
    clock,
    caTtlSeconds: 3600,
    issuanceWorkers,
  });
  cas.push(ca);
  return ca;
}

function keys(n: number): KeyObject[] {
  return Array.from({ length: n }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
}

/** A CSR whose signature no longer matches its content (one byte of the signature flipped). */
function tamperedCsr(key: KeyObject): Buffer {
  const der = Buffer.from(buildCsr(key));
  der[der.length - 3] = (der[der.length - 3] as number) ^ 0x01;
  return der;
}

function ok(r: SignedX509Svid | Error): SignedX509Svid {
  if (r instanceof Error) throw r;
  return r;
}

const modes = [
  { name: 'in-process', workers: 0 },
  { name: 'on two workers', workers: 2 },
];

describe('CA batch issuance from CSRs', () => {
  for (const mode of modes) {
    it(`issues each request's key and ID in request order (${mode.name})`, async () => {
      const ca = await newCa(mode.workers);
      const ks = keys(40);
      const requests = ks.map((k, i) => ({
        spiffeId: `spiffe://example.org/svc-${i}`,
        csr: buildCsr(k),
        ttlSeconds: 600,
      }));
      const results = await ca.signX509SvidCsrs(requests);
      assert.equal(results.length, 40);
      results.forEach((r, i) => {
        const svid = ok(r);
        const leaf = new X509Certificate(svid.chain[0] as Buffer);
        assert.deepEqual(
          spkiDer(leaf.publicKey),
          spkiDer(ks[i] as KeyObject),
          `result ${i} carries the key of request ${i}`,
        );
        assert.equal(leaf.subjectAltName, `URI:spiffe://example.org/svc-${i}`);
        assert.equal(new Date(leaf.validFrom).getTime(), T0 - 10_000);
        assert.equal(svid.notAfter.getTime(), T0 + 600_000);
        assert.equal(BigInt(`0x${leaf.serialNumber}`).toString(), svid.serialNumber);
        assert.equal(svid.authorityId, ca.showAuthorities('x509').active?.authorityId);
        const verified = verifyX509SvidSync([leaf], ca.bundle(), { now: clock.now() });
        assert.equal(verified.id.toString(), `spiffe://example.org/svc-${i}`);
      });
    });

    it(`fails only the bad requests of a batch, with the CA's codes and messages (${mode.name})`, async () => {
      const ca = await newCa(mode.workers);
      const [a, b, c, d] = keys(4) as [KeyObject, KeyObject, KeyObject, KeyObject];
      const results = await ca.signX509SvidCsrs([
        { spiffeId: 'spiffe://example.org/good-1', csr: buildCsr(a), ttlSeconds: 60 },
        { spiffeId: 'spiffe://example.org/tampered', csr: tamperedCsr(b), ttlSeconds: 60 },
        { spiffeId: 'spiffe://example.org/garbage', csr: Buffer.from('not a csr'), ttlSeconds: 60 },
        { spiffeId: 'spiffe://other.org/foreign', csr: buildCsr(c), ttlSeconds: 60 },
        { spiffeId: 'spiffe://example.org/no-ttl', csr: buildCsr(c), ttlSeconds: 0 },
        { spiffeId: 'spiffe://example.org/bad-dns', csr: buildCsr(c), ttlSeconds: 60, dnsNames: ['a..b'] },
        { spiffeId: 'spiffe://example.org/good-2', csr: buildCsr(d), ttlSeconds: 60, dnsNames: ['web.test'] },
      ]);
      assert.equal(results.length, 7);
      const expected: [number, string, RegExp][] = [
        [1, 'ERR_X509SVID_INVALID', /^csr: signature does not verify$/],
        [2, 'ERR_X509SVID_INVALID', /^csr: malformed request/],
        [
          3,
          'ERR_CA_INVALID',
          /^ca: "spiffe:\/\/other\.org\/foreign" is not a member of trust domain "example\.org"$/,
        ],
        [4, 'ERR_CA_INVALID', /^ca: ttl must be a positive number of seconds, got 0$/],
        [5, 'ERR_CA_INVALID', /^ca: invalid dns name "a\.\.b"$/],
      ];
      for (const [i, code, message] of expected) {
        const r = results[i];
        assert.ok(r instanceof Error, `request ${i} fails`);
        assert.equal((r as Error & { code?: string }).code, code, `request ${i}`);
        assert.match(r.message, message);
      }
      const good1 = new X509Certificate(ok(results[0] as SignedX509Svid).chain[0] as Buffer);
      assert.deepEqual(spkiDer(good1.publicKey), spkiDer(a));
      const good2 = new X509Certificate(ok(results[6] as SignedX509Svid).chain[0] as Buffer);
      assert.deepEqual(spkiDer(good2.publicKey), spkiDer(d));
      assert.equal(good2.subjectAltName, 'DNS:web.test, URI:spiffe://example.org/good-2');
      assert.equal(good2.subject, 'CN=web.test');
    });

    it(`signs with the new authority after a rotation (${mode.name})`, async () => {
      const ca = await newCa(mode.workers);
      const csrs = keys(20).map((k) => ({
        spiffeId: 'spiffe://example.org/r',
        csr: buildCsr(k),
        ttlSeconds: 60,
      }));
      const before = (await ca.signX509SvidCsrs(csrs)).map(ok);
      const prepared = await ca.prepareAuthority('x509');
      await ca.activateAuthority('x509', prepared.authorityId);
      const later = (await ca.signX509SvidCsrs(csrs)).map(ok);
      for (const s of before) assert.notEqual(s.authorityId, prepared.authorityId);
      for (const s of later) {
        assert.equal(s.authorityId, prepared.authorityId);
        const leaf = new X509Certificate(s.chain[0] as Buffer);
        assert.ok(leaf.checkIssued(ca.activeX509Authority()));
        assert.ok(leaf.verify(ca.activeX509Authority().publicKey));
      }
    });
  }

  it('issues in-process after close (the workers are gone)', async () => {
    const ca = await newCa(2);
    const csrs = keys(16).map((k) => ({
      spiffeId: 'spiffe://example.org/c',
      csr: buildCsr(k),
      ttlSeconds: 60,
    }));
    (await ca.signX509SvidCsrs(csrs)).map(ok);
    await ca.close();
    const results = (await ca.signX509SvidCsrs(csrs)).map(ok);
    assert.equal(results.length, 16);
  });

  it('refuses a negative or fractional number of workers', async () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      await assert.rejects(() => newCa(bad), {
        name: 'RangeError',
        message: /^ca: issuanceWorkers must be a non-negative integer/,
      });
    }
  });
});

describe('IssuancePool', () => {
  it('rejects a batch whose authority key does not match its certificate, and every batch once closed', async () => {
    const ca = await newCa(0);
    const pool = new IssuancePool(1);
    try {
      const cert = ca.activeX509Authority();
      const job = {
        csr: buildCsr(keys(1)[0] as KeyObject),
        spiffeId: 'spiffe://example.org/p',
        notBeforeMs: T0,
        notAfterMs: T0 + 60_000,
        dnsNames: [],
      };
      await assert.rejects(
        () =>
          pool.issue({ id: 'wrong', certificateDer: cert.raw, privateKey: keys(1)[0] as KeyObject }, [job]),
        /issuer private key does not match the issuer certificate/,
      );
      assert.throws(() => new IssuancePool(0), { name: 'RangeError', message: /positive integer, got 0/ });
    } finally {
      await pool.close();
    }
    await assert.rejects(
      () => pool.issue({ id: 'x', certificateDer: Buffer.alloc(0), privateKey: keys(1)[0] as KeyObject }, []),
      /issuance pool is closed/,
    );
  });
});
