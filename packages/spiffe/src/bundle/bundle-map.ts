import { BundleError } from '../errors.js';
import { isJsonObject, type JsonValue, parseJson } from '../internal/json.js';
import { TrustDomain } from '../spiffeid/trust-domain.js';
import { SpiffeBundle, type SpiffeBundleParseOptions } from './spiffe-bundle.js';

/**
 * Parses a SPIFFE bundle map `{"trust_domains": {"<td>": <bundle>, …}}` into bundles keyed by trust domain name,
 * in document order. `trust_domains` must be present (may be empty); keys must be bare trust domain names and
 * unique (duplicates are rejected, BND-12). Per-bundle refresh hints are kept on the bundles but must not drive
 * the map's refresh (BND-13). Load the result as the full new state (BND-14).
 *
 * @throws {BundleError} ERR_BUNDLE_INVALID `bundlemap: …`
 * @example
 * ```ts
 * const map = parseBundleMap(json);
 * const set = new BundleSet(...map.values());
 * ```
 */
export function parseBundleMap(
  json: string | Uint8Array,
  options: SpiffeBundleParseOptions = {},
): Map<string, SpiffeBundle> {
  let doc: JsonValue;
  try {
    doc = parseJson(json);
  } catch (err) {
    throw invalid(`unable to parse bundle map: ${(err as Error).message}`, err);
  }
  if (!isJsonObject(doc)) throw invalid('unable to parse bundle map: document is not a JSON object');
  const tds = doc.trust_domains;
  if (tds === undefined) throw invalid('"trust_domains" is missing');
  if (!isJsonObject(tds)) throw invalid('"trust_domains" is not a JSON object');
  const out = new Map<string, SpiffeBundle>();
  for (const name of Object.keys(tds)) {
    let td: TrustDomain;
    try {
      td = TrustDomain.fromString(name);
    } catch (err) {
      throw invalid(`invalid trust domain ${JSON.stringify(name)}: ${(err as Error).message}`, err);
    }
    if (td.name !== name) throw invalid(`invalid trust domain ${JSON.stringify(name)}: expected a bare name`);
    try {
      out.set(name, SpiffeBundle.fromJson(td, tds[name] ?? null, options));
    } catch (err) {
      throw invalid(
        `invalid bundle for trust domain ${JSON.stringify(name)}: ${(err as Error).message}`,
        err,
      );
    }
  }
  return out;
}

/**
 * Serialises bundles as a SPIFFE bundle map, sorted by trust domain, without per-bundle refresh hints (BND-13).
 *
 * @throws {RangeError} when two bundles have the same trust domain
 * @example
 * ```ts
 * marshalBundleMap(set.bundles());
 * ```
 */
export function marshalBundleMap(bundles: Iterable<SpiffeBundle>): string {
  const byName = new Map<string, SpiffeBundle>();
  for (const b of bundles) {
    if (!(b instanceof SpiffeBundle)) throw new TypeError('bundlemap: expected SpiffeBundles');
    const name = b.trustDomain.name;
    if (byName.has(name)) throw new RangeError(`bundlemap: duplicate trust domain ${JSON.stringify(name)}`);
    byName.set(name, b);
  }
  const names = [...byName.keys()].sort();
  const parts = names.map((n) => `${JSON.stringify(n)}:${byName.get(n)?.marshal({ omitRefreshHint: true })}`);
  return `{"trust_domains":{${parts.join(',')}}}`;
}

function invalid(message: string, cause?: unknown): BundleError {
  return new BundleError('ERR_BUNDLE_INVALID', `bundlemap: ${message}`, cause === undefined ? {} : { cause });
}
