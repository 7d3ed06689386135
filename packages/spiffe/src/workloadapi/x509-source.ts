/**
 * X509Source: a live, self-updating source of X509-SVIDs and X.509 bundles from the Workload API.
 *
 * @module
 */
import type { BundleSet, X509Bundle, X509BundleSource } from '../bundle/index.js';
import { WorkloadApiError } from '../errors.js';
import type { TrustDomain } from '../spiffeid/index.js';
import type { X509Svid, X509SvidSource } from '../svid/index.js';
import { WorkloadApiClient, type WorkloadApiClientOptions } from './client.js';
import { type RemoteAttestationClient, type RemoteSourceOptions, remoteSourceClient } from './remote.js';
import { LiveSource, SourceLifecycle, startSource } from './watch-source.js';
import type { X509Context } from './x509-context.js';

/** Options shared by the sources: which client to use, or how to make one. */
export interface SourceClientOptions {
  /** An existing client; the source will not close it. Exclusive with `address` and `clientOptions`. */
  readonly client?: WorkloadApiClient;
  /** Endpoint address of the client the source creates (default `SPIFFE_ENDPOINT_SOCKET`). */
  readonly address?: string;
  /** Further options of the client the source creates. */
  readonly clientOptions?: WorkloadApiClientOptions;
  /** Aborts the wait for the first update: `create` then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** Options of {@link X509Source.create}. */
export interface X509SourceOptions extends SourceClientOptions {
  /** Chooses the default X509-SVID among the workload's SVIDs; default: the first. */
  readonly picker?: (svids: readonly X509Svid[]) => X509Svid;
  /**
   * Get the identity by remote attestation from a Tessera server's serverless API instead of a Workload API
   * socket (for serverless functions). Exclusive with `client`, `address` and `clientOptions`.
   */
  readonly remote?: RemoteSourceOptions;
}

/** What an X509Source needs of its client (the Workload API client or the remote attestation client). */
type X509WatchClient = Pick<WorkloadApiClient, 'watchX509Context' | 'close'>;

/** Resolves the client a source uses, and whether the source owns (and must close) it. */
export function sourceClient(options: SourceClientOptions): { client: WorkloadApiClient; owned: boolean } {
  if (options.client !== undefined) {
    if (options.address !== undefined || options.clientOptions !== undefined) {
      throw new TypeError('workloadapi: pass either client or address/clientOptions, not both');
    }
    return { client: options.client, owned: false };
  }
  const clientOptions: WorkloadApiClientOptions = {
    ...options.clientOptions,
    ...(options.address === undefined ? {} : { address: options.address }),
  };
  return { client: new WorkloadApiClient(clientOptions), owned: true };
}

/**
 * Resolves the client of a source that may use remote attestation: the remote attestation client when `remote`
 * is set, else as {@link sourceClient}.
 *
 * @throws {TypeError} when `remote` is combined with `client`, `address` or `clientOptions`
 * @internal
 */
export function localOrRemoteSourceClient(
  options: SourceClientOptions & { readonly remote?: RemoteSourceOptions },
): {
  client: WorkloadApiClient | RemoteAttestationClient;
  owned: boolean;
} {
  return options.remote === undefined
    ? sourceClient(options)
    : remoteSourceClient({ ...options, remote: options.remote });
}

/**
 * A live source of the workload's X509-SVIDs and X.509 bundles, kept current by a
 * `FetchX509SVID` watch. Implements {@link X509SvidSource} and {@link X509BundleSource}, so it can be
 * handed straight to the TLS helpers.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md
 * @example
 * ```ts
 * await using source = await X509Source.create();
 * const svid = source.getX509Svid();
 * ```
 */
export class X509Source extends LiveSource implements X509SvidSource, X509BundleSource {
  readonly #life: SourceLifecycle<X509WatchClient>;
  readonly #picker: ((svids: readonly X509Svid[]) => X509Svid) | undefined;
  #context: X509Context | undefined;

  private constructor(life: SourceLifecycle<X509WatchClient>, picker: X509SourceOptions['picker']) {
    super(life);
    this.#life = life;
    this.#picker = picker;
  }

  /**
   * Creates a source and waits for the first X.509 context. Retryable failures (`Unavailable`,
   * `PermissionDenied`, invalid responses) keep it waiting.
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID for a bad address;
   *   ERR_WORKLOADAPI_INVALID_ARGUMENT / _UNIMPLEMENTED when the watch stops on a terminal status.
   * @throws the signal's reason when `signal` aborts first.
   * @example
   * ```ts
   * const source = await X509Source.create({ address: 'unix:///run/spire/agent.sock' });
   * // In a serverless function, by remote attestation:
   * const fn = await X509Source.create({ remote: { address: 'https://spiffe.example.org:8444', attestations: () => [{ type: 'gcp_iit', evidence: token }] } });
   * ```
   */
  static async create(options: X509SourceOptions = {}): Promise<X509Source> {
    const { client, owned } = localOrRemoteSourceClient(options);
    const source = new X509Source(new SourceLifecycle(client, owned), options.picker);
    await startSource(source.#life, options.signal, [
      (stop, ready) =>
        client.watchX509Context(
          {
            onX509ContextUpdate: (ctx) => {
              source.#context = ctx;
              if (ready()) source.#life.notify();
            },
          },
          { signal: stop },
        ),
    ]);
    return source;
  }

  #current(): X509Context {
    if (this.#life.closed || this.#context === undefined) {
      throw new WorkloadApiError('ERR_SOURCE_CLOSED', 'x509source: source is closed');
    }
    return this.#context;
  }

  /**
   * Returns the default X509-SVID (the first one, or the picker's choice).
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const { id, certificates, privateKey } = source.getX509Svid();
   * ```
   */
  getX509Svid(): X509Svid {
    const ctx = this.#current();
    return this.#picker ? this.#picker(ctx.svids) : ctx.svids[0]!;
  }

  /**
   * Returns all current X509-SVIDs (hints unique, first is the default identity).
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const byHint = source.getX509Svids().find((s) => s.hint === 'internal');
   * ```
   */
  getX509Svids(): readonly X509Svid[] {
    return this.#current().svids;
  }

  /**
   * Returns the X.509 bundle of a trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the trust domain has no bundle.
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * const bundle = source.getX509BundleForTrustDomain(TrustDomain.fromString('example.org'));
   * ```
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    return this.#current().bundles.getX509BundleForTrustDomain(td);
  }

  /**
   * Returns the current set of X.509 bundles (own and federated trust domains). Each update installs a
   * new set, so a returned set is a snapshot; treat it as read-only.
   *
   * @throws {WorkloadApiError} ERR_SOURCE_CLOSED after {@link close}.
   * @example
   * ```ts
   * for (const b of source.x509Bundles().bundles()) console.log(b.trustDomain.name);
   * ```
   */
  x509Bundles(): BundleSet {
    return this.#current().bundles;
  }
}
