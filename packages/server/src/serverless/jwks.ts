/**
 * Verification keys of token issuers: OIDC discovery (`<issuer>/.well-known/openid-configuration` → `jwks_uri`),
 * the JWKS itself over HTTPS (optionally with a private CA), or a local JWKS file. Key sets are cached, refreshed
 * when stale, and refreshed early (at most once per `minRefreshIntervalMs`) when a token names an unknown `kid`.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import type { ServerlessClock } from './types.js';

/** Where the keys of one issuer come from. */
export interface JwksLocation {
  readonly issuer: string;
  /** JWKS URL (skips discovery). */
  readonly jwksUri?: string;
  /** Local JWKS file (skips the network). */
  readonly jwksFile?: string;
  /** PEM CA certificates trusted for discovery and JWKS fetches (default: the system store). */
  readonly caPem?: string;
}

/** The resolved key set of an issuer, as jose consumes it. */
export type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/** Options of {@link JwksRegistry}. */
export interface JwksRegistryOptions {
  readonly clock: ServerlessClock;
  /** Age after which a key set is fetched again. Default one hour. */
  readonly cacheTtlMs?: number;
  /** Minimum interval between refreshes caused by unknown key IDs. Default 30 s. */
  readonly minRefreshIntervalMs?: number;
  /** Network timeout of a fetch. Default 10 s. */
  readonly timeoutMs?: number;
}

const MAX_DOCUMENT_BYTES = 1 << 20;

/** Fetches a JSON document over HTTPS (status 200 required, size and time bounded). */
export function fetchJson(url: string, caPem: string | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    if (u.protocol !== 'https:') {
      reject(new Error(`jwks: ${JSON.stringify(url)} is not an https URL`));
      return;
    }
    const req = request(
      u,
      {
        method: 'GET',
        headers: { accept: 'application/json' },
        ...(caPem === undefined ? {} : { ca: caPem }),
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`jwks: unexpected status ${res.statusCode} fetching ${JSON.stringify(url)}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_DOCUMENT_BYTES) {
            req.destroy(
              new Error(
                `jwks: document at ${JSON.stringify(url)} is larger than ${MAX_DOCUMENT_BYTES} bytes`,
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(new Error(`jwks: document at ${JSON.stringify(url)} is not JSON`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`jwks: timeout fetching ${JSON.stringify(url)}`)));
    req.on('error', reject);
    req.end();
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The discovery URL of an issuer (`<issuer>/.well-known/openid-configuration`). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

class IssuerKeys {
  readonly #loc: JwksLocation;
  readonly #opts: Required<JwksRegistryOptions>;
  #resolver: KeyResolver | undefined;
  #kids = new Set<string>();
  #fetchedAt = -Infinity;
  #lastForced = -Infinity;
  #inflight: Promise<void> | undefined;

  constructor(loc: JwksLocation, opts: Required<JwksRegistryOptions>) {
    this.#loc = loc;
    this.#opts = opts;
  }

  async #load(): Promise<void> {
    const loc = this.#loc;
    let doc: unknown;
    if (loc.jwksFile !== undefined) {
      doc = JSON.parse(await readFile(loc.jwksFile, 'utf8'));
    } else {
      let uri = loc.jwksUri;
      if (uri === undefined) {
        const disc = await fetchJson(discoveryUrl(loc.issuer), loc.caPem, this.#opts.timeoutMs);
        if (!isRecord(disc) || typeof disc.jwks_uri !== 'string') {
          throw new Error(`jwks: discovery document of ${JSON.stringify(loc.issuer)} has no jwks_uri`);
        }
        // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the issuer it was fetched for.
        if (disc.issuer !== loc.issuer) {
          throw new Error(
            `jwks: discovery document names issuer ${JSON.stringify(disc.issuer)}, expected ${JSON.stringify(loc.issuer)}`,
          );
        }
        uri = disc.jwks_uri;
      }
      doc = await fetchJson(uri, loc.caPem, this.#opts.timeoutMs);
    }
    if (!isRecord(doc) || !Array.isArray(doc.keys)) throw new Error('jwks: key set has no "keys" array');
    const jwks = doc as unknown as JSONWebKeySet;
    this.#resolver = createLocalJWKSet(jwks);
    this.#kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    this.#fetchedAt = this.#opts.clock.now().getTime();
  }

  #refresh(): Promise<void> {
    this.#inflight ??= this.#load().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  /**
   * The key set, fetched when missing or stale, and refreshed (rate limited) when `kid` is not in it.
   * A failed refresh of a stale set keeps the old set.
   */
  async resolver(kid: string): Promise<KeyResolver> {
    const now = this.#opts.clock.now().getTime();
    if (this.#resolver === undefined) {
      await this.#refresh();
    } else if (now - this.#fetchedAt >= this.#opts.cacheTtlMs) {
      await this.#refresh().catch(() => undefined);
    } else if (!this.#kids.has(kid) && now - this.#lastForced >= this.#opts.minRefreshIntervalMs) {
      this.#lastForced = now;
      await this.#refresh().catch(() => undefined);
    }
    if (this.#resolver === undefined) throw new Error('jwks: no key set');
    return this.#resolver;
  }
}

/** Key sets of every configured issuer, shared by policies (and kept across policy reloads). */
export class JwksRegistry {
  readonly #opts: Required<JwksRegistryOptions>;
  readonly #issuers = new Map<string, IssuerKeys>();

  constructor(options: JwksRegistryOptions) {
    this.#opts = {
      clock: options.clock,
      cacheTtlMs: options.cacheTtlMs ?? 3600_000,
      minRefreshIntervalMs: options.minRefreshIntervalMs ?? 30_000,
      timeoutMs: options.timeoutMs ?? 10_000,
    };
  }

  /** The keys of an issuer at a location (one cache per distinct location). */
  keys(loc: JwksLocation): IssuerKeys {
    const key = JSON.stringify([loc.issuer, loc.jwksUri ?? '', loc.jwksFile ?? '', loc.caPem ?? '']);
    let k = this.#issuers.get(key);
    if (k === undefined) {
      k = new IssuerKeys(loc, this.#opts);
      this.#issuers.set(key, k);
    }
    return k;
  }
}

export type { IssuerKeys };
