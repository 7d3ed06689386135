import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { buildCertificate, CA_KEY_USAGE, derToPem, generateKey } from '@tessera/common/x509';
import type { SpiffeBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { JwtSvid, verifyX509SvidSync } from '@tessera/spiffe/svid';
import { selfSignedCertArgs } from '@tessera/testing';
import type { Datastore } from '../datastore/datastore.js';
import { openDatastore } from '../datastore/index.js';
import { createDiskKeyManager } from '../keymanager/disk.js';
import type { KeyManager } from '../keymanager/key-manager.js';
import { createMemoryKeyManager } from '../keymanager/memory.js';
import { type CaManager, type CaManagerConfig, createCaManager } from './ca-manager.js';
import { createDiskUpstreamAuthority } from './upstream-disk.js';

const td = TrustDomain.fromString('example.org');
const T0 = Date.UTC(2030, 0, 1);

class TestClock {
  t: number;
  constructor(t = T0) {
    this.t = t;
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

const dirs: string[] = [];
const stores: Datastore[] = [];
const cas: CaManager[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-ca-'));
  dirs.push(d);
  return d;
}
async function sqlite(file = join(tempDir(), 'ds.sqlite3')): Promise<Datastore> {
  const ds = await openDatastore(`sqlite:${file}`);
  stores.push(ds);
  return ds;
}
after(async () => {
  for (const ca of cas) await ca.close();
  for (const ds of stores) await ds.close().catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function newCa(
  over: Partial<CaManagerConfig> & { clock: TestClock },
  km: KeyManager = createMemoryKeyManager(),
): Promise<CaManager> {
  const ca = await createCaManager({
    trustDomain: td,
    keyManager: km,
    datastore: over.datastore ?? (await sqlite()),
    caTtlSeconds: 60,
    ...over,
  });
  cas.push(ca);
  return ca;
}

function p256Public() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
}

function certs(chain: readonly Buffer[]): X509Certificate[] {
  return chain.map((d) => new X509Certificate(d));
}

function openssl(args: string[], cwd?: string): string {
  return execFileSync('openssl', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
}

describe('CA rotation', () => {
  it('keeps every issued SVID verifiable through many rotations of a 60 s CA', async () => {
    const clock = new TestClock();
    const ca = await newCa({ clock, jwtIssuer: 'https://issuer.example.org' });
    const sequences: bigint[] = [];
    ca.onBundleChange((b) => sequences.push(b.sequenceNumber ?? -1n));
    const x509Ids = new Set<string>();
    const jwtIds = new Set<string>();
    const live: { chain: X509Certificate[]; notAfter: number }[] = [];
    const tokens: { token: string; exp: number }[] = [];
    let verified = 0;
    for (let step = 0; step < 240; step++) {
      clock.advance(5);
      await ca.tick();
      const now = clock.now();
      const bundle: SpiffeBundle = ca.bundle();
      // Nothing expired stays in the bundle; nothing beyond active + prepared + old-still-valid.
      for (const c of bundle.x509Authorities()) assert.ok(new Date(c.validTo).getTime() >= now.getTime());
      assert.ok(
        bundle.x509Authorities().length <= 3,
        `step ${step}: ${bundle.x509Authorities().length} roots`,
      );
      assert.ok(bundle.jwtAuthorities().size <= 3);
      const state = ca.showAuthorities('x509');
      x509Ids.add(state.active?.authorityId ?? '');
      jwtIds.add(ca.showAuthorities('jwt').active?.authorityId ?? '');

      const svid = ca.signX509Svid({
        spiffeId: 'spiffe://example.org/web',
        publicKey: p256Public(),
        ttlSeconds: 3600,
      });
      assert.equal(svid.authorityId, state.active?.authorityId);
      assert.ok(svid.notAfter.getTime() <= (state.active?.notAfter.getTime() ?? 0), 'svid outlives its ca');
      live.push({ chain: certs(svid.chain), notAfter: svid.notAfter.getTime() });
      const jwt = ca.mintJwtSvid({
        spiffeId: 'spiffe://example.org/web',
        audience: ['svc'],
        ttlSeconds: 3600,
      });
      tokens.push({ token: jwt.token, exp: jwt.expiresAt.getTime() });

      for (const s of live) {
        if (s.notAfter < now.getTime()) continue;
        assert.equal(verifyX509SvidSync(s.chain, bundle, { now }).id.toString(), 'spiffe://example.org/web');
        verified++;
      }
      for (const t of tokens) {
        if (t.exp <= now.getTime()) continue;
        const parsed = await JwtSvid.parseAndValidate(t.token, bundle, ['svc'], { now });
        assert.equal(parsed.id.toString(), 'spiffe://example.org/web');
        assert.equal(parsed.claims.iss, 'https://issuer.example.org');
      }
    }
    // 20 minutes of a 70 s (60 s + 10 s backdate) lifetime activating every ~58 s.
    assert.ok(x509Ids.size >= 18, `only ${x509Ids.size} x509 authorities`);
    assert.ok(jwtIds.size >= 18, `only ${jwtIds.size} jwt authorities`);
    assert.ok(verified > 1000);
    for (let i = 1; i < sequences.length; i++) {
      assert.equal(sequences[i], (sequences[i - 1] ?? 0n) + 1n, 'sequence bumped by one per bundle change');
    }
    assert.ok(sequences.length >= 2 * x509Ids.size);
  });

  it('prepares at half of the lifetime and activates at one sixth left', async () => {
    const clock = new TestClock();
    const ca = await newCa({ clock });
    const first = ca.showAuthorities('x509').active;
    const firstCert = ca.activeX509Authority();
    assert.ok(first);
    assert.equal(first.notBefore.getTime(), T0 - 10_000);
    assert.equal(first.notAfter.getTime(), T0 + 60_000);
    assert.equal(ca.showAuthorities('x509').prepared, undefined);
    clock.t = T0 + 24_000; // lifetime 70 s: half is at T0 + 25 s
    await ca.tick();
    assert.equal(ca.showAuthorities('x509').prepared, undefined);
    clock.t = T0 + 25_000;
    await ca.tick();
    const prepared = ca.showAuthorities('x509').prepared;
    assert.ok(prepared);
    assert.equal(ca.bundle().x509Authorities().length, 2, 'the prepared ca is published at once');
    clock.t = T0 + 48_000; // one sixth left at T0 + 60 - 11.67 s = T0 + 48.33 s
    await ca.tick();
    assert.equal(ca.showAuthorities('x509').active?.authorityId, first.authorityId);
    clock.t = T0 + 48_400;
    await ca.tick();
    const state = ca.showAuthorities('x509');
    assert.equal(state.active?.authorityId, prepared.authorityId);
    assert.deepEqual(
      state.old.map((o) => o.authorityId),
      [first.authorityId],
    );
    clock.t = T0 + 60_000;
    await ca.tick();
    assert.equal(ca.showAuthorities('x509').old.length, 1, 'kept while its svids may still be valid');
    clock.t = T0 + 61_000;
    await ca.tick();
    assert.equal(ca.showAuthorities('x509').old.length, 0);
    // Now active (prepared at T0 + 25 s) + the next one (prepared at its half-life, T0 + 50 s).
    const fingerprints = ca
      .bundle()
      .x509Authorities()
      .map((c) => c.fingerprint256);
    assert.equal(fingerprints.length, 2);
    assert.ok(!fingerprints.includes(firstCert.fingerprint256), 'the expired ca left the bundle');
  });
});

describe('CA restart', () => {
  it('resumes the same authorities with the disk key manager and a SQLite datastore', async () => {
    const dir = tempDir();
    const dbFile = join(dir, 'ds.sqlite3');
    const clock = new TestClock();
    const ds1 = await sqlite(dbFile);
    const ca1 = await newCa(
      { clock, datastore: ds1, caTtlSeconds: 3600 },
      await createDiskKeyManager({ directory: join(dir, 'keys') }),
    );
    clock.advance(2000); // past half-life: a prepared authority exists too
    await ca1.tick();
    const x509 = ca1.showAuthorities('x509');
    const jwt = ca1.showAuthorities('jwt');
    assert.ok(x509.prepared);
    const svid = ca1.signX509Svid({
      spiffeId: 'spiffe://example.org/db',
      publicKey: p256Public(),
      ttlSeconds: 600,
    });
    const token = ca1.mintJwtSvid({
      spiffeId: 'spiffe://example.org/db',
      audience: ['a', 'b'],
      ttlSeconds: 600,
    }).token;
    const bundle1 = ca1.bundle();
    await ca1.close();
    await ds1.close();

    clock.advance(1);
    const ds2 = await sqlite(dbFile);
    const ca2 = await newCa(
      { clock, datastore: ds2, caTtlSeconds: 3600 },
      await createDiskKeyManager({ directory: join(dir, 'keys') }),
    );
    assert.deepEqual(ca2.showAuthorities('x509'), x509);
    assert.deepEqual(ca2.showAuthorities('jwt'), jwt);
    assert.ok(ca2.bundle().equals(bundle1), 'same bundle, same sequence');
    const now = clock.now();
    verifyX509SvidSync(certs(svid.chain), ca2.bundle(), { now });
    await JwtSvid.parseAndValidate(token, ca2.bundle(), ['b'], { now });
    const again = ca2.signX509Svid({
      spiffeId: 'spiffe://example.org/db',
      publicKey: p256Public(),
      ttlSeconds: 600,
    });
    assert.equal(again.authorityId, svid.authorityId);
    assert.equal(certs(again.chain)[0]?.issuer, certs(svid.chain)[0]?.issuer);
    // The prepared authority is activated on schedule with the key it was prepared with.
    clock.advance(1200);
    await ca2.tick();
    assert.equal(ca2.showAuthorities('x509').active?.authorityId, x509.prepared.authorityId);
    verifyX509SvidSync(
      certs(
        ca2.signX509Svid({ spiffeId: 'spiffe://example.org/db', publicKey: p256Public(), ttlSeconds: 60 })
          .chain,
      ),
      ca2.bundle(),
      { now: clock.now() },
    );
  });

  it('starts new authorities with a memory key manager but keeps the old ones in the stored bundle', async () => {
    const file = join(tempDir(), 'ds.sqlite3');
    const clock = new TestClock();
    const ds = await sqlite(file);
    const ca1 = await newCa({ clock, datastore: ds, caTtlSeconds: 3600 });
    const svid = ca1.signX509Svid({
      spiffeId: 'spiffe://example.org/x',
      publicKey: p256Public(),
      ttlSeconds: 600,
    });
    await ca1.close();
    const ca2 = await newCa({ clock, datastore: ds, caTtlSeconds: 3600 });
    assert.notEqual(ca2.showAuthorities('x509').active?.authorityId, svid.authorityId);
    assert.equal(ca2.bundle().x509Authorities().length, 2);
    assert.equal(ca2.bundle().sequenceNumber, 2n);
    verifyX509SvidSync(certs(svid.chain), ca2.bundle(), { now: clock.now() });
  });
});

describe('CA local authority operations', () => {
  for (const kind of ['x509', 'jwt'] as const) {
    it(`prepares, activates, taints and revokes a ${kind} authority`, async () => {
      const clock = new TestClock();
      const ds = await sqlite();
      const ca = await newCa({ clock, datastore: ds, caTtlSeconds: 3600 });
      const tainted: string[] = [];
      ca.onAuthorityTainted((e) => tainted.push(`${e.kind}:${e.authorityId}`));
      const first = ca.showAuthorities(kind).active?.authorityId ?? '';
      const count = () =>
        kind === 'x509' ? ca.bundle().x509Authorities().length : ca.bundle().jwtAuthorities().size;

      await assert.rejects(ca.activateAuthority(kind, 'nope'), {
        code: 'ERR_CA_PRECONDITION',
        message: `ca: no prepared ${kind} authority`,
      });
      const prepared = await ca.prepareAuthority(kind);
      assert.equal(prepared.status, 'prepared');
      assert.equal(count(), 2);
      await assert.rejects(ca.activateAuthority(kind, first), {
        code: 'ERR_CA_PRECONDITION',
        message: new RegExp(`is not the prepared ${kind} authority`),
      });
      await assert.rejects(ca.taintAuthority(kind, first), {
        code: 'ERR_CA_PRECONDITION',
        message: new RegExp(`^ca: the active ${kind} authority ".+" cannot be tainted$`),
      });
      await assert.rejects(ca.taintAuthority(kind, prepared.authorityId), {
        code: 'ERR_CA_PRECONDITION',
        message: /is prepared$/,
      });
      await assert.rejects(ca.taintAuthority(kind, 'unknown'), {
        code: 'ERR_CA_INVALID',
        message: `ca: no ${kind} authority "unknown"`,
      });
      const activated = await ca.activateAuthority(kind, prepared.authorityId);
      assert.equal(activated.status, 'active');
      assert.equal(ca.showAuthorities(kind).old[0]?.authorityId, first);
      if (kind === 'x509') {
        const svid = ca.signX509Svid({
          spiffeId: 'spiffe://example.org/w',
          publicKey: p256Public(),
          ttlSeconds: 60,
        });
        assert.equal(svid.authorityId, prepared.authorityId);
      } else {
        assert.equal(
          ca.mintJwtSvid({ spiffeId: 'spiffe://example.org/w', audience: ['x'], ttlSeconds: 60 }).kid,
          prepared.authorityId,
        );
      }
      await assert.rejects(ca.revokeAuthority(kind, first), {
        code: 'ERR_CA_PRECONDITION',
        message: new RegExp(`^ca: only a tainted ${kind} authority can be revoked`),
      });
      const seq = ca.bundle().sequenceNumber ?? 0n;
      const t = await ca.taintAuthority(kind, first);
      assert.equal(t.tainted, true);
      assert.deepEqual(tainted, [`${kind}:${first}`]);
      assert.deepEqual(ca.taintedAuthorities()[kind], [first]);
      assert.equal(count(), 2, 'a tainted authority stays in the bundle');
      assert.equal(ca.bundle().sequenceNumber, seq);
      await assert.rejects(ca.taintAuthority(kind, first), {
        code: 'ERR_CA_PRECONDITION',
        message: /already tainted/,
      });
      await ca.revokeAuthority(kind, first);
      assert.equal(count(), 1);
      assert.equal(ca.bundle().sequenceNumber, seq + 1n);
      assert.deepEqual(ca.showAuthorities(kind).old, []);
      const stored = await ds.fetchBundle('example.org');
      assert.equal(stored?.sequence, Number(seq + 1n));
      assert.equal(Buffer.from(stored?.data ?? []).toString(), ca.bundle().marshal());
    });
  }

  it('replaces a prepared authority and removes it from the bundle', async () => {
    const clock = new TestClock();
    const ca = await newCa({ clock, caTtlSeconds: 3600 });
    const p1 = await ca.prepareAuthority('x509');
    const p2 = await ca.prepareAuthority('x509');
    assert.notEqual(p1.authorityId, p2.authorityId);
    assert.equal(ca.bundle().x509Authorities().length, 2);
    assert.equal(ca.showAuthorities('x509').prepared?.authorityId, p2.authorityId);
  });
});

describe('CA issuance', () => {
  it('issues X509-SVIDs backdated 10 s and capped at the CA lifetime', async () => {
    const clock = new TestClock();
    const ca = await newCa({ clock, caTtlSeconds: 3600 });
    clock.advance(0.5);
    const svid = ca.signX509Svid({
      spiffeId: 'spiffe://example.org/a',
      publicKey: p256Public(),
      ttlSeconds: 600,
    });
    const [leaf] = certs(svid.chain);
    assert.equal(svid.chain.length, 1, 'the root is not sent');
    assert.equal(
      new Date(leaf?.validFrom ?? '').getTime(),
      T0 - 10_000 + 0,
      'backdated 10 s (second precision)',
    );
    assert.equal(new Date(leaf?.validTo ?? '').getTime(), T0 + 600_000);
    assert.equal(BigInt(`0x${leaf?.serialNumber}`).toString(), svid.serialNumber);
    const long = ca.signX509Svid({
      spiffeId: 'spiffe://example.org/a',
      publicKey: p256Public(),
      ttlSeconds: 86_400,
    });
    assert.equal(long.notAfter.getTime(), T0 + 3_600_000);
    assert.equal(new Date(certs(long.chain)[0]?.validTo ?? '').getTime(), T0 + 3_600_000);
  });

  it('issues the server, agent and DNS-named SVIDs', async () => {
    const clock = new TestClock();
    const ca = await newCa({ clock, caTtlSeconds: 3600 });
    const key = p256Public();
    const server = certs(
      ca.signServerSvid({
        publicKey: key.export({ type: 'spki', format: 'der' }),
        ttlSeconds: 60,
        dnsNames: ['tessera.example.org', '*.svc.example.org'],
      }).chain,
    )[0];
    assert.equal(
      server?.subjectAltName,
      'DNS:tessera.example.org, DNS:*.svc.example.org, URI:spiffe://example.org/spire/server',
    );
    assert.equal(server?.subject, 'CN=tessera.example.org');
    verifyX509SvidSync(server ? [server] : [], ca.bundle(), { now: clock.now() });
    const agent = ca.signAgentSvid({
      agentId: 'spiffe://example.org/spire/agent/join_token/abc',
      publicKey: key,
      ttlSeconds: 60,
    });
    assert.equal(
      certs(agent.chain)[0]?.subjectAltName,
      'URI:spiffe://example.org/spire/agent/join_token/abc',
    );
  });

  const bad: {
    name: string;
    req: () => Parameters<CaManager['signX509Svid']>[0];
    code: string;
    message: RegExp;
  }[] = [
    {
      name: 'an ID of another trust domain',
      req: () => ({ spiffeId: 'spiffe://evil.org/a', publicKey: p256Public(), ttlSeconds: 60 }),
      code: 'ERR_CA_INVALID',
      message: /^ca: "spiffe:\/\/evil\.org\/a" is not a member of trust domain "example\.org"$/,
    },
    {
      name: 'the trust domain ID',
      req: () => ({ spiffeId: 'spiffe://example.org', publicKey: p256Public(), ttlSeconds: 60 }),
      code: 'ERR_CA_INVALID',
      message: /has no path/,
    },
    {
      name: 'an ID longer than 2048 bytes',
      req: () => ({
        spiffeId: `spiffe://example.org/${'a'.repeat(2048)}`,
        publicKey: p256Public(),
        ttlSeconds: 60,
      }),
      code: 'ERR_CA_INVALID',
      message: /longer than 2048/,
    },
    {
      name: 'a malformed ID',
      req: () => ({ spiffeId: 'spiffe://example.org/../x', publicKey: p256Public(), ttlSeconds: 60 }),
      code: 'ERR_SPIFFEID_INVALID',
      message: /^spiffeid: /,
    },
    {
      name: 'a zero TTL',
      req: () => ({ spiffeId: 'spiffe://example.org/a', publicKey: p256Public(), ttlSeconds: 0 }),
      code: 'ERR_CA_INVALID',
      message: /^ca: ttl must be a positive number of seconds, got 0$/,
    },
    {
      name: 'an RSA-1024 key',
      req: () => ({
        spiffeId: 'spiffe://example.org/a',
        publicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
        ttlSeconds: 60,
      }),
      code: 'ERR_CA_INVALID',
      message: /^ca: unsupported public key type "rsa"$/,
    },
    {
      name: 'bytes that are no public key',
      req: () => ({ spiffeId: 'spiffe://example.org/a', publicKey: new Uint8Array([48, 0]), ttlSeconds: 60 }),
      code: 'ERR_CA_INVALID',
      message: /^ca: public key is not a supported subject public key info$/,
    },
    {
      name: 'RSA-1024 key bytes',
      req: () => ({
        spiffeId: 'spiffe://example.org/a',
        publicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
          type: 'spki',
          format: 'der',
        }),
        ttlSeconds: 60,
      }),
      code: 'ERR_CA_INVALID',
      message: /^ca: public key is not a supported subject public key info$/,
    },
    {
      name: 'P-256 key bytes with a truncated point',
      req: () => ({
        spiffeId: 'spiffe://example.org/a',
        publicKey: Buffer.from(p256Public().export({ type: 'spki', format: 'der' })).subarray(0, 90),
        ttlSeconds: 60,
      }),
      code: 'ERR_CA_INVALID',
      message: /^ca: public key is not a supported subject public key info$/,
    },
    {
      name: 'a bad DNS name',
      req: () => ({
        spiffeId: 'spiffe://example.org/a',
        publicKey: p256Public(),
        ttlSeconds: 60,
        dnsNames: ['bad_name.example.org'],
      }),
      code: 'ERR_CA_INVALID',
      message: /^ca: invalid dns name "bad_name\.example\.org"$/,
    },
  ];
  for (const tc of bad) {
    it(`refuses ${tc.name}`, async () => {
      const ca = await newCa({ clock: new TestClock(), caTtlSeconds: 3600 });
      assert.throws(() => ca.signX509Svid(tc.req()), { code: tc.code, message: tc.message });
    });
  }

  it('refuses an agent SVID outside /spire/agent/', async () => {
    const ca = await newCa({ clock: new TestClock(), caTtlSeconds: 3600 });
    assert.throws(
      () =>
        ca.signAgentSvid({ agentId: 'spiffe://example.org/web', publicKey: p256Public(), ttlSeconds: 60 }),
      {
        code: 'ERR_CA_INVALID',
        message: /is not an agent id/,
      },
    );
  });

  it('makes a self-signed root CA as SPIRE does (X5-06, X5-12)', async () => {
    const ca = await newCa({
      clock: new TestClock(),
      caTtlSeconds: 3600,
      caSubject: { country: 'DE', organization: 'Tessera', commonName: 'Example CA' },
    });
    const root = ca.activeX509Authority();
    assert.equal(root.subjectAltName, 'URI:spiffe://example.org');
    assert.equal(root.subject, 'C=DE\nO=Tessera\nCN=Example CA');
    assert.equal(root.issuer, root.subject);
    const dir = tempDir();
    writeFileSync(join(dir, 'root.pem'), root.toString());
    const out = openssl(['x509', '-in', join(dir, 'root.pem'), '-noout', '-text']);
    assert.match(out, /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    assert.doesNotMatch(out, /pathlen/);
    assert.match(out, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    assert.match(out, /Not After : .*GMT/);
  });
});

describe('JWT authority', () => {
  for (const [keyType, alg] of [
    ['ec-p256', 'ES256'],
    ['ec-p384', 'ES384'],
    ['rsa-2048', 'RS256'],
  ] as const) {
    it(`mints ${alg} JWT-SVIDs with alg, kid and typ only`, async () => {
      const clock = new TestClock();
      const ca = await newCa({ clock, caTtlSeconds: 3600, jwtKeyType: keyType });
      const minted = ca.mintJwtSvid({
        spiffeId: 'spiffe://example.org/api',
        audience: ['a'],
        ttlSeconds: 300,
      });
      const [h, p] = minted.token.split('.');
      assert.deepEqual(JSON.parse(Buffer.from(h ?? '', 'base64url').toString()), {
        alg,
        kid: minted.kid,
        typ: 'JWT',
      });
      assert.deepEqual(JSON.parse(Buffer.from(p ?? '', 'base64url').toString()), {
        aud: 'a',
        exp: T0 / 1000 + 300,
        iat: T0 / 1000,
        sub: 'spiffe://example.org/api',
      });
      const svid = await JwtSvid.parseAndValidate(minted.token, ca.bundle(), ['a'], { now: clock.now() });
      assert.equal(svid.expiry.getTime(), T0 + 300_000);
    });
  }

  it('never lets a JWT-SVID outlive its key', async () => {
    const clock = new TestClock();
    const ca = await newCa({ clock, caTtlSeconds: 3600 });
    const keyNotAfter = ca.showAuthorities('jwt').active?.notAfter.getTime();
    const minted = ca.mintJwtSvid({
      spiffeId: 'spiffe://example.org/api',
      audience: ['a', 'b'],
      ttlSeconds: 86_400,
    });
    assert.equal(minted.expiresAt.getTime(), keyNotAfter);
  });

  it('refuses an empty audience', async () => {
    const ca = await newCa({ clock: new TestClock(), caTtlSeconds: 3600 });
    assert.throws(
      () => ca.mintJwtSvid({ spiffeId: 'spiffe://example.org/api', audience: [], ttlSeconds: 60 }),
      {
        code: 'ERR_CA_INVALID',
        message: 'ca: at least one audience is required',
      },
    );
  });
});

describe('disk upstream authority', () => {
  function makeRoot(dir: string): void {
    openssl(
      selfSignedCertArgs({
        keyPath: join(dir, 'root.key'),
        certPath: join(dir, 'root.pem'),
        days: 2,
        subject: '/O=Upstream/CN=Root',
        extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
      }),
    );
  }

  it('makes the server CA an intermediate under a self-signed upstream root, verified by openssl', async () => {
    const dir = tempDir();
    makeRoot(dir);
    const clock = new TestClock(Date.now());
    const upstream = createDiskUpstreamAuthority({
      trustDomain: td,
      certFilePath: join(dir, 'root.pem'),
      keyFilePath: join(dir, 'root.key'),
    });
    const ca = await newCa({ clock, caTtlSeconds: 3600, upstreamAuthority: upstream });
    const root = new X509Certificate(readFileSync(join(dir, 'root.pem')));
    assert.deepEqual(
      ca
        .bundle()
        .x509Authorities()
        .map((c) => c.fingerprint256),
      [root.fingerprint256],
    );
    const svid = ca.signX509Svid({
      spiffeId: 'spiffe://example.org/web',
      publicKey: p256Public(),
      ttlSeconds: 600,
    });
    const chain = certs(svid.chain);
    assert.equal(chain.length, 2);
    assert.equal(chain[1]?.subjectAltName, 'URI:spiffe://example.org');
    assert.ok(chain[1]?.checkIssued(root));
    assert.ok(ca.showAuthorities('x509').active?.upstreamAuthorityId);
    verifyX509SvidSync(chain, ca.bundle(), { now: clock.now() });
    writeFileSync(join(dir, 'leaf.pem'), chain[0]?.toString() ?? '');
    writeFileSync(join(dir, 'chain.pem'), chain[1]?.toString() ?? '');
    writeFileSync(join(dir, 'bundle.pem'), ca.bundle().x509Bundle().marshal());
    const out = openssl(['verify', '-CAfile', 'bundle.pem', '-untrusted', 'chain.pem', 'leaf.pem'], dir);
    assert.equal(out.trim(), 'leaf.pem: OK');
    await assert.rejects(ca.taintAuthority('x509', 'x'), {
      code: 'ERR_CA_PRECONDITION',
      message: 'ca: a local x509 authority cannot be tainted when an upstream authority is configured',
    });
    // Rotation under the upstream keeps the bundle to the upstream root.
    const p = await ca.prepareAuthority('x509');
    await ca.activateAuthority('x509', p.authorityId);
    assert.equal(ca.bundle().x509Authorities().length, 1);
  });

  it('sends upstream intermediates in the chain and trusts the bundle file roots', async () => {
    const dir = tempDir();
    makeRoot(dir);
    const now = Date.now();
    const root = new X509Certificate(readFileSync(join(dir, 'root.pem')));
    const rootKey = readFileSync(join(dir, 'root.key'), 'utf8');
    const { createPrivateKey } = await import('node:crypto');
    const mid = generateKey('ec-p256');
    const midCert = buildCertificate(
      {
        publicKey: mid.publicKey,
        subject: { organization: 'Upstream', commonName: 'Mid' },
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 7_200_000),
        basicConstraints: { ca: true },
        keyUsage: { usages: CA_KEY_USAGE },
      },
      { certificate: root, privateKey: createPrivateKey(rootKey) },
    );
    writeFileSync(join(dir, 'mid.pem'), midCert.pem());
    writeFileSync(join(dir, 'mid.key'), mid.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const clock = new TestClock(now);
    await assert.rejects(
      newCa({
        clock,
        caTtlSeconds: 86_400,
        upstreamAuthority: createDiskUpstreamAuthority({
          trustDomain: td,
          certFilePath: join(dir, 'mid.pem'),
          keyFilePath: join(dir, 'mid.key'),
        }),
      }),
      {
        code: 'ERR_CA_UPSTREAM_FAILED',
        message: 'upstream: a bundle file is required when the upstream certificate is not self-signed',
      },
    );
    const ca = await newCa({
      clock,
      caTtlSeconds: 86_400,
      upstreamAuthority: createDiskUpstreamAuthority({
        trustDomain: td,
        certFilePath: join(dir, 'mid.pem'),
        keyFilePath: join(dir, 'mid.key'),
        bundleFilePath: join(dir, 'root.pem'),
      }),
    });
    const svid = ca.signX509Svid({
      spiffeId: 'spiffe://example.org/web',
      publicKey: p256Public(),
      ttlSeconds: 86_400,
    });
    const chain = certs(svid.chain);
    assert.equal(chain.length, 3);
    assert.ok(
      svid.notAfter.getTime() <= new Date(midCert.certificate.validTo).getTime(),
      'capped by the upstream',
    );
    verifyX509SvidSync(chain, ca.bundle(), { now: clock.now() });
    writeFileSync(join(dir, 'leaf.pem'), chain[0]?.toString() ?? '');
    writeFileSync(
      join(dir, 'chain.pem'),
      `${chain[1]?.toString()}${derToPem(chain[2]?.raw ?? Buffer.alloc(0))}`,
    );
    assert.equal(
      openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', 'leaf.pem'], dir).trim(),
      'leaf.pem: OK',
    );
  });

  it('refuses a key that does not match the upstream certificate', async () => {
    const dir = tempDir();
    makeRoot(dir);
    writeFileSync(
      join(dir, 'other.key'),
      generateKey('ec-p256').privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await assert.rejects(
      newCa({
        clock: new TestClock(Date.now()),
        upstreamAuthority: createDiskUpstreamAuthority({
          trustDomain: td,
          certFilePath: join(dir, 'root.pem'),
          keyFilePath: join(dir, 'other.key'),
        }),
      }),
      {
        code: 'ERR_CA_UPSTREAM_FAILED',
        message: 'upstream: upstream private key does not match its certificate',
      },
    );
  });
});
