/**
 * The SVIDStore plugin contract: what the agent pushes for an entry created with `store_svid`, how an entry's
 * selectors name the store and the place in it, and the JSON document written to the store — the same
 * document SPIRE's SVIDStore plugins write (`spiffeID`, `x509SVID`, `x509SVIDKey`, `bundle`,
 * `federatedBundles`), so existing readers keep working, plus Tessera's `jwtSVIDs` when the entry asks for them.
 *
 * @module
 */
import { SpiffeError } from '@tessera/spiffe/errors';

/** A failure of an SVID store: bad selectors, a secret it does not own, or the backend failing. */
export class SvidStoreError extends SpiffeError {}

/** A selector of a store-SVID entry, `type:value` (e.g. `aws_secretsmanager:secretname:db-svid`). */
export interface StoreSelector {
  readonly type: string;
  readonly value: string;
}

/** The identity pushed to a store for one entry, already encoded the way SPIRE stores it. */
export interface StoredSvid {
  /** The entry's SPIFFE ID. */
  readonly spiffeId: string;
  /** The X509-SVID chain as PEM, leaf first. */
  readonly x509Svid: string;
  /** The private key as unencrypted PKCS#8 PEM. */
  readonly x509SvidKey: string;
  /** The agent's own trust domain bundle (X.509 authorities) as PEM. */
  readonly bundle: string;
  /** Bundles of the trust domains the entry federates with, keyed by trust domain SPIFFE ID (`spiffe://td`). */
  readonly federatedBundles: Readonly<Record<string, string>>;
  /** JWT-SVIDs keyed by audience, for entries with `jwtaudience` selectors (Tessera addition). */
  readonly jwtSvids: Readonly<Record<string, string>>;
  /** When the X509-SVID expires. */
  readonly expiresAt: Date;
}

/**
 * An SVIDStore plugin. `selectors` are the entry's selectors, all of the plugin's type.
 *
 * Implementations must be idempotent (a put may be repeated, a delete of a missing secret succeeds), must never
 * overwrite or delete a secret they did not create, and must never put key material in errors or logs.
 */
export interface SvidStore {
  /** The selector type that routes entries to this store (`disk`, `aws_secretsmanager`, `gcp_secretmanager`). */
  readonly name: string;
  /**
   * Checks the selectors without touching the backend.
   *
   * @throws {SvidStoreError} ERR_SVIDSTORE_INVALID naming the selector at fault
   */
  validate(selectors: readonly StoreSelector[]): void;
  /**
   * Creates or replaces the secret named by `selectors`.
   *
   * @throws {SvidStoreError} ERR_SVIDSTORE_INVALID, ERR_SVIDSTORE_NOT_OWNED, ERR_SVIDSTORE_FAILED
   */
  put(secret: StoredSvid, selectors: readonly StoreSelector[]): Promise<void>;
  /**
   * Deletes the secret named by `selectors`; succeeds when it does not exist.
   *
   * @throws {SvidStoreError} ERR_SVIDSTORE_INVALID, ERR_SVIDSTORE_NOT_OWNED, ERR_SVIDSTORE_FAILED
   */
  delete(selectors: readonly StoreSelector[]): Promise<void>;
  /** Releases clients and connections. */
  close(): Promise<void>;
}

/** Selector key (after the store type) that asks for a JWT-SVID with that audience: `disk:jwtaudience:aud`. */
export const JWT_AUDIENCE_KEY = 'jwtaudience';

/** The parsed `key:value` metadata of an entry's store selectors; repeatable keys keep every value. */
export type StoreMetadata = ReadonlyMap<string, readonly string[]>;

/**
 * Parses an entry's store selectors into `key → values` (the value splits at its first colon, so ARNs and
 * URLs keep theirs), checking that every selector is of `store`'s type, that keys are known and that only
 * `repeatable` keys repeat.
 *
 * @throws {SvidStoreError} ERR_SVIDSTORE_INVALID naming the selector at fault
 * @example
 * ```ts
 * const md = parseStoreSelectors('disk', [{ type: 'disk', value: 'name:db' }], ['name']);
 * md.get('name'); // ['db']
 * ```
 */
export function parseStoreSelectors(
  store: string,
  selectors: readonly StoreSelector[],
  keys: readonly string[],
  repeatable: readonly string[] = [JWT_AUDIENCE_KEY],
): StoreMetadata {
  const out = new Map<string, string[]>();
  for (const s of selectors) {
    if (s.type !== store) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_INVALID',
        `svidstore: selector "${s.type}:${s.value}" is not of the store type "${store}"`,
      );
    }
    const i = s.value.indexOf(':');
    if (i <= 0 || i === s.value.length - 1) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_INVALID',
        `svidstore: selector "${s.type}:${s.value}" must be "${store}:<key>:<value>"`,
      );
    }
    const key = s.value.slice(0, i);
    const value = s.value.slice(i + 1);
    if (!keys.includes(key) && !repeatable.includes(key)) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_INVALID',
        `svidstore: unknown selector key "${key}" for store "${store}" (known: ${[...keys, ...repeatable].join(', ')})`,
      );
    }
    const list = out.get(key);
    if (list === undefined) out.set(key, [value]);
    else if (!repeatable.includes(key)) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_INVALID',
        `svidstore: selector key "${key}" of store "${store}" is given more than once`,
      );
    } else if (!list.includes(value)) list.push(value);
  }
  return out;
}

/** The single value of `key`, or undefined. */
export function metadataValue(md: StoreMetadata, key: string): string | undefined {
  return md.get(key)?.[0];
}

/**
 * Encodes a stored SVID as the JSON document SPIRE's SVIDStore plugins write: keys `spiffeID`, `x509SVID`,
 * `x509SVIDKey`, `bundle`, `federatedBundles` (omitted when empty, as SPIRE's `omitempty`), then `jwtSVIDs`
 * (Tessera; omitted when empty).
 *
 * @example
 * ```ts
 * const json = marshalStoredSvid(secret); // '{"spiffeID":"spiffe://example.org/db","x509SVID":"-----BEGIN…'
 * ```
 */
export function marshalStoredSvid(s: StoredSvid): string {
  const doc: Record<string, unknown> = {
    spiffeID: s.spiffeId,
    x509SVID: s.x509Svid,
    x509SVIDKey: s.x509SvidKey,
    bundle: s.bundle,
  };
  if (Object.keys(s.federatedBundles).length > 0) doc.federatedBundles = sortedRecord(s.federatedBundles);
  if (Object.keys(s.jwtSvids).length > 0) doc.jwtSVIDs = sortedRecord(s.jwtSvids);
  return JSON.stringify(doc);
}

function sortedRecord(r: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k] as string;
  return out;
}

/** The message of `err` for a log or a wrapped error (never the request, which holds the key). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
