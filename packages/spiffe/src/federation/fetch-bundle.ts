import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import * as https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import * as tls from 'node:tls';
import type { X509BundleSource } from '../bundle/source.js';
import { SpiffeBundle, type SpiffeBundleParseOptions } from '../bundle/spiffe-bundle.js';
import { FederationError, isSpiffeError } from '../errors.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { authorizeId } from '../tls/authorizer.js';
import { MIN_TLS_VERSION, tlsClientOptions } from '../tls/tls-options.js';

/** Default time limit of one {@link fetchBundle} call, redirects included. */
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
/** Default size limit of a bundle response body. */
export const DEFAULT_MAX_BUNDLE_BYTES = 1024 * 1024;
/** Default number of redirects {@link fetchBundle} follows. */
export const DEFAULT_MAX_REDIRECTS = 3;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const BODY_EXCERPT_CHARS = 256;

/**
 * `https_spiffe` authentication of a bundle endpoint: the server must present an X509-SVID that verifies
 * against the bundle of `endpointId`'s trust domain taken from `bundleSource`, and its ID must be exactly
 * `endpointId` (go-spiffe `WithSPIFFEAuth`).
 */
export interface SpiffeAuth {
  /** Supplies the bundle of `endpointId`'s trust domain (the bootstrap bundle for a self-serving endpoint). */
  readonly bundleSource: X509BundleSource;
  /** SPIFFE ID the bundle endpoint server must present. */
  readonly endpointId: SpiffeId;
}

/** Options of {@link fetchBundle}. Give at most one of `spiffeAuth` and `webPkiRoots`. */
export interface FetchBundleOptions {
  /** `https_spiffe` profile. */
  readonly spiffeAuth?: SpiffeAuth;
  /**
   * `https_web` profile with these trusted roots (PEM text or certificates) and RFC 6125 host name checks.
   * When neither this nor `spiffeAuth` is given, `https_web` with Node's built-in root store is used.
   */
  readonly webPkiRoots?: string | readonly X509Certificate[];
  /** Cancels the fetch. */
  readonly signal?: AbortSignal;
  /** Time limit of the whole fetch, redirects included. Default {@link DEFAULT_FETCH_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Largest accepted response body. Default {@link DEFAULT_MAX_BUNDLE_BYTES}. */
  readonly maxBytes?: number;
  /** Redirects followed (0 refuses every redirect). Default {@link DEFAULT_MAX_REDIRECTS}, at most 10. */
  readonly maxRedirects?: number;
  /** Passed to `SpiffeBundle.parse`: reject a whole document with an unusable entry (go-spiffe). */
  readonly strict?: boolean;
}

function failed(message: string, cause?: unknown): FederationError {
  return new FederationError(
    'ERR_FEDERATION_FAILED',
    `federation: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Checks that `url` is a valid bundle endpoint URL: `https`, no user info (FED-09).
 *
 * @throws {FederationError} ERR_FEDERATION_FAILED when it is not
 * @internal
 */
export function parseEndpointUrl(url: string | URL, what = 'bundle endpoint URL'): URL {
  let u: URL;
  try {
    u = new URL(url.toString());
  } catch (err) {
    throw failed(`${what} ${JSON.stringify(String(url))} is not a valid URL`, err);
  }
  if (u.username !== '' || u.password !== '') {
    // The URL is not quoted: its user info may be a secret.
    throw failed(`${what} must not contain user info`);
  }
  if (u.protocol !== 'https:') {
    throw failed(`${what} ${JSON.stringify(u.toString())} must use the https scheme`);
  }
  return u;
}

function checkLimit(name: string, v: number | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`federation: ${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

/** Validated options of a fetch. @internal */
export interface ResolvedFetchOptions {
  readonly spiffeAuth: SpiffeAuth | undefined;
  readonly webPkiRoots: string | readonly X509Certificate[] | undefined;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxRedirects: number;
  readonly parse: SpiffeBundleParseOptions;
}

/** Validates fetch options (programmer errors throw TypeError/RangeError). @internal */
export function resolveFetchOptions(opts: FetchBundleOptions): ResolvedFetchOptions {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('federation: options must be an object');
  if (opts.spiffeAuth !== undefined && opts.webPkiRoots !== undefined) {
    throw new TypeError('federation: cannot use both SPIFFE and Web PKI authentication');
  }
  const sa = opts.spiffeAuth;
  if (sa !== undefined) {
    if (typeof sa !== 'object' || sa === null)
      throw new TypeError('federation: spiffeAuth must be an object');
    if (!(sa.endpointId instanceof SpiffeId)) {
      throw new TypeError('federation: spiffeAuth.endpointId must be a SpiffeId');
    }
    const src = sa.bundleSource as unknown;
    if (
      typeof src !== 'object' ||
      src === null ||
      typeof (src as { getX509BundleForTrustDomain?: unknown }).getX509BundleForTrustDomain !== 'function'
    ) {
      throw new TypeError('federation: spiffeAuth.bundleSource must have getX509BundleForTrustDomain()');
    }
  }
  const roots = opts.webPkiRoots;
  if (roots !== undefined && typeof roots !== 'string' && !Array.isArray(roots)) {
    throw new TypeError('federation: webPkiRoots must be PEM text or an array of certificates');
  }
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw new TypeError('federation: signal must be an AbortSignal');
  }
  return {
    spiffeAuth: sa,
    webPkiRoots: roots,
    timeoutMs: checkLimit('timeoutMs', opts.timeoutMs, DEFAULT_FETCH_TIMEOUT_MS, 1, 600_000),
    maxBytes: checkLimit('maxBytes', opts.maxBytes, DEFAULT_MAX_BUNDLE_BYTES, 1, 64 * 1024 * 1024),
    maxRedirects: checkLimit('maxRedirects', opts.maxRedirects, DEFAULT_MAX_REDIRECTS, 0, 10),
    parse: opts.strict === undefined ? {} : { strict: opts.strict },
  };
}

function hasSpiffeUriSan(cert: PeerCertificate): boolean {
  return /(^|,\s*)URI:spiffe:\/\//i.test(cert.subjectaltname ?? '');
}

/** TLS options of one connection, built from the current bundle (so every hop gets the same checks). */
function tlsOptions(o: ResolvedFetchOptions): tls.ConnectionOptions {
  if (o.spiffeAuth !== undefined) {
    const { bundleSource, endpointId } = o.spiffeAuth;
    let bundle: ReturnType<X509BundleSource['getX509BundleForTrustDomain']>;
    try {
      bundle = bundleSource.getX509BundleForTrustDomain(endpointId.trustDomain);
    } catch (err) {
      if (!isSpiffeError(err)) throw err;
      throw failed(`no bundle to authenticate endpoint "${endpointId.toString()}": ${err.message}`, err);
    }
    // Verification against the bundle of the endpoint ID's trust domain only, then the exact ID (FED-15).
    return tlsClientOptions(bundle, authorizeId(endpointId));
  }
  const options: tls.ConnectionOptions = {
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: true,
    // RFC 6125 host name verification (FED-11), with SPIRE's hint when the server presents an X509-SVID.
    checkServerIdentity: (host, cert) => {
      const err = tls.checkServerIdentity(host, cert);
      if (err !== undefined && hasSpiffeUriSan(cert)) {
        err.message +=
          ' (the server presents a SPIFFE ID: its bundle endpoint profile may be https_spiffe instead of https_web)';
      }
      return err;
    },
  };
  const roots = o.webPkiRoots;
  if (roots !== undefined) {
    options.ca = typeof roots === 'string' ? roots : roots.map((c) => c.toString());
  }
  return options;
}

interface Response {
  readonly status: number;
  readonly location: string | undefined;
  readonly body: Buffer;
}

function requestOnce(
  url: URL,
  options: tls.ConnectionOptions,
  signal: AbortSignal,
  maxBytes: number,
  onAbort: () => Error,
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, res?: Response) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', abort);
      if (err !== undefined) reject(err);
      else if (res !== undefined) resolve(res);
    };
    const req = https.request(url, {
      ...options,
      method: 'GET',
      agent: false,
      headers: { accept: 'application/json' },
    });
    const abort = () => {
      done(onAbort());
      req.destroy();
    };
    // The error listener comes first: destroying the request (abort, redirect, limits) emits 'error'.
    req.on('error', (err) => {
      done(failed(`could not GET bundle from ${JSON.stringify(url.toString())}: ${err.message}`, err));
    });
    if (signal.aborted) {
      abort();
      return;
    }
    signal.addEventListener('abort', abort, { once: true });
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(status)) {
        done(undefined, { status, location, body: Buffer.alloc(0) });
        req.destroy();
        return;
      }
      const declared = Number(res.headers['content-length']);
      const limit = status === 200 ? maxBytes : BODY_EXCERPT_CHARS * 4;
      if (status === 200 && Number.isFinite(declared) && declared > maxBytes) {
        done(failed(`bundle response exceeds ${maxBytes} bytes`));
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          // Settle first: destroying emits 'aborted' synchronously.
          if (status === 200) done(failed(`bundle response exceeds ${maxBytes} bytes`));
          // A non-200 body is only kept for an excerpt.
          else {
            chunks.push(chunk.subarray(0, Math.max(0, limit - (size - chunk.length))));
            done(undefined, { status, location, body: Buffer.concat(chunks) });
          }
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => done(undefined, { status, location, body: Buffer.concat(chunks) }));
      res.on('error', (err) =>
        done(failed(`could not read bundle from ${JSON.stringify(url.toString())}: ${err.message}`, err)),
      );
      res.on('aborted', () =>
        done(failed(`could not read bundle from ${JSON.stringify(url.toString())}: connection closed`)),
      );
    });
    req.end();
  });
}

function excerpt(body: Buffer): string {
  const text = body
    .toString('utf8')
    .replace(/\p{Cc}+/gu, ' ')
    .trim();
  return text.length > BODY_EXCERPT_CHARS ? `${text.slice(0, BODY_EXCERPT_CHARS)}…` : text;
}

/**
 * One fetch with validated options (used by {@link fetchBundle} and the watcher). @internal
 */
export async function fetchWith(
  td: TrustDomain,
  url: URL,
  o: ResolvedFetchOptions,
  signal: AbortSignal | undefined,
): Promise<SpiffeBundle> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  const onAbort = () =>
    signal?.aborted === true
      ? failed('fetch was aborted', signal.reason)
      : failed(`timed out after ${o.timeoutMs} ms fetching bundle from ${JSON.stringify(url.toString())}`);
  let current = url;
  for (let hops = 0; ; hops++) {
    // Options are rebuilt per hop from the same profile: identical TLS checks on every hop (FED-12, FED-17).
    const res = await requestOnce(current, tlsOptions(o), combined, o.maxBytes, onAbort);
    if (REDIRECT_STATUSES.has(res.status)) {
      if (hops >= o.maxRedirects) {
        throw failed(
          `too many redirects fetching bundle from ${JSON.stringify(url.toString())} (limit ${o.maxRedirects})`,
        );
      }
      if (res.location === undefined || res.location === '') {
        throw failed(`redirect ${res.status} without a location fetching bundle`);
      }
      let next: URL;
      try {
        next = new URL(res.location, current);
      } catch (err) {
        throw failed(`redirect to an invalid location ${JSON.stringify(res.location)}`, err);
      }
      current = parseEndpointUrl(next, 'redirect target');
      continue;
    }
    if (res.status !== 200) {
      // CONFORMANCE §2.8: fail like SPIRE rather than parse a non-200 body like go-spiffe.
      throw failed(`unexpected status ${res.status} fetching bundle: ${excerpt(res.body)}`);
    }
    try {
      return SpiffeBundle.parse(td, res.body, o.parse);
    } catch (err) {
      if (!isSpiffeError(err)) throw err;
      throw failed(err.message, err);
    }
  }
}

/**
 * Fetches the SPIFFE bundle of trust domain `td` from its bundle endpoint `url` (SPIFFE Federation §5):
 * `https_spiffe` with `spiffeAuth`, otherwise `https_web` (with `webPkiRoots` or Node's root store). The
 * trust domain is always the caller's: it is never inferred from the URL or the response (FED-07).
 *
 * The URL must be `https` without user info. Redirects (301, 302, 303, 307, 308) are followed at most
 * `maxRedirects` times, each hop with the same TLS checks, never to a non-https URL; the redirect target is
 * not remembered. A status other than 200 fails (like SPIRE, unlike go-spiffe which parses the body).
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Federation.md
 * @throws {TypeError} when `td` is not a TrustDomain, both authentication modes are given, or an option has
 *   the wrong type
 * @throws {RangeError} when `timeoutMs`, `maxBytes` or `maxRedirects` is out of range
 * @throws {FederationError} ERR_FEDERATION_FAILED for a bad URL, a TLS or HTTP failure (`federation: unexpected
 *   status <n> fetching bundle: <body excerpt>`), an oversized body, a timeout, or an invalid bundle
 *   (`federation: spiffebundle: …`, the BundleError as `cause`)
 * @example
 * ```ts
 * const td = TrustDomain.fromString('partner.example');
 * const bundle = await fetchBundle(td, 'https://partner.example:8443/', {
 *   spiffeAuth: { bundleSource: bootstrapBundle, endpointId: SpiffeId.require('spiffe://partner.example/spire/server') },
 * });
 * ```
 */
export async function fetchBundle(
  td: TrustDomain,
  url: string | URL,
  opts: FetchBundleOptions = {},
): Promise<SpiffeBundle> {
  if (!(td instanceof TrustDomain)) throw new TypeError('federation: expected a TrustDomain');
  const o = resolveFetchOptions(opts);
  const u = parseEndpointUrl(url);
  return fetchWith(td, u, o, opts.signal);
}
