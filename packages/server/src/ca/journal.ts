/**
 * The CA journal's content: every X.509 and JWT authority the CA still tracks (prepared, active, and old ones
 * that may still have valid SVIDs), serialized as JSON into the datastore's `CaJournal.entries`.
 *
 * @module
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { SpiffeError } from '@tessera/spiffe/errors';

/** Lifecycle of an authority, as SPIRE names it. */
export type AuthorityStatus = 'prepared' | 'active' | 'old';

/** Fields shared by X.509 and JWT authorities. */
export interface AuthorityBase {
  /** X.509: the CA certificate's subject key ID (lowercase hex); JWT: the key ID. */
  readonly authorityId: string;
  readonly status: AuthorityStatus;
  /** Set by `taint`: the authority is distrusted and agents should re-issue what it signed. */
  readonly tainted: boolean;
  /** The key manager ID of the signing key (meaningful while prepared or active). */
  readonly keyId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** An X.509 authority: the server's CA certificate and what the trust bundle holds for it. */
export interface X509AuthorityRecord extends AuthorityBase {
  /** The CA certificate, then upstream intermediates (not roots). */
  readonly chain: readonly X509Certificate[];
  /** Certificates this authority puts in the bundle: itself when self-signed, else the upstream roots. */
  readonly bundleCerts: readonly X509Certificate[];
  /** Subject key ID (hex) of the upstream certificate that signed this CA; empty when self-signed. */
  readonly upstreamAuthorityId: string;
}

/** A JWT signing key. */
export interface JwtAuthorityRecord extends AuthorityBase {
  readonly publicKey: KeyObject;
}

/** The journal: authorities of both kinds. */
export interface JournalContent {
  readonly x509: readonly X509AuthorityRecord[];
  readonly jwt: readonly JwtAuthorityRecord[];
}

interface Stored {
  v: 1;
  x509: {
    id: string;
    status: AuthorityStatus;
    tainted: boolean;
    keyId: string;
    nb: string;
    na: string;
    chain: string[];
    bundle: string[];
    up: string;
  }[];
  jwt: {
    id: string;
    status: AuthorityStatus;
    tainted: boolean;
    keyId: string;
    nb: string;
    na: string;
    spki: string;
  }[];
}

/**
 * Serializes a journal as JSON (certificates and keys as base64 DER).
 *
 * @example const json = marshalJournal({ x509: [], jwt: [] });
 */
export function marshalJournal(content: JournalContent): string {
  const stored: Stored = {
    v: 1,
    x509: content.x509.map((a) => ({
      id: a.authorityId,
      status: a.status,
      tainted: a.tainted,
      keyId: a.keyId,
      nb: a.notBefore.toISOString(),
      na: a.notAfter.toISOString(),
      chain: a.chain.map((c) => c.raw.toString('base64')),
      bundle: a.bundleCerts.map((c) => c.raw.toString('base64')),
      up: a.upstreamAuthorityId,
    })),
    jwt: content.jwt.map((a) => ({
      id: a.authorityId,
      status: a.status,
      tainted: a.tainted,
      keyId: a.keyId,
      nb: a.notBefore.toISOString(),
      na: a.notAfter.toISOString(),
      spki: a.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    })),
  };
  return JSON.stringify(stored);
}

const STATUSES: readonly string[] = ['prepared', 'active', 'old'];

function bad(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError(
    'ERR_CA_INVALID',
    `ca: corrupt journal: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} is not a string`);
  return v;
}

function date(v: unknown, what: string): Date {
  const d = new Date(str(v, what));
  if (Number.isNaN(d.getTime())) throw bad(`${what} is not a date`);
  return d;
}

function status(v: unknown): AuthorityStatus {
  if (typeof v !== 'string' || !STATUSES.includes(v)) throw bad(`unknown status ${JSON.stringify(v)}`);
  return v as AuthorityStatus;
}

function certs(v: unknown, what: string): X509Certificate[] {
  if (!Array.isArray(v)) throw bad(`${what} is not a list`);
  return v.map((b, i) => {
    try {
      return new X509Certificate(Buffer.from(str(b, `${what}[${i}]`), 'base64'));
    } catch (err) {
      if (err instanceof SpiffeError) throw err;
      throw bad(`${what}[${i}] is not a certificate`, err);
    }
  });
}

function list(v: unknown, what: string): Record<string, unknown>[] {
  if (!Array.isArray(v)) throw bad(`${what} is not a list`);
  return v.map((e) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw bad(`${what} entry is not an object`);
    return e as Record<string, unknown>;
  });
}

/**
 * Parses a journal written by {@link marshalJournal}.
 *
 * @throws {SpiffeError} ERR_CA_INVALID when the JSON is not a journal.
 * @example const content = parseJournal(journal.entries);
 */
export function parseJournal(json: string): JournalContent {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw bad('not JSON', err);
  }
  if (typeof doc !== 'object' || doc === null || (doc as { v?: unknown }).v !== 1)
    throw bad('unknown version');
  const d = doc as Record<string, unknown>;
  const x509 = list(d.x509, 'x509').map((e): X509AuthorityRecord => {
    const chain = certs(e.chain, 'x509 chain');
    if (chain.length === 0) throw bad('x509 chain is empty');
    return {
      authorityId: str(e.id, 'x509 id'),
      status: status(e.status),
      tainted: e.tainted === true,
      keyId: str(e.keyId, 'x509 keyId'),
      notBefore: date(e.nb, 'x509 notBefore'),
      notAfter: date(e.na, 'x509 notAfter'),
      chain,
      bundleCerts: certs(e.bundle, 'x509 bundle'),
      upstreamAuthorityId: str(e.up, 'x509 upstream id'),
    };
  });
  const jwt = list(d.jwt, 'jwt').map((e): JwtAuthorityRecord => {
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({
        key: Buffer.from(str(e.spki, 'jwt key'), 'base64'),
        format: 'der',
        type: 'spki',
      });
    } catch (err) {
      if (err instanceof SpiffeError) throw err;
      throw bad('jwt key is not a public key', err);
    }
    return {
      authorityId: str(e.id, 'jwt id'),
      status: status(e.status),
      tainted: e.tainted === true,
      keyId: str(e.keyId, 'jwt keyId'),
      notBefore: date(e.nb, 'jwt notBefore'),
      notAfter: date(e.na, 'jwt notAfter'),
      publicKey,
    };
  });
  return { x509, jwt };
}
