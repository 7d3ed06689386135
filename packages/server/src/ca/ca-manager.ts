/**
 * The server CA: X.509 and JWT authorities with SPIRE-style rotation, the trust domain's own bundle, and
 * issuance of X509-SVIDs and JWT-SVIDs.
 *
 * Each kind of authority (X.509, JWT) has an active authority and at most one prepared one, plus old ones that
 * are kept (in the journal and the bundle) until nothing they signed can still be valid. Rotation follows SPIRE:
 * the next authority is prepared (and published in the bundle) at half of the active one's lifetime and
 * activated when a sixth of it is left. Signing keys live in the key manager under two slots per kind
 * (`x509-CA-A`/`x509-CA-B`, `JWT-Signer-A`/`JWT-Signer-B`); the journal lives in the datastore and is found
 * again on restart through the active X.509 key's authority ID.
 *
 * @module
 */
import {
  createPublicKey,
  sign as cryptoSign,
  type KeyObject,
  randomBytes,
  type X509Certificate,
} from 'node:crypto';
import { availableParallelism } from 'node:os';
import {
  buildCertificate,
  buildCsr,
  buildLeafSvid,
  CA_KEY_USAGE,
  createIssuerContext,
  DerReader,
  type DistinguishedName,
  decodeBitString,
  decodeOid,
  type IssuerContext,
  type KeyType,
  keyIdentifier,
  keyTypeOf,
  LEAF_KEY_USAGE,
  readOne,
  spkiDer,
  Tag,
} from '@tessera/common/x509';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { SpiffeError, X509SvidError } from '@tessera/spiffe/errors';
import { SpiffeId, type TrustDomain } from '@tessera/spiffe/spiffeid';
import type { Datastore } from '../datastore/datastore.js';
import type { CaJournal } from '../datastore/types.js';
import type { KeyManager, ManagedKey } from '../keymanager/key-manager.js';
import { IssuancePool } from './issuance-pool.js';
import {
  type AuthorityStatus,
  type JwtAuthorityRecord,
  marshalJournal,
  parseJournal,
  type X509AuthorityRecord,
} from './journal.js';
import { issueLeaf, type LeafJob, type LeafOutcome } from './leaf-issuance.js';
import type { UpstreamAuthority } from './upstream.js';

/** A source of the current time. */
export interface Clock {
  now(): Date;
}

/** The logging the CA does (pino's `Logger` fits). */
export interface CaLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** The datastore operations the CA uses. */
export type CaDatastore = Pick<
  Datastore,
  'createCaJournal' | 'updateCaJournal' | 'fetchCaJournalByX509AuthorityId' | 'appendBundle' | 'fetchBundle'
>;

/** Key types allowed for JWT signing keys (JWT-SVID algorithms ES256, ES384, RS256). */
export type JwtKeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048';

/** Which authority: X.509 CA or JWT signing key. */
export type AuthorityKind = 'x509' | 'jwt';

/** Configuration of {@link createCaManager}. */
export interface CaManagerConfig {
  readonly trustDomain: TrustDomain;
  readonly keyManager: KeyManager;
  readonly datastore: CaDatastore;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** `ca_ttl` in seconds. Default 86400. */
  readonly caTtlSeconds?: number;
  /** `ca_key_type`. Default `ec-p256`. */
  readonly caKeyType?: KeyType;
  /** `jwt_key_type`. Default `ec-p256` (ES256). */
  readonly jwtKeyType?: JwtKeyType;
  /** `ca_subject`. Default `C=US, O=SPIFFE`. */
  readonly caSubject?: DistinguishedName;
  /** `jwt_issuer`: the `iss` claim of JWT-SVIDs; omitted when unset. */
  readonly jwtIssuer?: string;
  /** An upstream authority: the server's CA is then an intermediate under it. */
  readonly upstreamAuthority?: UpstreamAuthority;
  /** `spiffe_refresh_hint` of the bundle in seconds. Default min(300, ca_ttl / 10). */
  readonly refreshHintSeconds?: number;
  /** Period of the rotation timer started by `start()`. Default min(10 s, ca_ttl / 60). */
  readonly tickIntervalMs?: number;
  /**
   * Worker threads that verify CSRs and sign leaves for {@link CaManager.signX509SvidCsrs} (0: all in the
   * calling thread). Default: the number of available cores up to 4, or 0 on one core. Started lazily.
   */
  readonly issuanceWorkers?: number;
  readonly logger?: CaLogger;
}

/** One authority as shown by `localauthority … show`. */
export interface AuthorityInfo {
  readonly authorityId: string;
  readonly status: AuthorityStatus;
  readonly tainted: boolean;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** X.509 with an upstream authority: subject key ID (hex) of the upstream certificate that signed it. */
  readonly upstreamAuthorityId?: string;
}

/** The authorities of one kind. */
export interface AuthorityState {
  readonly active: AuthorityInfo | undefined;
  readonly prepared: AuthorityInfo | undefined;
  readonly old: readonly AuthorityInfo[];
}

/** A request to sign an X509-SVID. */
export interface SignX509SvidRequest {
  readonly spiffeId: SpiffeId | string;
  /** The subject's public key (from a verified CSR): a KeyObject or SubjectPublicKeyInfo DER. */
  readonly publicKey: KeyObject | Uint8Array;
  /** Requested lifetime; the SVID never outlives the CA. */
  readonly ttlSeconds: number;
  /** DNS SANs; the first one also becomes the subject's common name. */
  readonly dnsNames?: readonly string[];
}

/** A request to sign an X509-SVID for the key of a CSR (verified: proof of possession). */
export interface SignX509SvidCsrRequest {
  readonly spiffeId: SpiffeId | string;
  /** DER PKCS#10 request. */
  readonly csr: Uint8Array;
  readonly ttlSeconds: number;
  readonly dnsNames?: readonly string[];
}

/** An issued X509-SVID. */
export interface SignedX509Svid {
  /** DER certificates: the leaf, then intermediates up to (not including) the root. */
  readonly chain: readonly Buffer[];
  readonly notAfter: Date;
  /** The leaf's serial number in decimal. */
  readonly serialNumber: string;
  /** The X.509 authority that signed it. */
  readonly authorityId: string;
}

/** A request to mint a JWT-SVID. */
export interface MintJwtSvidRequest {
  readonly spiffeId: SpiffeId | string;
  /** At least one audience. */
  readonly audience: readonly string[];
  readonly ttlSeconds: number;
}

/** A minted JWT-SVID. */
export interface MintedJwtSvid {
  readonly token: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly kid: string;
}

/** Told when an authority is tainted. */
export interface TaintEvent {
  readonly kind: AuthorityKind;
  readonly authorityId: string;
}

/** The server CA. Create with {@link createCaManager}. */
export interface CaManager {
  /** The current bundle of the trust domain (as last written by this CA). */
  bundle(): SpiffeBundle;
  /** Subscribes to bundle changes; returns the unsubscribe function. */
  onBundleChange(listener: (bundle: SpiffeBundle) => void): () => void;
  /** Subscribes to taints (agents should re-issue SVIDs signed by a tainted authority). */
  onAuthorityTainted(listener: (event: TaintEvent) => void): () => void;
  /** Subject key IDs (hex) of tainted X.509 authorities and key IDs of tainted JWT keys still in the bundle. */
  taintedAuthorities(): { readonly x509: readonly string[]; readonly jwt: readonly string[] };
  /** The certificate of the active X.509 authority (the server's CA: root or intermediate). */
  activeX509Authority(): X509Certificate;

  /** Number of issuance worker threads used by {@link signX509SvidCsrs} (0: signing on the calling thread). */
  readonly issuanceWorkers: number;
  /** Signs an X509-SVID with the active X.509 authority. */
  signX509Svid(request: SignX509SvidRequest): SignedX509Svid;
  /**
   * Verifies CSRs and signs an X509-SVID for each, in order, on the issuance workers when there are any.
   * Each result is the SVID or the error of that request: X509SvidError ERR_X509SVID_INVALID (message
   * `csr: …`) for a bad CSR, SpiffeError ERR_CA_INVALID / ERR_CA_PRECONDITION as {@link signX509Svid}.
   */
  signX509SvidCsrs(requests: readonly SignX509SvidCsrRequest[]): Promise<(SignedX509Svid | Error)[]>;
  /** Signs the server's own SVID (`spiffe://<td>/spire/server`). */
  signServerSvid(request: {
    publicKey: KeyObject | Uint8Array;
    ttlSeconds: number;
    dnsNames?: readonly string[];
  }): SignedX509Svid;
  /** Signs an agent SVID (`spiffe://<td>/spire/agent/...`). */
  signAgentSvid(request: {
    agentId: SpiffeId | string;
    publicKey: KeyObject | Uint8Array;
    ttlSeconds: number;
  }): SignedX509Svid;
  /** Mints a JWT-SVID with the active JWT key. */
  mintJwtSvid(request: MintJwtSvidRequest): MintedJwtSvid;

  /** Runs rotation as of the clock's current time (called by the timer; call it directly in tests). */
  tick(): Promise<void>;
  /** Starts the rotation timer. */
  start(): void;
  /** Stops the timer and waits for a running operation. */
  close(): Promise<void>;

  /** `localauthority <kind> show`. */
  showAuthorities(kind: AuthorityKind): AuthorityState;
  /** `localauthority <kind> prepare`: prepares (and publishes) a new authority, replacing a prepared one. */
  prepareAuthority(kind: AuthorityKind): Promise<AuthorityInfo>;
  /** `localauthority <kind> activate`: activates the prepared authority `authorityId`; the active one becomes old. */
  activateAuthority(kind: AuthorityKind, authorityId: string): Promise<AuthorityInfo>;
  /** `localauthority <kind> taint`: marks an old authority tainted (it stays in the bundle). */
  taintAuthority(kind: AuthorityKind, authorityId: string): Promise<AuthorityInfo>;
  /** `localauthority <kind> revoke`: removes a tainted old authority from the bundle and the journal. */
  revokeAuthority(kind: AuthorityKind, authorityId: string): Promise<AuthorityInfo>;
}

const BACKDATE_MS = 10_000;
const MAX_ID_LENGTH = 2048;
const DEFAULT_CA_TTL = 86_400;
const DEFAULT_SUBJECT: DistinguishedName = { country: 'US', organization: 'SPIFFE' };
const SLOTS: Readonly<Record<AuthorityKind, readonly [string, string]>> = {
  x509: ['x509-CA-A', 'x509-CA-B'],
  jwt: ['JWT-Signer-A', 'JWT-Signer-B'],
};
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

const systemClock: Clock = { now: () => new Date() };
const silentLogger: CaLogger = { info() {}, warn() {}, error() {} };

function caInvalid(message: string): SpiffeError {
  return new SpiffeError('ERR_CA_INVALID', `ca: ${message}`);
}

function precondition(message: string): SpiffeError {
  return new SpiffeError('ERR_CA_PRECONDITION', `ca: ${message}`);
}

function hexKeyId(publicKey: KeyObject): string {
  return keyIdentifier(spkiDer(publicKey)).toString('hex');
}

function certNotAfter(cert: X509Certificate): Date {
  return new Date(cert.validTo);
}

function certNotBefore(cert: X509Certificate): Date {
  return new Date(cert.validFrom);
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function info(r: X509AuthorityRecord | JwtAuthorityRecord): AuthorityInfo {
  const base = {
    authorityId: r.authorityId,
    status: r.status,
    tainted: r.tainted,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
  };
  return 'upstreamAuthorityId' in r && r.upstreamAuthorityId !== ''
    ? { ...base, upstreamAuthorityId: r.upstreamAuthorityId }
    : base;
}

function checkDnsName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) {
    throw caInvalid(`invalid dns name ${JSON.stringify(name)}`);
  }
  const labels = name.split('.');
  labels.forEach((label, i) => {
    if (i === 0 && label === '*' && labels.length > 2) return;
    if (!DNS_LABEL.test(label)) throw caInvalid(`invalid dns name ${JSON.stringify(name)}`);
  });
}

function serialOf(leafDer: Buffer): string {
  const cert = new DerReader(readOne(leafDer, Tag.sequence, 'certificate').content);
  const tbs = new DerReader(cert.read(Tag.sequence, 'tbsCertificate').content);
  tbs.readOptional(0xa0, 'version');
  const serial = tbs.read(Tag.integer, 'serialNumber').content;
  return BigInt(`0x${serial.toString('hex')}`).toString();
}

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const EC_POINT_LENGTH: Readonly<Record<string, number>> = { '1.2.840.10045.3.1.7': 65, '1.3.132.0.34': 97 };
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const ED25519 = '1.3.101.112';

/**
 * Tells whether SubjectPublicKeyInfo DER holds a key type Tessera issues for (P-256, P-384, RSA ≥ 2048, Ed25519),
 * by reading the DER only: much cheaper than building a KeyObject on the issuance hot path.
 */
function spkiSupported(der: Buffer): boolean {
  try {
    const spki = new DerReader(readOne(der, Tag.sequence, 'spki').content);
    const alg = new DerReader(spki.read(Tag.sequence, 'algorithm').content);
    const algOid = decodeOid(alg.read(Tag.oid, 'algorithm').content);
    const { bytes, unusedBits } = decodeBitString(spki.read(Tag.bitString, 'subjectPublicKey').content);
    spki.end('spki');
    if (unusedBits !== 0) return false;
    if (algOid === EC_PUBLIC_KEY) {
      const curve = decodeOid(alg.read(Tag.oid, 'namedCurve').content);
      alg.end('algorithm');
      return bytes.length === EC_POINT_LENGTH[curve] && bytes[0] === 0x04;
    }
    if (algOid === ED25519) {
      alg.end('algorithm');
      return bytes.length === 32;
    }
    if (algOid === RSA_ENCRYPTION) {
      const rsa = new DerReader(readOne(bytes, Tag.sequence, 'rsa key').content);
      const n = rsa.read(Tag.integer, 'modulus').content;
      const bits = (n.length - (n[0] === 0 ? 1 : 0)) * 8;
      return bits >= 2048;
    }
    return false;
  } catch {
    return false;
  }
}

interface ActiveX509 {
  readonly record: X509AuthorityRecord;
  readonly ctx: IssuerContext;
  readonly privateKey: KeyObject;
  readonly intermediates: readonly Buffer[];
  readonly notAfterMs: number;
}

interface ActiveJwt {
  readonly record: JwtAuthorityRecord;
  readonly privateKey: KeyObject;
  readonly headerB64: string;
  readonly hash: 'sha256' | 'sha384';
  readonly dsaEncoding: 'ieee-p1363' | undefined;
  readonly notAfterMs: number;
}

interface State {
  x509: X509AuthorityRecord[];
  jwt: JwtAuthorityRecord[];
}

/** Bundle contributions removed by an operation (unless still contributed by a remaining authority). */
interface Removed {
  certs: X509Certificate[];
  kids: string[];
}

/**
 * Creates the server CA: loads the journal (resuming the same authorities when the key manager still holds
 * their keys), prepares and activates authorities as needed, and makes sure the bundle holds them. Call
 * `start()` for the rotation timer.
 *
 * @throws {RangeError} on a bad TTL, a trust domain name longer than 255 bytes, or an unsupported key type.
 * @throws {SpiffeError} ERR_CA_UPSTREAM_FAILED when the upstream authority cannot sign, ERR_KEYMANAGER_FAILED,
 *   ERR_DATASTORE_FAILED from the stores.
 * @example
 * const ca = await createCaManager({ trustDomain: td, keyManager: createMemoryKeyManager(), datastore: ds });
 * const { chain } = ca.signX509Svid({ spiffeId: 'spiffe://example.org/web', publicKey, ttlSeconds: 3600 });
 */
export async function createCaManager(config: CaManagerConfig): Promise<CaManager> {
  const ca = new CaManagerImpl(config);
  await ca.init();
  return ca;
}

class CaManagerImpl implements CaManager {
  readonly #td: TrustDomain;
  readonly #tdId: string;
  readonly #km: KeyManager;
  readonly #ds: CaDatastore;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #caKeyType: KeyType;
  readonly #jwtKeyType: JwtKeyType;
  readonly #subject: DistinguishedName;
  readonly #issuer: string | undefined;
  readonly #upstream: UpstreamAuthority | undefined;
  readonly #refreshHint: number;
  readonly #tickMs: number;
  readonly #log: CaLogger;
  readonly #pool: IssuancePool | undefined;
  readonly #workers: number;

  #state: State = { x509: [], jwt: [] };
  #keys = new Map<string, ManagedKey>();
  #journalId: number | undefined;
  #x509: ActiveX509 | undefined;
  #jwt: ActiveJwt | undefined;
  #bundle: SpiffeBundle;
  #bundleListeners = new Set<(b: SpiffeBundle) => void>();
  #taintListeners = new Set<(e: TaintEvent) => void>();
  #lock: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(config: CaManagerConfig) {
    this.#td = config.trustDomain;
    if (this.#td.name.length > 255) {
      throw new RangeError(`ca: trust domain name longer than 255 bytes: "${this.#td.name.slice(0, 32)}…"`);
    }
    this.#tdId = this.#td.idString();
    this.#km = config.keyManager;
    this.#ds = config.datastore;
    this.#clock = config.clock ?? systemClock;
    const ttl = config.caTtlSeconds ?? DEFAULT_CA_TTL;
    if (!Number.isFinite(ttl) || ttl < 10)
      throw new RangeError(`ca: ca_ttl must be at least 10 s, got ${ttl}`);
    this.#ttlMs = ttl * 1000;
    this.#caKeyType = config.caKeyType ?? 'ec-p256';
    this.#jwtKeyType = config.jwtKeyType ?? 'ec-p256';
    if (!['ec-p256', 'ec-p384', 'rsa-2048'].includes(this.#jwtKeyType)) {
      throw new RangeError(`ca: unsupported jwt key type "${String(this.#jwtKeyType)}"`);
    }
    this.#subject = config.caSubject ?? DEFAULT_SUBJECT;
    this.#issuer = config.jwtIssuer;
    this.#upstream = config.upstreamAuthority;
    this.#refreshHint = config.refreshHintSeconds ?? Math.min(300, Math.ceil(ttl / 10));
    this.#tickMs = config.tickIntervalMs ?? Math.min(10_000, Math.max(100, Math.floor(this.#ttlMs / 60)));
    this.#log = config.logger ?? silentLogger;
    const cores = availableParallelism();
    const workers = config.issuanceWorkers ?? (cores > 1 ? Math.min(cores, 4) : 0);
    if (!Number.isInteger(workers) || workers < 0) {
      throw new RangeError(`ca: issuanceWorkers must be a non-negative integer, got ${String(workers)}`);
    }
    this.#workers = workers;
    this.#pool = workers > 0 ? new IssuancePool(workers) : undefined;
    this.#bundle = SpiffeBundle.fromAuthorities(this.#td, { sequenceNumber: 0 });
  }

  // ---- lifecycle --------------------------------------------------------------------------------------

  async init(): Promise<void> {
    await this.#serialize(async () => {
      await this.#load();
      await this.#rotate(true);
    });
  }

  start(): void {
    if (this.#closed) throw new TypeError('ca: manager is closed');
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.tick().catch((err: unknown) => this.#log.error({ err }, 'CA rotation failed'));
    }, this.#tickMs);
    this.#timer.unref();
  }

  get issuanceWorkers(): number {
    return this.#workers;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#pool?.close();
    await this.#lock.catch(() => {});
  }

  tick(): Promise<void> {
    return this.#serialize(() => this.#rotate(false));
  }

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => {});
    return next;
  }

  // ---- loading ----------------------------------------------------------------------------------------

  async #load(): Promise<void> {
    for (const id of [...SLOTS.x509, ...SLOTS.jwt]) {
      const key = await this.#km.getKey(id);
      if (key) this.#keys.set(id, key);
    }
    let journal: CaJournal | undefined;
    for (const id of SLOTS.x509) {
      const key = this.#keys.get(id);
      if (!key) continue;
      const j = await this.#ds.fetchCaJournalByX509AuthorityId(hexKeyId(key.publicKey));
      if (j && (!journal || j.id > journal.id)) journal = j;
    }
    if (!journal) {
      this.#log.info({}, 'No CA journal found, starting new authorities');
      return;
    }
    let content: ReturnType<typeof parseJournal>;
    try {
      content = parseJournal(journal.entries);
    } catch (err) {
      this.#log.warn({ err }, 'CA journal unreadable, starting new authorities');
      return;
    }
    this.#journalId = journal.id;
    const keyMatches = (keyId: string, publicKey: KeyObject): boolean => {
      const key = this.#keys.get(keyId);
      return key !== undefined && spkiDer(key.publicKey).equals(spkiDer(publicKey));
    };
    // An active or prepared authority whose key is gone (or was replaced) cannot sign any more: an active one
    // is kept as old (it may have signed valid SVIDs), a prepared one is dropped.
    const fix = <R extends X509AuthorityRecord | JwtAuthorityRecord>(r: R, pub: KeyObject): R | undefined => {
      if (r.status === 'old' || keyMatches(r.keyId, pub)) return r;
      return r.status === 'active' ? { ...r, status: 'old' } : undefined;
    };
    this.#state = {
      x509: content.x509
        .map((r) => fix(r, (r.chain[0] as X509Certificate).publicKey))
        .filter((r): r is X509AuthorityRecord => r !== undefined),
      jwt: content.jwt
        .map((r) => fix(r, r.publicKey))
        .filter((r): r is JwtAuthorityRecord => r !== undefined),
    };
    this.#log.info(
      { journal_id: journal.id, x509_authority_id: journal.activeX509AuthorityId },
      'CA journal loaded',
    );
  }

  // ---- rotation ---------------------------------------------------------------------------------------

  async #rotate(force: boolean): Promise<void> {
    const nowMs = this.#clock.now().getTime();
    const next: State = { x509: [...this.#state.x509], jwt: [...this.#state.jwt] };
    const removed: Removed = { certs: [], kids: [] };
    let changed = force;
    for (const kind of ['x509', 'jwt'] as const) {
      const list: (X509AuthorityRecord | JwtAuthorityRecord)[] = next[kind];
      // Drop a prepared authority that expired (the server was down) and prune old ones nothing can rely on.
      for (let i = list.length - 1; i >= 0; i--) {
        const r = list[i] as X509AuthorityRecord | JwtAuthorityRecord;
        const expired =
          r.status === 'prepared' ? nowMs >= r.notAfter.getTime() : nowMs > r.notAfter.getTime();
        if (r.status !== 'active' && expired) {
          list.splice(i, 1);
          this.#noteRemoved(r, removed);
          changed = true;
        }
      }
      const active = list.find((r) => r.status === 'active');
      let prepared = list.find((r) => r.status === 'prepared');
      if (active === undefined || nowMs >= active.notAfter.getTime()) {
        prepared ??= await this.#prepareInto(kind, next, removed);
        this.#activateIn(kind, next, prepared.authorityId);
        changed = true;
      } else {
        const nb = active.notBefore.getTime();
        const na = active.notAfter.getTime();
        const life = na - nb;
        if (prepared === undefined && nowMs >= nb + life / 2) {
          prepared = await this.#prepareInto(kind, next, removed);
          changed = true;
        }
        if (prepared !== undefined && nowMs >= na - life / 6) {
          this.#activateIn(kind, next, prepared.authorityId);
          changed = true;
        }
      }
    }
    if (changed) await this.#commit(next, removed);
  }

  #noteRemoved(r: X509AuthorityRecord | JwtAuthorityRecord, removed: Removed): void {
    if ('bundleCerts' in r) removed.certs.push(...r.bundleCerts);
    else removed.kids.push(r.authorityId);
  }

  #otherSlot(kind: AuthorityKind, state: State): string {
    const [a, b] = SLOTS[kind];
    const active = (state[kind] as (X509AuthorityRecord | JwtAuthorityRecord)[]).find(
      (r) => r.status === 'active',
    );
    return active?.keyId === a ? b : a;
  }

  /** Generates a key in the free slot, makes the authority, and puts it in `state` as prepared. */
  async #prepareInto(
    kind: AuthorityKind,
    state: State,
    removed: Removed,
  ): Promise<X509AuthorityRecord | JwtAuthorityRecord> {
    const keyId = this.#otherSlot(kind, state);
    const list: (X509AuthorityRecord | JwtAuthorityRecord)[] = state[kind];
    const previous = list.findIndex((r) => r.status === 'prepared');
    if (previous >= 0) {
      this.#noteRemoved(list[previous] as X509AuthorityRecord | JwtAuthorityRecord, removed);
      list.splice(previous, 1);
    }
    // The slot is about to be overwritten: no authority may keep using its key, even if this operation fails.
    this.#keys.delete(keyId);
    this.#state = {
      x509: this.#state.x509.filter((r) => !(r.status === 'prepared' && r.keyId === keyId)),
      jwt: this.#state.jwt.filter((r) => !(r.status === 'prepared' && r.keyId === keyId)),
    };
    const key = await this.#km.generateKey(keyId, kind === 'x509' ? this.#caKeyType : this.#jwtKeyType);
    this.#keys.set(keyId, key);
    const now = this.#clock.now();
    if (kind === 'jwt') {
      const record: JwtAuthorityRecord = {
        authorityId: randomBytes(24).toString('base64url'),
        status: 'prepared',
        tainted: false,
        keyId,
        notBefore: now,
        notAfter: new Date(Math.floor((now.getTime() + this.#ttlMs) / 1000) * 1000),
        publicKey: key.publicKey,
      };
      state.jwt.push(record);
      if (this.#upstream?.publishJwtKey) {
        await this.#upstream.publishJwtKey({
          kid: record.authorityId,
          publicKey: key.publicKey,
          notAfter: record.notAfter,
        });
      }
      this.#log.info(
        { authority_id: record.authorityId, expires_at: record.notAfter.toISOString() },
        'JWT key prepared',
      );
      return record;
    }
    const record = this.#upstream
      ? await this.#mintUpstream(key, now, keyId)
      : this.#mintSelfSigned(key, now, keyId);
    state.x509.push(record);
    this.#log.info(
      { authority_id: record.authorityId, expires_at: record.notAfter.toISOString() },
      'X509 CA prepared',
    );
    return record;
  }

  #mintSelfSigned(key: ManagedKey, now: Date, keyId: string): X509AuthorityRecord {
    const built = buildCertificate(
      {
        publicKey: key.publicKey,
        subject: this.#subject,
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter: new Date(now.getTime() + this.#ttlMs),
        basicConstraints: { ca: true },
        keyUsage: { usages: CA_KEY_USAGE },
        subjectAltName: { uris: [this.#tdId] },
      },
      { privateKey: key.privateKey },
    );
    const cert = built.certificate;
    return {
      authorityId: hexKeyId(key.publicKey),
      status: 'prepared',
      tainted: false,
      keyId,
      notBefore: certNotBefore(cert),
      notAfter: certNotAfter(cert),
      chain: [cert],
      bundleCerts: [cert],
      upstreamAuthorityId: '',
    };
  }

  async #mintUpstream(key: ManagedKey, now: Date, keyId: string): Promise<X509AuthorityRecord> {
    const upstream = this.#upstream as UpstreamAuthority;
    const csr = buildCsr(key.privateKey, { uris: [this.#tdId], subject: this.#subject });
    const { chain, upstreamRoots } = await upstream.mintX509Ca({ csr, ttlSeconds: this.#ttlMs / 1000, now });
    const bad = (why: string) =>
      new SpiffeError('ERR_CA_UPSTREAM_FAILED', `ca: upstream "${upstream.name}" returned ${why}`);
    const cert = chain[0];
    if (cert === undefined) throw bad('an empty chain');
    if (upstreamRoots.length === 0) throw bad('no upstream roots');
    if (!cert.ca) throw bad('a certificate that is not a ca');
    if (!spkiDer(cert.publicKey).equals(spkiDer(key.publicKey))) throw bad('a certificate for another key');
    // X5-06: a signing certificate's SPIFFE ID, if any, is the trust domain ID without a path.
    const uris = (cert.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('URI:'))
      .map((n) => n.slice(4));
    if (uris.length > 1 || (uris.length === 1 && uris[0] !== this.#tdId)) {
      throw bad(`a ca certificate with uri sans ${JSON.stringify(uris)}`);
    }
    const nowMs = now.getTime();
    if (certNotAfter(cert).getTime() <= nowMs || certNotBefore(cert).getTime() > nowMs) {
      throw bad('a ca certificate not valid now');
    }
    // Fail closed: the chain must link up to one of the roots.
    const links = [...chain];
    for (let i = 0; i < links.length; i++) {
      const c = links[i] as X509Certificate;
      const parent = links[i + 1];
      const ok = parent
        ? c.checkIssued(parent) && c.verify(parent.publicKey)
        : upstreamRoots.some((r) => c.checkIssued(r) && c.verify(r.publicKey));
      if (!ok) throw bad('a chain that does not verify up to its roots');
    }
    const issuer =
      chain[1] ??
      upstreamRoots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey)) ??
      upstreamRoots[0];
    return {
      authorityId: hexKeyId(key.publicKey),
      status: 'prepared',
      tainted: false,
      keyId,
      notBefore: certNotBefore(cert),
      notAfter: new Date(Math.min(...chain.map((c) => certNotAfter(c).getTime()))),
      chain: [...chain],
      bundleCerts: [...upstreamRoots],
      upstreamAuthorityId: issuer ? hexKeyId(issuer.publicKey) : '',
    };
  }

  #activateIn(kind: AuthorityKind, state: State, authorityId: string): void {
    const list: (X509AuthorityRecord | JwtAuthorityRecord)[] = state[kind];
    for (let i = 0; i < list.length; i++) {
      const r = list[i] as X509AuthorityRecord | JwtAuthorityRecord;
      if (r.status === 'active') list[i] = { ...r, status: 'old' };
      else if (r.authorityId === authorityId && r.status === 'prepared') list[i] = { ...r, status: 'active' };
    }
    this.#log.info(
      { authority_id: authorityId, kind },
      kind === 'x509' ? 'X509 CA activated' : 'JWT key activated',
    );
  }

  /** Persists the journal, updates the bundle, then switches the in-memory state and signers. */
  async #commit(next: State, removed: Removed): Promise<void> {
    const activeX509 = next.x509.find((r) => r.status === 'active');
    const activeJwt = next.jwt.find((r) => r.status === 'active');
    const expiresAt = new Date(
      Math.max(
        this.#clock.now().getTime(),
        ...next.x509.map((r) => r.notAfter.getTime()),
        ...next.jwt.map((r) => r.notAfter.getTime()),
      ),
    );
    const journal = {
      activeX509AuthorityId: activeX509?.authorityId ?? '',
      activeJwtAuthorityId: activeJwt?.authorityId ?? '',
      entries: marshalJournal(next),
      expiresAt,
    };
    if (this.#journalId === undefined) {
      this.#journalId = (await this.#ds.createCaJournal(journal)).id;
    } else {
      try {
        await this.#ds.updateCaJournal({ ...journal, id: this.#journalId });
      } catch (err) {
        if (!(err instanceof SpiffeError && err.code === 'ERR_DATASTORE_NOT_FOUND')) throw err;
        this.#journalId = (await this.#ds.createCaJournal(journal)).id;
      }
    }
    await this.#syncBundle(next, removed);
    this.#state = next;
    this.#x509 = activeX509 ? this.#makeActiveX509(activeX509) : undefined;
    this.#jwt = activeJwt ? this.#makeActiveJwt(activeJwt) : undefined;
  }

  #makeActiveX509(record: X509AuthorityRecord): ActiveX509 {
    const key = this.#keys.get(record.keyId);
    const cert = record.chain[0] as X509Certificate;
    if (!key) throw precondition(`the key of x509 authority "${record.authorityId}" is missing`);
    return {
      record,
      ctx: createIssuerContext({ certificate: cert, privateKey: key.privateKey }),
      privateKey: key.privateKey,
      intermediates: record.upstreamAuthorityId === '' ? [] : record.chain.map((c) => c.raw),
      notAfterMs: record.notAfter.getTime(),
    };
  }

  #makeActiveJwt(record: JwtAuthorityRecord): ActiveJwt {
    const key = this.#keys.get(record.keyId);
    if (!key) throw precondition(`the key of jwt authority "${record.authorityId}" is missing`);
    const type = keyTypeOf(key.privateKey);
    const alg =
      type === 'ec-p256' ? 'ES256' : type === 'ec-p384' ? 'ES384' : type === 'rsa-2048' ? 'RS256' : undefined;
    if (alg === undefined)
      throw precondition(`jwt authority "${record.authorityId}" has an unusable key type`);
    return {
      record,
      privateKey: key.privateKey,
      headerB64: b64url(JSON.stringify({ alg, kid: record.authorityId, typ: 'JWT' })),
      hash: alg === 'ES384' ? 'sha384' : 'sha256',
      dsaEncoding: alg === 'RS256' ? undefined : 'ieee-p1363',
      notAfterMs: record.notAfter.getTime(),
    };
  }

  /** Adds every live authority's contributions to the stored bundle and removes `removed` ones no longer used. */
  async #syncBundle(state: State, removed: Removed): Promise<void> {
    const nowMs = this.#clock.now().getTime();
    const wantCerts = new Map<string, X509Certificate>();
    for (const r of state.x509) for (const c of r.bundleCerts) wantCerts.set(c.fingerprint256, c);
    const wantKeys = new Map<string, KeyObject>();
    for (const r of state.jwt) wantKeys.set(r.authorityId, r.publicKey);
    const dropCerts = new Set(removed.certs.map((c) => c.fingerprint256).filter((f) => !wantCerts.has(f)));
    const dropKids = new Set(removed.kids.filter((k) => !wantKeys.has(k)));
    const stored = await this.#ds.appendBundle(this.#td.name, (current) => {
      const cur = current ? SpiffeBundle.parse(this.#td, current.data) : undefined;
      const certs = new Map<string, X509Certificate>();
      for (const c of cur?.x509Authorities() ?? []) {
        // Expired authorities can no longer anchor anything: prune them, whoever added them.
        if (dropCerts.has(c.fingerprint256) || certNotAfter(c).getTime() < nowMs) continue;
        certs.set(c.fingerprint256, c);
      }
      for (const [f, c] of wantCerts) certs.set(f, c);
      const keys = new Map<string, KeyObject>();
      for (const [kid, k] of cur?.jwtAuthorities() ?? []) if (!dropKids.has(kid)) keys.set(kid, k);
      for (const [kid, k] of wantKeys) keys.set(kid, k);
      const seq = current?.sequence ?? 0;
      const candidate = SpiffeBundle.fromAuthorities(this.#td, {
        x509Authorities: certs.values(),
        jwtAuthorities: keys,
        sequenceNumber: seq,
        refreshHint: cur?.refreshHint ?? this.#refreshHint,
      });
      if (current && cur && candidate.equals(cur)) return current;
      const bundle = candidate.withMetadata({ sequenceNumber: seq + 1, refreshHint: this.#refreshHint });
      return { trustDomain: this.#td.name, data: Buffer.from(bundle.marshal()), sequence: seq + 1 };
    });
    const bundle = SpiffeBundle.parse(this.#td, stored.data);
    if (!bundle.equals(this.#bundle)) {
      this.#bundle = bundle;
      for (const l of this.#bundleListeners) {
        try {
          l(bundle);
        } catch (err) {
          this.#log.error({ err }, 'Bundle listener failed');
        }
      }
    }
  }

  // ---- bundle -----------------------------------------------------------------------------------------

  bundle(): SpiffeBundle {
    return this.#bundle;
  }

  onBundleChange(listener: (bundle: SpiffeBundle) => void): () => void {
    this.#bundleListeners.add(listener);
    return () => this.#bundleListeners.delete(listener);
  }

  onAuthorityTainted(listener: (event: TaintEvent) => void): () => void {
    this.#taintListeners.add(listener);
    return () => this.#taintListeners.delete(listener);
  }

  taintedAuthorities(): { readonly x509: readonly string[]; readonly jwt: readonly string[] } {
    return {
      x509: this.#state.x509.filter((r) => r.tainted).map((r) => r.authorityId),
      jwt: this.#state.jwt.filter((r) => r.tainted).map((r) => r.authorityId),
    };
  }

  activeX509Authority(): X509Certificate {
    if (!this.#x509) throw precondition('no active x509 authority');
    return this.#x509.ctx.certificate;
  }

  // ---- issuance ---------------------------------------------------------------------------------------

  #checkId(input: SpiffeId | string): SpiffeId {
    const id = typeof input === 'string' ? SpiffeId.fromString(input) : input;
    if (!(id instanceof SpiffeId)) throw new TypeError('ca: spiffeId must be a SpiffeId or a string');
    if (!id.memberOf(this.#td)) {
      throw caInvalid(`"${id.toString()}" is not a member of trust domain "${this.#td.name}"`);
    }
    if (id.path === '') throw caInvalid(`"${id.toString()}" has no path (an svid id needs one)`);
    if (id.toString().length > MAX_ID_LENGTH) throw caInvalid(`spiffe id longer than ${MAX_ID_LENGTH} bytes`);
    return id;
  }

  #checkTtl(ttl: number): void {
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
      throw caInvalid(`ttl must be a positive number of seconds, got ${JSON.stringify(ttl)}`);
    }
  }

  /** Checks a request and fixes the leaf's validity (clamped to the authority's). */
  #planX509Svid(
    active: ActiveX509,
    request: { spiffeId: SpiffeId | string; ttlSeconds: number; dnsNames?: readonly string[] | undefined },
  ): Omit<LeafJob, 'csr'> {
    const id = this.#checkId(request.spiffeId);
    this.#checkTtl(request.ttlSeconds);
    const nowMs = this.#clock.now().getTime();
    const notAfterMs = Math.min(nowMs + request.ttlSeconds * 1000, active.notAfterMs);
    const notAfter = Math.floor(notAfterMs / 1000) * 1000;
    if (notAfter <= nowMs) throw precondition('the active x509 authority expires too soon to sign');
    const dnsNames = request.dnsNames ?? [];
    for (const d of dnsNames) checkDnsName(d);
    return { spiffeId: id.toString(), notBeforeMs: nowMs - BACKDATE_MS, notAfterMs: notAfter, dnsNames };
  }

  #signed(active: ActiveX509, leaf: Buffer, notAfterMs: number): SignedX509Svid {
    return {
      chain: [leaf, ...active.intermediates],
      notAfter: new Date(notAfterMs),
      serialNumber: serialOf(leaf),
      authorityId: active.record.authorityId,
    };
  }

  signX509Svid(request: SignX509SvidRequest): SignedX509Svid {
    const active = this.#x509;
    if (!active) throw precondition('no active x509 authority');
    const plan = this.#planX509Svid(active, request);
    let spki: Buffer;
    if (request.publicKey instanceof Uint8Array) {
      spki = Buffer.from(
        request.publicKey.buffer,
        request.publicKey.byteOffset,
        request.publicKey.byteLength,
      );
      if (!spkiSupported(spki)) throw caInvalid('public key is not a supported subject public key info');
    } else {
      const key = request.publicKey;
      if (key.type !== 'public' || keyTypeOf(key) === undefined) {
        throw caInvalid(`unsupported public key type "${String(key.asymmetricKeyType)}"`);
      }
      spki = spkiDer(key);
    }
    const notBefore = new Date(plan.notBeforeMs);
    const notAfter = new Date(plan.notAfterMs);
    let leaf: Buffer;
    if (plan.dnsNames.length === 0) {
      leaf = buildLeafSvid(plan.spiffeId, spki, notBefore, notAfter, active.ctx);
    } else {
      leaf = buildCertificate(
        {
          publicKey: createPublicKey({ key: spki, format: 'der', type: 'spki' }),
          subject: { commonName: plan.dnsNames[0] as string },
          notBefore,
          notAfter,
          basicConstraints: { ca: false },
          keyUsage: { usages: LEAF_KEY_USAGE },
          extKeyUsage: ['serverAuth', 'clientAuth'],
          subjectAltName: { uris: [plan.spiffeId], dnsNames: plan.dnsNames },
        },
        { certificate: active.ctx.certificate, privateKey: active.privateKey },
      ).der;
    }
    return this.#signed(active, leaf, plan.notAfterMs);
  }

  async signX509SvidCsrs(requests: readonly SignX509SvidCsrRequest[]): Promise<(SignedX509Svid | Error)[]> {
    const active = this.#x509;
    if (!active) throw precondition('no active x509 authority');
    const results: (SignedX509Svid | Error)[] = new Array(requests.length);
    const jobs: LeafJob[] = [];
    const at: number[] = [];
    requests.forEach((r, i) => {
      try {
        if (!(r.csr instanceof Uint8Array)) throw new TypeError('ca: csr must be bytes');
        jobs.push({ ...this.#planX509Svid(active, r), csr: r.csr });
        at.push(i);
      } catch (err) {
        results[i] = err instanceof Error ? err : new Error(String(err));
      }
    });
    let outcomes: LeafOutcome[] | undefined;
    const pool = this.#pool;
    if (pool?.worthIt(jobs.length)) {
      try {
        outcomes = await pool.issue(
          {
            id: active.record.authorityId,
            certificateDer: active.ctx.certificate.raw,
            privateKey: active.privateKey,
          },
          jobs,
        );
      } catch (err) {
        if (!this.#closed) this.#log.warn({ err }, 'Issuance workers failed; issuing in-process');
      }
    }
    outcomes ??= jobs.map((j) => issueLeaf(j, active.ctx));
    outcomes.forEach((o, k) => {
      const i = at[k] as number;
      const job = jobs[k] as LeafJob;
      if ('der' in o) {
        const der = Buffer.from(o.der.buffer, o.der.byteOffset, o.der.byteLength);
        results[i] = this.#signed(active, der, job.notAfterMs);
      } else if (o.fault === 'csr') {
        results[i] = new X509SvidError('ERR_X509SVID_INVALID', o.message);
      } else {
        results[i] = new Error(`ca: cannot sign an x509-svid: ${o.message}`);
      }
    });
    return results;
  }

  signServerSvid(request: {
    publicKey: KeyObject | Uint8Array;
    ttlSeconds: number;
    dnsNames?: readonly string[];
  }): SignedX509Svid {
    return this.signX509Svid({ ...request, spiffeId: SpiffeId.fromPath(this.#td, '/spire/server') });
  }

  signAgentSvid(request: {
    agentId: SpiffeId | string;
    publicKey: KeyObject | Uint8Array;
    ttlSeconds: number;
  }): SignedX509Svid {
    const id = this.#checkId(request.agentId);
    if (!id.path.startsWith('/spire/agent/')) {
      throw caInvalid(`"${id.toString()}" is not an agent id (spiffe://<td>/spire/agent/...)`);
    }
    return this.signX509Svid({ spiffeId: id, publicKey: request.publicKey, ttlSeconds: request.ttlSeconds });
  }

  mintJwtSvid(request: MintJwtSvidRequest): MintedJwtSvid {
    const active = this.#jwt;
    if (!active) throw precondition('no active jwt authority');
    const id = this.#checkId(request.spiffeId);
    this.#checkTtl(request.ttlSeconds);
    const audience = request.audience;
    if (!Array.isArray(audience) || audience.length === 0)
      throw caInvalid('at least one audience is required');
    for (const a of audience) {
      if (typeof a !== 'string' || a === '') throw caInvalid('audiences must be non-empty strings');
    }
    const nowMs = this.#clock.now().getTime();
    const iat = Math.floor(nowMs / 1000);
    const exp = Math.floor(Math.min(nowMs + request.ttlSeconds * 1000, active.notAfterMs) / 1000);
    if (exp <= iat) throw precondition('the active jwt authority expires too soon to sign');
    const claims: Record<string, unknown> = {
      aud: audience.length === 1 ? audience[0] : [...audience],
      exp,
      iat,
    };
    if (this.#issuer !== undefined) claims.iss = this.#issuer;
    claims.sub = id.toString();
    const signingInput = `${active.headerB64}.${b64url(JSON.stringify(claims))}`;
    const signature = cryptoSign(
      active.hash,
      Buffer.from(signingInput),
      active.dsaEncoding ? { key: active.privateKey, dsaEncoding: active.dsaEncoding } : active.privateKey,
    );
    return {
      token: `${signingInput}.${signature.toString('base64url')}`,
      issuedAt: new Date(iat * 1000),
      expiresAt: new Date(exp * 1000),
      kid: active.record.authorityId,
    };
  }

  // ---- local authority operations ----------------------------------------------------------------------

  showAuthorities(kind: AuthorityKind): AuthorityState {
    const list: readonly (X509AuthorityRecord | JwtAuthorityRecord)[] = this.#state[kind];
    const active = list.find((r) => r.status === 'active');
    const prepared = list.find((r) => r.status === 'prepared');
    return {
      active: active ? info(active) : undefined,
      prepared: prepared ? info(prepared) : undefined,
      old: list.filter((r) => r.status === 'old').map(info),
    };
  }

  prepareAuthority(kind: AuthorityKind): Promise<AuthorityInfo> {
    return this.#serialize(async () => {
      const next: State = { x509: [...this.#state.x509], jwt: [...this.#state.jwt] };
      const removed: Removed = { certs: [], kids: [] };
      const record = await this.#prepareInto(kind, next, removed);
      await this.#commit(next, removed);
      return info(record);
    });
  }

  activateAuthority(kind: AuthorityKind, authorityId: string): Promise<AuthorityInfo> {
    return this.#serialize(async () => {
      if (typeof authorityId !== 'string' || authorityId === '')
        throw caInvalid('an authority id is required');
      const list: readonly (X509AuthorityRecord | JwtAuthorityRecord)[] = this.#state[kind];
      const prepared = list.find((r) => r.status === 'prepared');
      if (!prepared) throw precondition(`no prepared ${kind} authority`);
      if (prepared.authorityId !== authorityId) {
        throw precondition(`"${authorityId}" is not the prepared ${kind} authority`);
      }
      if (prepared.notAfter.getTime() <= this.#clock.now().getTime()) {
        throw precondition(`prepared ${kind} authority "${authorityId}" has expired`);
      }
      const next: State = { x509: [...this.#state.x509], jwt: [...this.#state.jwt] };
      this.#activateIn(kind, next, authorityId);
      await this.#commit(next, { certs: [], kids: [] });
      return info({ ...prepared, status: 'active' });
    });
  }

  #findOld(kind: AuthorityKind, authorityId: string, verb: string): X509AuthorityRecord | JwtAuthorityRecord {
    if (typeof authorityId !== 'string' || authorityId === '') throw caInvalid('an authority id is required');
    if (kind === 'x509' && this.#upstream) {
      throw precondition(`a local x509 authority cannot be ${verb} when an upstream authority is configured`);
    }
    const list: readonly (X509AuthorityRecord | JwtAuthorityRecord)[] = this.#state[kind];
    const r = list.find((x) => x.authorityId === authorityId);
    if (!r) throw caInvalid(`no ${kind} authority "${authorityId}"`);
    if (r.status === 'active')
      throw precondition(`the active ${kind} authority "${authorityId}" cannot be ${verb}`);
    if (r.status !== 'old')
      throw precondition(`only an old ${kind} authority can be ${verb}, "${authorityId}" is ${r.status}`);
    return r;
  }

  taintAuthority(kind: AuthorityKind, authorityId: string): Promise<AuthorityInfo> {
    return this.#serialize(async () => {
      const r = this.#findOld(kind, authorityId, 'tainted');
      if (r.tainted) throw precondition(`${kind} authority "${authorityId}" is already tainted`);
      const next: State = {
        x509: this.#state.x509.map((x) =>
          x.authorityId === authorityId && kind === 'x509' ? { ...x, tainted: true } : x,
        ),
        jwt: this.#state.jwt.map((x) =>
          x.authorityId === authorityId && kind === 'jwt' ? { ...x, tainted: true } : x,
        ),
      };
      await this.#commit(next, { certs: [], kids: [] });
      this.#log.warn({ authority_id: authorityId, kind }, 'Authority tainted');
      for (const l of this.#taintListeners) {
        try {
          l({ kind, authorityId });
        } catch (err) {
          this.#log.error({ err }, 'Taint listener failed');
        }
      }
      return info({ ...r, tainted: true });
    });
  }

  revokeAuthority(kind: AuthorityKind, authorityId: string): Promise<AuthorityInfo> {
    return this.#serialize(async () => {
      const r = this.#findOld(kind, authorityId, 'revoked');
      if (!r.tainted)
        throw precondition(`only a tainted ${kind} authority can be revoked, "${authorityId}" is not`);
      const removed: Removed = { certs: [], kids: [] };
      this.#noteRemoved(r, removed);
      const next: State = {
        x509: kind === 'x509' ? this.#state.x509.filter((x) => x !== r) : [...this.#state.x509],
        jwt: kind === 'jwt' ? this.#state.jwt.filter((x) => x !== r) : [...this.#state.jwt],
      };
      await this.#commit(next, removed);
      this.#log.warn({ authority_id: authorityId, kind }, 'Authority revoked');
      return info(r);
    });
  }
}
