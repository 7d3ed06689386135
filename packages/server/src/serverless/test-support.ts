/**
 * Test support of the serverless subsystem: a real OIDC token issuer (its own keys, discovery document and JWKS
 * served over HTTPS on loopback with a TestCa-issued certificate), a CA manager on a temp SQLite datastore, a
 * capturing logger and a settable clock. Not exported from the package.
 *
 * @module
 * @internal
 */
import { createHmac, generateKeyPairSync, type KeyObject, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
import { exportJWK, type JWK, SignJWT } from 'jose';
import { type CaManager, createCaManager } from '../ca/ca-manager.js';
import type { Datastore } from '../datastore/datastore.js';
import { openDatastore } from '../datastore/index.js';
import { createMemoryKeyManager } from '../keymanager/memory.js';
import type { ServerlessLogger } from './types.js';

/** A clock tests can move. */
export class SettableClock {
  t: number;
  constructor(t = Date.now()) {
    this.t = t;
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

/** A logger that keeps every line. */
export class CapturingLogger implements ServerlessLogger {
  readonly lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  info(fields: object, msg: string): void {
    this.lines.push({ level: 'info', fields: fields as Record<string, unknown>, msg });
  }
  warn(fields: object, msg: string): void {
    this.lines.push({ level: 'warn', fields: fields as Record<string, unknown>, msg });
  }
  error(fields: object, msg: string): void {
    this.lines.push({ level: 'error', fields: fields as Record<string, unknown>, msg });
  }
  audits(): Record<string, unknown>[] {
    return this.lines.filter((l) => l.fields.audit === true).map((l) => l.fields);
  }
}

interface IssuerKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256' | 'ES384';
  readonly privateKey: KeyObject;
  readonly jwk: JWK;
}

/** A test OIDC issuer over HTTPS on 127.0.0.1. */
export class TestIssuer {
  readonly issuer: string;
  readonly caFile: string;
  readonly dir: string;
  readonly keys: IssuerKey[];
  discoveryRequests = 0;
  jwksRequests = 0;
  readonly #server: Server;

  private constructor(server: Server, issuer: string, caFile: string, dir: string, keys: IssuerKey[]) {
    this.#server = server;
    this.issuer = issuer;
    this.caFile = caFile;
    this.dir = dir;
    this.keys = keys;
  }

  /** Starts an issuer; `issuerPath` is appended to the origin (e.g. `/tenant/` for Azure-like issuers). */
  static async start(opts: { issuerPath?: string; alg?: IssuerKey['alg'] } = {}): Promise<TestIssuer> {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-issuer-'));
    const ca = TestCa.create({ trustDomain: 'issuer.test' });
    const tls = ca.issueX509Svid({ ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.rootPem());
    const keys = [await TestIssuer.#newKey(opts.alg ?? 'RS256')];
    let issuer = '';
    let self: TestIssuer | undefined;
    const issuerPath = opts.issuerPath ?? '';
    const discoveryPath = `${issuerPath.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
      const s = self;
      if (s === undefined) return;
      if (req.url === discoveryPath) {
        s.discoveryRequests++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer, jwks_uri: `${new URL(issuer).origin}/jwks` }));
      } else if (req.url === '/jwks') {
        s.jwksRequests++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: s.keys.map((k) => k.jwk) }));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    issuer = `https://127.0.0.1:${port}${issuerPath}`;
    self = new TestIssuer(server, issuer, caFile, dir, keys);
    return self;
  }

  static async #newKey(alg: IssuerKey['alg']): Promise<IssuerKey> {
    const { privateKey, publicKey } =
      alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' });
    const kid = randomUUID();
    return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
  }

  /** Adds a signing key (published in the JWKS from now on) and returns it. */
  async rotate(alg: IssuerKey['alg'] = 'RS256'): Promise<IssuerKey> {
    const k = await TestIssuer.#newKey(alg);
    this.keys.push(k);
    return k;
  }

  /** Writes the JWKS to a file (for jwksFile configs). */
  writeJwksFile(): string {
    const f = join(this.dir, 'jwks.json');
    writeFileSync(f, JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
    return f;
  }

  /**
   * Signs a token. `iat`/`exp` default to now and now + 10 min (seconds); `key` defaults to the first key;
   * `signWith` signs with another private key under the same header (a bad signature).
   */
  async sign(
    claims: Record<string, unknown>,
    opts: {
      now: Date;
      key?: IssuerKey;
      signWith?: KeyObject;
      lifetime?: number;
      header?: Record<string, unknown>;
    },
  ): Promise<string> {
    const key = opts.key ?? this.keys[0];
    if (key === undefined) throw new Error('no key');
    const iat = Math.floor(opts.now.getTime() / 1000);
    const payload = {
      iss: this.issuer,
      iat,
      exp: iat + (opts.lifetime ?? 600),
      jti: randomUUID(),
      ...claims,
    };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...opts.header })
      .sign(opts.signWith ?? key.privateKey);
  }

  /** An unsigned token (`alg: none`). */
  unsigned(claims: Record<string, unknown>, now: Date): string {
    const iat = Math.floor(now.getTime() / 1000);
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${enc({ alg: 'none', kid: this.keys[0]?.kid })}.${enc({ iss: this.issuer, iat, exp: iat + 600, ...claims })}.`;
  }

  /** An HS256 token keyed with the public JWK's text (the classic key-confusion attack). */
  hmac(claims: Record<string, unknown>, now: Date): string {
    const iat = Math.floor(now.getTime() / 1000);
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${enc({ alg: 'HS256', kid: this.keys[0]?.kid })}.${enc({ iss: this.issuer, iat, exp: iat + 600, ...claims })}`;
    const sig = createHmac('sha256', JSON.stringify(this.keys[0]?.jwk)).update(input).digest('base64url');
    return `${input}.${sig}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A CA manager on a temp SQLite datastore and in-memory keys. */
export async function newTestCa(
  trustDomain = 'example.org',
  clock?: { now(): Date },
): Promise<{ ca: CaManager; trustDomain: TrustDomain; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sl-ca-'));
  const ds: Datastore = await openDatastore(`sqlite:${join(dir, 'ds.sqlite3')}`);
  const td = TrustDomain.fromString(trustDomain);
  const ca = await createCaManager({
    trustDomain: td,
    keyManager: createMemoryKeyManager(),
    datastore: ds,
    caTtlSeconds: 86400,
    ...(clock === undefined ? {} : { clock }),
  });
  return {
    ca,
    trustDomain: td,
    async close() {
      await ca.close();
      await ds.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
