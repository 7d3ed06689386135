/**
 * JwtSource: JWT-SVIDs minted live through the Workload API, and a self-updating set of JWT bundles.
 *
 * @module
 */
import type { BundleSet, JwtBundle, JwtBundleSource } from '../bundle/index.js';
import { WorkloadApiError } from '../errors.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { JwtSvid, JwtSvidParams, JwtSvidSource } from '../svid/index.js';
import type { WorkloadApiClient } from './client.js';
import type { RemoteSourceOptions } from './remote.js';
import { LiveSource, SourceLifecycle, startSource } from './watch-source.js';
import { localOrRemoteSourceClient, type SourceClientOptions } from './x509-source.js';

/** Options of {@link JwtSource.create}. */
export interface JwtSourceOptions extends SourceClientOptions {
  /** Chooses the JWT-SVID among those returned for a request; default: the first one. */
  readonly picker?: (svids: readonly JwtSvid[]) => JwtSvid;
  /**
   * Get JWT-SVIDs and bundles by remote attestation from a Tessera server's serverless API instead of a Workload
   * API socket. Exclusive with `client`, `address` and `clientOptions`.
   */
  readonly remote?: RemoteSourceOptions;
}

/** What a JwtSource needs of its client (the Workload API client or the remote attestation client). */
type JwtClient = Pick<WorkloadApiClient, 'fetchJwtSvid' | 'fetchJwtSvids' | 'watchJwtBundles' | 'close'>;

/**
 * A source of JWT-SVIDs and JWT bundles from the Workload API. Bundles are kept current by a
 * `FetchJWTBundles` watch; every {@link fetchJwtSvid} is a live `FetchJWTSVID` call (tokens are not
 * cached). Implements {@link JwtSvidSource} and {@link JwtBundleSource}.
 *
 * @example
 * ```ts
 * await using source = await JwtSource.create();
 * const svid = await source.fetchJwtSvid({ audience: 'spiffe://example.org/api' });
 * ```
 */
export class JwtSource extends LiveSource implements JwtSvidSource, JwtBundleSource {
  readonly #life: SourceLifecycle<JwtClient>;
  readonly #picker: JwtSourceOptions['picker'];
  #bundles: BundleSet | undefined;

  private constructor(life: SourceLifecycle<JwtClient>, picker: JwtSourceOptions['picker']) {
    super(life);
    this.#life = life;
    this.#picker = picker;
  }

  /**
   * Creates a source and waits for the first set of JWT bundles; retryable failures keep it waiting.
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID for a bad address;
   *   ERR_WORKLOADAPI_INVALID_ARGUMENT / _UNIMPLEMENTED when the watch stops on a terminal status.
   * @throws the signal's reason when `signal` aborts first.
   * @example
   * ```ts
   * const source = await JwtSource.create({ address: 'unix:///run/spire/agent.sock' });
   * ```
   */
  static async create(options: JwtSourceOptions = {}): Promise<JwtSource> {
    const { client, owned } = localOrRemoteSourceClient(options);
    const source = new JwtSource(new SourceLifecycle(client, owned), options.picker);
    await startSource(source.#life, options.signal, [
      (stop, ready) =>
        client.watchJwtBundles(
          {
            onJwtBundlesUpdate: (set) => {
              source.#bundles = set;
              if (ready()) source.#life.notify();
            },
          },
          { signal: stop },
        ),
    ]);
    return source;
  }

  #closedError(): WorkloadApiError {
    return new WorkloadApiError('ERR_SOURCE_CLOSED', 'jwtsource: source is closed');
  }

  #current(): BundleSet {
    if (this.#life.closed || this.#bundles === undefined) throw this.#closedError();
    return this.#bundles;
  }

  /**
   * Fetches a JWT-SVID from the Workload API (a live call; the picker chooses when set).
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}; otherwise as
   *   {@link WorkloadApiClient.fetchJwtSvid}.
   * @example
   * ```ts
   * const token = (await source.fetchJwtSvid({ audience: 'db' })).marshal();
   * ```
   */
  async fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid> {
    if (this.#life.closed) throw this.#closedError();
    if (this.#picker === undefined) return this.#life.client.fetchJwtSvid(params);
    return this.#picker(await this.#life.client.fetchJwtSvids(params));
  }

  /**
   * Fetches every JWT-SVID the workload may have for the audience (a live call).
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}; otherwise as
   *   {@link WorkloadApiClient.fetchJwtSvids}.
   * @example
   * ```ts
   * const all = await source.fetchJwtSvids({ audience: 'db' });
   * ```
   */
  async fetchJwtSvids(params: JwtSvidParams): Promise<JwtSvid[]> {
    if (this.#life.closed) throw this.#closedError();
    return this.#life.client.fetchJwtSvids(params);
  }

  /**
   * Returns the JWT bundle of a trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the trust domain has no bundle.
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const bundle = source.getJwtBundleForTrustDomain(TrustDomain.fromString('example.org'));
   * ```
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    return this.#current().getJwtBundleForTrustDomain(td);
  }

  /**
   * Returns the current set of JWT bundles.
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const svid = await JwtSvid.parseAndValidate(token, source.jwtBundles(), ['api']);
   * ```
   */
  jwtBundles(): BundleSet {
    return this.#current();
  }
}
