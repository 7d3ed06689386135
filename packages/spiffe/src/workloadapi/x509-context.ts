/**
 * Conversion of Workload API responses into domain objects (X509-SVIDs, bundles, JWT-SVIDs).
 * Every failure is a WorkloadApiError ERR_WORKLOADAPI_INVALID_RESPONSE whose `cause` is the
 * underlying parse error.
 *
 * @module
 */
import { BundleSet, JwtBundle, X509Bundle } from '../bundle/index.js';
import { SpiffeError, WorkloadApiError } from '../errors.js';
import { SpiffeId, TrustDomain } from '../spiffeid/index.js';
import { JwtSvid, X509Svid } from '../svid/index.js';
import type { JWTSVIDResponse, X509SVID, X509SVIDResponse } from './gen/spiffe/workload.js';

/** The X.509 material the Workload API hands a workload: its SVIDs and the bundles it trusts. */
export interface X509Context {
  /** The workload's X509-SVIDs; the first one is the default identity. Hints are unique. */
  readonly svids: readonly X509Svid[];
  /** X.509 bundles: the SVIDs' own trust domains plus every federated trust domain. */
  readonly bundles: BundleSet;
}

function invalid(message: string, cause?: unknown): WorkloadApiError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new WorkloadApiError(
    'ERR_WORKLOADAPI_INVALID_RESPONSE',
    `workloadapi: ${message}${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Runs `fn`, turning any SpiffeError it throws into an invalid-response error. */
function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WorkloadApiError) throw err;
    if (err instanceof SpiffeError) throw invalid(what, err);
    throw err;
  }
}

function parseSvid(svid: X509SVID, index: number): X509Svid {
  const parsed = guard(`invalid X509-SVID at index ${index}`, () =>
    X509Svid.parseDer(svid.x509Svid, svid.x509SvidKey, svid.hint),
  );
  // The spec makes spiffe_id mandatory and the certificate's URI SAN authoritative; a response in
  // which they disagree is inconsistent, so it is refused rather than trusted either way.
  const declared = guard(`invalid spiffe_id of X509-SVID at index ${index}`, () =>
    SpiffeId.fromString(svid.spiffeId),
  );
  if (!declared.equals(parsed.id)) {
    throw invalid(
      `spiffe_id ${JSON.stringify(svid.spiffeId)} of X509-SVID at index ${index} does not match its certificate ID ${JSON.stringify(parsed.id.toString())}`,
    );
  }
  return parsed;
}

/**
 * Parses an X509SVIDResponse into an {@link X509Context}.
 *
 * @param res - The decoded response.
 * @param firstOnly - Parse only `svids[0]` (one-shot `fetchX509Svid`).
 * @throws {WorkloadApiError} ERR_WORKLOADAPI_INVALID_RESPONSE on an empty or malformed response.
 * @internal
 */
export function parseX509Context(res: X509SVIDResponse, firstOnly = false): X509Context {
  if (res.svids.length === 0) throw invalid('no SVIDs in response');
  const svids: X509Svid[] = [];
  const seenHints = new Set<string>();
  const bundles = new BundleSet();
  const own = new Set<string>();
  const list = firstOnly ? res.svids.slice(0, 1) : res.svids;
  list.forEach((raw, i) => {
    // WAPI-09: hints are unique within a response; on a duplicate the first SVID wins.
    if (raw.hint !== '' && seenHints.has(raw.hint)) return;
    if (raw.hint !== '') seenHints.add(raw.hint);
    const svid = parseSvid(raw, i);
    svids.push(svid);
    const td = svid.id.trustDomain;
    bundles.add(
      guard(`invalid bundle of X509-SVID at index ${i}`, () => X509Bundle.parseDer(td, raw.bundle)),
    );
    own.add(td.name);
  });
  for (const [key, der] of Object.entries(res.federatedBundles)) {
    const td = guard(`invalid federated bundle key ${JSON.stringify(key)}`, () =>
      TrustDomain.fromString(key),
    );
    // The SVIDs' own bundles are authoritative for their trust domains.
    if (own.has(td.name)) continue;
    bundles.add(
      guard(`invalid federated bundle for ${JSON.stringify(key)}`, () => X509Bundle.parseDer(td, der)),
    );
  }
  return { svids, bundles };
}

/**
 * Parses a trust-domain-keyed map of concatenated DER certificates into X.509 bundles.
 *
 * @throws {WorkloadApiError} ERR_WORKLOADAPI_INVALID_RESPONSE on an empty map or a malformed entry.
 * @internal
 */
export function parseX509BundleMap(map: Readonly<Record<string, Uint8Array>>): BundleSet {
  const entries = Object.entries(map);
  if (entries.length === 0) throw invalid('no bundles in response');
  const set = new BundleSet();
  for (const [key, der] of entries) {
    const td = guard(`invalid bundle key ${JSON.stringify(key)}`, () => TrustDomain.fromString(key));
    set.add(guard(`invalid X.509 bundle for ${JSON.stringify(key)}`, () => X509Bundle.parseDer(td, der)));
  }
  return set;
}

/**
 * Parses a trust-domain-keyed map of JWKS documents into JWT bundles.
 *
 * @throws {WorkloadApiError} ERR_WORKLOADAPI_INVALID_RESPONSE on an empty map or a malformed entry.
 * @internal
 */
export function parseJwtBundleMap(map: Readonly<Record<string, Uint8Array>>): BundleSet {
  const entries = Object.entries(map);
  if (entries.length === 0) throw invalid('no bundles in response');
  const set = new BundleSet();
  for (const [key, jwks] of entries) {
    const td = guard(`invalid bundle key ${JSON.stringify(key)}`, () => TrustDomain.fromString(key));
    set.add(guard(`invalid JWT bundle for ${JSON.stringify(key)}`, () => JwtBundle.parse(td, jwks)));
  }
  return set;
}

/**
 * Parses a JWTSVIDResponse with `parseInsecure` (the tokens come from the trusted local endpoint).
 *
 * @throws {WorkloadApiError} ERR_WORKLOADAPI_INVALID_RESPONSE on an empty or malformed response.
 * @internal
 */
export function parseJwtSvids(
  res: JWTSVIDResponse,
  audience: string[],
  firstOnly: boolean,
  now: Date | undefined,
): JwtSvid[] {
  if (res.svids.length === 0) throw invalid('there were no SVIDs in the response');
  const out: JwtSvid[] = [];
  const seenHints = new Set<string>();
  const list = firstOnly ? res.svids.slice(0, 1) : res.svids;
  list.forEach((raw, i) => {
    if (raw.hint !== '' && seenHints.has(raw.hint)) return;
    if (raw.hint !== '') seenHints.add(raw.hint);
    const svid = guard(`invalid JWT-SVID at index ${i}`, () =>
      JwtSvid.parseInsecure(raw.svid, audience, {
        hint: raw.hint,
        ...(now === undefined ? {} : { now }),
      }),
    );
    const declared = guard(`invalid spiffe_id of JWT-SVID at index ${i}`, () =>
      SpiffeId.fromString(raw.spiffeId),
    );
    if (!declared.equals(svid.id)) {
      throw invalid(
        `spiffe_id ${JSON.stringify(raw.spiffeId)} of JWT-SVID at index ${i} does not match its subject ${JSON.stringify(svid.id.toString())}`,
      );
    }
    out.push(svid);
  });
  return out;
}
