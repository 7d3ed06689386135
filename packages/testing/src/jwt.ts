/**
 * JWT-SVID minting for tests: a test JWT authority with keys of every algorithm family, able to mint real
 * signed tokens, including the malformed ones validators must refuse.
 *
 * @module
 */
import { constants, createHmac, sign as cryptoSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { JwtBundle } from '@tessera/spiffe/bundle';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';

/** Key families a {@link TestJwtAuthority} can hold. Only the first four may sign valid JWT-SVIDs. */
export type JwtKeyType =
  | 'ec-p256'
  | 'ec-p384'
  | 'ec-p521'
  | 'rsa-2048'
  | 'rsa-1024'
  | 'rsa-pss-2048'
  | 'ec-secp256k1'
  | 'ed25519';

/** A signing key of a {@link TestJwtAuthority}. */
export interface TestJwtKey {
  /** The key ID, as published in the bundle and set in the token header. */
  readonly kid: string;
  /** The key family. */
  readonly type: JwtKeyType;
  /** The private signing key. */
  readonly privateKey: KeyObject;
  /** The public key, as published in the bundle. */
  readonly publicKey: KeyObject;
}

/** The time {@link TestJwtAuthority} mints against unless told otherwise: 2030-01-01T00:00:00Z. */
export const JWT_TEST_NOW: Date = new Date('2030-01-01T00:00:00Z');

/** The HMAC secret used to sign HS256/HS384/HS512 tokens (which every validator must refuse). */
export const JWT_TEST_HMAC_SECRET: Buffer = Buffer.from('tessera-test-hmac-secret-not-a-real-secret');

/** Header and claim names {@link MintOptions.omit} can remove. */
export type JwtOmittable = 'kid' | 'exp' | 'sub' | 'aud' | 'typ' | 'iat';

/** Options of {@link TestJwtAuthority.mint}. Every field is optional; the defaults mint a valid JWT-SVID. */
export interface MintOptions {
  /** `sub` claim. Default: `spiffe://<td>/workload`. A string is used verbatim (may be invalid). */
  readonly sub?: string | SpiffeId;
  /** `aud` claim, a string or an array (kept as given). Default: `['spiffe://<td>/audience']`. */
  readonly aud?: string | readonly string[];
  /** `exp`: a Date (converted to whole seconds) or raw seconds. Default: now + 5 minutes. */
  readonly exp?: Date | number;
  /** `iat`: a Date or raw seconds. Default: now. */
  readonly iat?: Date | number;
  /** `nbf`: a Date or raw seconds. Default: absent. */
  readonly nbf?: Date | number;
  /** Header `alg`. Default `ES256`. May be any string, including `none`, `HS256`, `EdDSA`, `ES256K`. */
  readonly alg?: string;
  /**
   * The algorithm actually used to sign, when it should differ from the header `alg` (alg confusion tests).
   * Default: `alg`.
   */
  readonly signAs?: string;
  /** The key to sign with (a key of this authority, or its kid). Default: the authority's key for the alg. */
  readonly key?: TestJwtKey | string;
  /** Header `kid`. Default: the signing key's kid. */
  readonly kid?: string;
  /** Header `typ`. Default `JWT`. */
  readonly typ?: string;
  /** Extra header parameters, merged last (they may override `alg`, `kid`, `typ`). */
  readonly extraHeader?: Readonly<Record<string, unknown>>;
  /** Extra claims, merged last (they may override any claim, with any JSON value). */
  readonly extraClaims?: Readonly<Record<string, unknown>>;
  /** Header parameters and claims to leave out. */
  readonly omit?: readonly JwtOmittable[];
  /** Sign with a fresh key of the same type that is in no bundle, keeping the header `kid`. */
  readonly signWithOtherKey?: boolean;
}

/** Options of {@link TestJwtAuthority.mintRaw}. */
export interface MintRawOptions {
  /** The header: an object (JSON-encoded), a JSON string, or raw bytes, base64url-encoded as given. */
  readonly header: Readonly<Record<string, unknown>> | string | Uint8Array;
  /** The payload: an object (JSON-encoded), a string, or raw bytes, base64url-encoded as given. */
  readonly payload: Readonly<Record<string, unknown>> | string | Uint8Array;
  /** The algorithm to sign with. Default `ES256`. */
  readonly signAs?: string;
  /** The key to sign with. Default: the authority's key for `signAs`. */
  readonly key?: TestJwtKey | string;
}

/** Options of the {@link TestJwtAuthority} constructor. */
export interface TestJwtAuthorityOptions {
  /** The time defaults are computed from. Default {@link JWT_TEST_NOW}. */
  readonly now?: Date;
  /** Key families to create up front, with kids equal to the family name. Default: P-256, P-384, P-521, RSA-2048. */
  readonly keyTypes?: readonly JwtKeyType[];
  /** Prefix of the generated kids (to give two authorities distinct kids). Default `''`. */
  readonly kidPrefix?: string;
}

const DEFAULT_KEY_TYPES: readonly JwtKeyType[] = ['ec-p256', 'ec-p384', 'ec-p521', 'rsa-2048'];

/** Which key family signs each algorithm by default. */
const KEY_TYPE_FOR_ALG: ReadonlyMap<string, JwtKeyType> = new Map<string, JwtKeyType>([
  ['ES256', 'ec-p256'],
  ['ES384', 'ec-p384'],
  ['ES512', 'ec-p521'],
  ['RS256', 'rsa-2048'],
  ['RS384', 'rsa-2048'],
  ['RS512', 'rsa-2048'],
  ['PS256', 'rsa-2048'],
  ['PS384', 'rsa-2048'],
  ['PS512', 'rsa-2048'],
  ['RS1', 'rsa-2048'],
  ['ES256K', 'ec-secp256k1'],
  ['EdDSA', 'ed25519'],
]);

/** Generates a key pair of a family. */
export function generateJwtKeyPair(type: JwtKeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    case 'ec-p521':
      return generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    case 'ec-secp256k1':
      return generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'rsa-pss-2048':
      // Restricted to SHA-256 (PS256 only), as RSA-PSS keys in certificates often are.
      return generateKeyPairSync('rsa-pss', {
        modulusLength: 2048,
        hashAlgorithm: 'sha256',
        mgf1HashAlgorithm: 'sha256',
      });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    default:
      throw new TypeError(`testing: unknown key type ${JSON.stringify(type)}`);
  }
}

/**
 * Signs `data` as algorithm `alg` with `key`. Supports the 9 JWT-SVID algorithms and, to build tokens that
 * must be refused, `none` (empty signature), `HS256/384/512` ({@link JWT_TEST_HMAC_SECRET}), `EdDSA`,
 * `ES256K` and `RS1`. Any other name signs as ES256 would.
 */
export function signJws(alg: string, data: Buffer, key: KeyObject | undefined): Buffer {
  const need = (): KeyObject => {
    if (key === undefined) throw new TypeError(`testing: algorithm ${JSON.stringify(alg)} needs a key`);
    return key;
  };
  switch (alg) {
    case 'none':
      return Buffer.alloc(0);
    case 'HS256':
    case 'HS384':
    case 'HS512':
      return createHmac(`sha${alg.slice(2)}`, JWT_TEST_HMAC_SECRET)
        .update(data)
        .digest();
    case 'RS256':
    case 'RS384':
    case 'RS512':
      return cryptoSign(`sha${alg.slice(2)}`, data, { key: need(), padding: constants.RSA_PKCS1_PADDING });
    case 'RS1':
      return cryptoSign('sha1', data, { key: need(), padding: constants.RSA_PKCS1_PADDING });
    case 'PS256':
    case 'PS384':
    case 'PS512': {
      const bits = Number(alg.slice(2));
      return cryptoSign(`sha${bits}`, data, {
        key: need(),
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: bits / 8,
      });
    }
    case 'ES384':
      return cryptoSign('sha384', data, { key: need(), dsaEncoding: 'ieee-p1363' });
    case 'ES512':
      return cryptoSign('sha512', data, { key: need(), dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return cryptoSign(null, data, need());
    default:
      // ES256, ES256K and anything else.
      return cryptoSign('sha256', data, { key: need(), dsaEncoding: 'ieee-p1363' });
  }
}

function toSeconds(v: Date | number): number {
  return v instanceof Date ? Math.floor(v.getTime() / 1000) : v;
}

function segment(v: Readonly<Record<string, unknown>> | string | Uint8Array): string {
  if (typeof v === 'string') return Buffer.from(v, 'utf8').toString('base64url');
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64url');
  return Buffer.from(JSON.stringify(v), 'utf8').toString('base64url');
}

/**
 * A test JWT authority for one trust domain: holds signing keys (kid = family name, optionally prefixed),
 * publishes them as a {@link JwtBundle}, and mints real signed JWT-SVIDs, valid or deliberately broken.
 *
 * @example
 * ```ts
 * const ca = new TestJwtAuthority('example.org', { keyTypes: ['ec-p256'] });
 * const token = ca.mint({ aud: 'spiffe://example.org/api' });
 * await JwtSvid.parseAndValidate(token, ca.jwtBundle(), ['spiffe://example.org/api'], { now: JWT_TEST_NOW });
 * ```
 */
export class TestJwtAuthority {
  /** The authority's trust domain. */
  readonly trustDomain: TrustDomain;
  /** The time defaults are computed from. */
  readonly now: Date;
  readonly #keys = new Map<string, TestJwtKey>();
  readonly #kidPrefix: string;

  constructor(trustDomain: string | TrustDomain, options: TestJwtAuthorityOptions = {}) {
    this.trustDomain = typeof trustDomain === 'string' ? TrustDomain.fromString(trustDomain) : trustDomain;
    this.now = options.now ?? JWT_TEST_NOW;
    this.#kidPrefix = options.kidPrefix ?? '';
    for (const type of options.keyTypes ?? DEFAULT_KEY_TYPES) this.addKey(type);
  }

  /** Creates a key of `type` (kid defaults to the prefixed family name) and adds it to the authority. */
  addKey(type: JwtKeyType, kid: string = `${this.#kidPrefix}${type}`): TestJwtKey {
    if (this.#keys.has(kid)) throw new RangeError(`testing: kid ${JSON.stringify(kid)} already exists`);
    const pair = generateJwtKeyPair(type);
    const key: TestJwtKey = { kid, type, privateKey: pair.privateKey, publicKey: pair.publicKey };
    this.#keys.set(kid, key);
    return key;
  }

  /** The authority's keys, in creation order. */
  keys(): readonly TestJwtKey[] {
    return [...this.#keys.values()];
  }

  /** The first key of `type`; throws if the authority has none. */
  key(type: JwtKeyType): TestJwtKey {
    for (const k of this.#keys.values()) if (k.type === type) return k;
    throw new RangeError(`testing: the authority has no ${type} key (pass it in keyTypes or call addKey)`);
  }

  /** A JWT bundle for `td` (default: the authority's trust domain) holding the public keys, by kid. */
  jwtBundle(td: TrustDomain = this.trustDomain): JwtBundle {
    const authorities = new Map<string, KeyObject>();
    for (const k of this.#keys.values()) authorities.set(k.kid, k.publicKey);
    return JwtBundle.fromAuthorities(td, authorities);
  }

  /** The default `sub`: `spiffe://<td>/workload`. */
  defaultSubject(): SpiffeId {
    return SpiffeId.fromPath(this.trustDomain, '/workload');
  }

  /** The default audience: `spiffe://<td>/audience`. */
  defaultAudience(): string {
    return `spiffe://${this.trustDomain.name}/audience`;
  }

  /**
   * Mints a signed JWT (compact serialization). With no options the token is a valid JWT-SVID for
   * {@link defaultSubject} and {@link defaultAudience}, signed ES256 with the P-256 key, expiring 5 minutes
   * after {@link now}. Options bend any part of it.
   */
  mint(options: MintOptions = {}): string {
    const omit = new Set<string>(options.omit ?? []);
    const alg = options.alg ?? 'ES256';
    const signAs = options.signAs ?? alg;
    const key = this.#signingKey(options.key, signAs);

    const header: Record<string, unknown> = { alg };
    const kid = options.kid ?? key?.kid;
    if (kid !== undefined) header.kid = kid;
    header.typ = options.typ ?? 'JWT';
    for (const name of ['kid', 'typ']) if (omit.has(name)) delete header[name];
    Object.assign(header, options.extraHeader);

    const nowS = Math.floor(this.now.getTime() / 1000);
    const payload: Record<string, unknown> = {
      sub: options.sub === undefined ? this.defaultSubject().toString() : options.sub.toString(),
      aud: options.aud ?? [this.defaultAudience()],
      exp: options.exp === undefined ? nowS + 300 : toSeconds(options.exp),
      iat: options.iat === undefined ? nowS : toSeconds(options.iat),
    };
    if (options.nbf !== undefined) payload.nbf = toSeconds(options.nbf);
    for (const name of ['sub', 'aud', 'exp', 'iat']) if (omit.has(name)) delete payload[name];
    Object.assign(payload, options.extraClaims);

    let signingKey = key?.privateKey;
    if (options.signWithOtherKey === true) {
      if (key === undefined) throw new TypeError('testing: signWithOtherKey needs a key');
      signingKey = generateJwtKeyPair(key.type).privateKey;
    }
    return this.#sign(segment(header), segment(payload), signAs, signingKey);
  }

  /** Mints a token from an exact header and payload (objects, strings or bytes), signed as `signAs`. */
  mintRaw(options: MintRawOptions): string {
    const signAs = options.signAs ?? 'ES256';
    const key = this.#signingKey(options.key, signAs);
    return this.#sign(segment(options.header), segment(options.payload), signAs, key?.privateKey);
  }

  #signingKey(key: TestJwtKey | string | undefined, alg: string): TestJwtKey | undefined {
    if (typeof key === 'object') return key;
    if (typeof key === 'string') {
      const k = this.#keys.get(key);
      if (k === undefined) throw new RangeError(`testing: no key with kid ${JSON.stringify(key)}`);
      return k;
    }
    if (alg === 'none' || alg.startsWith('HS')) return undefined;
    return this.key(KEY_TYPE_FOR_ALG.get(alg) ?? 'ec-p256');
  }

  #sign(header: string, payload: string, alg: string, key: KeyObject | undefined): string {
    const input = `${header}.${payload}`;
    const sig = signJws(alg, Buffer.from(input, 'latin1'), key);
    return `${input}.${sig.toString('base64url')}`;
  }
}
