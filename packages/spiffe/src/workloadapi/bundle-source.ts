/**
 * BundleSource: X.509 and JWT bundles of every trust domain the workload trusts, kept current by the
 * Workload API's bundle streams.
 *
 * @module
 */
import type { BundleSet, JwtBundle, JwtBundleSource, X509Bundle, X509BundleSource } from '../bundle/index.js';
import { WorkloadApiError } from '../errors.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { WorkloadApiClient } from './client.js';
import { LiveSource, SourceLifecycle, startSource } from './watch-source.js';
import { type SourceClientOptions, sourceClient } from './x509-source.js';

/** Options of {@link BundleSource.create}. */
export type BundleSourceOptions = SourceClientOptions;

/**
 * A live source of X.509 and JWT bundles for verifiers.
 *
 * Unlike go-spiffe's BundleSource (which watches `FetchX509SVID` and so needs an identity of its
 * own), this source watches `FetchX509Bundles` and `FetchJWTBundles`: the RPCs the Workload API
 * defines for workloads that only verify. Both streams must deliver before {@link create} resolves.
 * Each update replaces that kind of bundle wholesale: a trust domain absent from an update loses its
 * X.509 (or JWT) authorities, and keeps the other kind if the other stream still carries it.
 *
 * @example
 * ```ts
 * await using bundles = await BundleSource.create();
 * const svid = await JwtSvid.parseAndValidate(token, bundles, ['spiffe://example.org/api']);
 * ```
 */
export class BundleSource extends LiveSource implements X509BundleSource, JwtBundleSource {
  readonly #life: SourceLifecycle<WorkloadApiClient>;
  #x509: BundleSet | undefined;
  #jwt: BundleSet | undefined;

  private constructor(life: SourceLifecycle<WorkloadApiClient>) {
    super(life);
    this.#life = life;
  }

  /**
   * Creates a source and waits for the first X.509 and JWT bundle sets; retryable failures keep it
   * waiting.
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID for a bad address;
   *   ERR_WORKLOADAPI_INVALID_ARGUMENT / _UNIMPLEMENTED when a watch stops on a terminal status.
   * @throws the signal's reason when `signal` aborts first.
   * @example
   * ```ts
   * const source = await BundleSource.create({ address: 'unix:///run/spire/agent.sock' });
   * ```
   */
  static async create(options: BundleSourceOptions = {}): Promise<BundleSource> {
    const { client, owned } = sourceClient(options);
    const source = new BundleSource(new SourceLifecycle(client, owned));
    await startSource(source.#life, options.signal, [
      (stop, ready) =>
        client.watchX509Bundles(
          {
            onX509BundlesUpdate: (set) => {
              source.#x509 = set;
              if (ready()) source.#life.notify();
            },
          },
          { signal: stop },
        ),
      (stop, ready) =>
        client.watchJwtBundles(
          {
            onJwtBundlesUpdate: (set) => {
              source.#jwt = set;
              if (ready()) source.#life.notify();
            },
          },
          { signal: stop },
        ),
    ]);
    return source;
  }

  #sets(): { x509: BundleSet; jwt: BundleSet } {
    if (this.#life.closed || this.#x509 === undefined || this.#jwt === undefined) {
      throw new WorkloadApiError('ERR_SOURCE_CLOSED', 'bundlesource: source is closed');
    }
    return { x509: this.#x509, jwt: this.#jwt };
  }

  /**
   * Returns the X.509 bundle of a trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the trust domain has no X.509 bundle.
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const b = source.getX509BundleForTrustDomain(TrustDomain.fromString('example.org'));
   * ```
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    return this.#sets().x509.getX509BundleForTrustDomain(td);
  }

  /**
   * Returns the JWT bundle of a trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the trust domain has no JWT bundle.
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const b = source.getJwtBundleForTrustDomain(TrustDomain.fromString('example.org'));
   * ```
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    return this.#sets().jwt.getJwtBundleForTrustDomain(td);
  }

  /**
   * Returns the current X.509 bundles.
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const set = source.x509Bundles();
   * ```
   */
  x509Bundles(): BundleSet {
    return this.#sets().x509;
  }

  /**
   * Returns the current JWT bundles.
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const set = source.jwtBundles();
   * ```
   */
  jwtBundles(): BundleSet {
    return this.#sets().jwt;
  }
}
