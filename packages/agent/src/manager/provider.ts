/**
 * The contract between the agent's identity manager (attestation, sync, SVID cache, rotation) and the
 * endpoints that serve workloads (Workload API, Envoy SDS). The manager implements
 * {@link WorkloadIdentityProvider}; the endpoints only consume it.
 *
 * @module
 */
import type { SpiffeBundle } from '@tessera/spiffe/bundle';

/** A workload selector, `type:value` (e.g. `unix:uid:1000`). */
export interface WorkloadSelector {
  readonly type: string;
  readonly value: string;
}

/** One X509-SVID a workload is entitled to, ready for the wire. */
export interface WorkloadX509Svid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly hint: string;
  /** Concatenated DER certificates, leaf first (intermediates follow; never the root). */
  readonly chainDer: Buffer;
  /** Unencrypted PKCS#8 DER private key. */
  readonly keyDer: Buffer;
  readonly expiresAt: Date;
}

/** Everything a workload with a given set of selectors may see, at one instant. */
export interface IdentitySnapshot {
  /** The workload's SVIDs, in a stable order (the first is the default identity); empty when not entitled. */
  readonly svids: readonly WorkloadX509Svid[];
  /** The agent's own trust domain bundle. */
  readonly bundle: SpiffeBundle;
  /** Bundles of the trust domains the workload's entries federate with, keyed by trust domain name. */
  readonly federatedBundles: ReadonlyMap<string, SpiffeBundle>;
  /**
   * True when an entry of the workload has no SVID yet (its issuance is under way, or waits for the server):
   * with no SVID to send, the endpoints then wait for the next snapshot instead of answering PermissionDenied,
   * as SPIRE does. Absent means false.
   */
  readonly pending?: boolean;
  /**
   * True when, besides, an SVID missing from `svids` is being issued right now (the server was reachable at the
   * last try and did not refuse it): the endpoints then hold a non-empty but incomplete set back until it is
   * complete, so that the first SVID (the default identity) is the oldest entry's. While the server cannot be
   * reached or refuses an entry, the SVIDs there are are sent. Absent means false.
   */
  readonly issuing?: boolean;
}

/** A live subscription: `current()` is always the latest snapshot; `onUpdate` fires on every change. */
export interface IdentitySubscription {
  current(): IdentitySnapshot;
  close(): void;
}

/** One JWT-SVID minted for a workload. */
export interface WorkloadJwtSvid {
  readonly spiffeId: string;
  readonly token: string;
  readonly hint: string;
}

/** What the endpoints need from the identity manager. */
export interface WorkloadIdentityProvider {
  /**
   * Subscribes to the identities of a workload with `selectors`. `onUpdate` is called with the full state
   * whenever an SVID rotates, an entry matching the selectors changes, or a bundle changes.
   */
  subscribe(
    selectors: readonly WorkloadSelector[],
    onUpdate: (snapshot: IdentitySnapshot) => void,
  ): IdentitySubscription;
  /**
   * JWT-SVIDs for the workload: one per entitled identity, or only `spiffeId`'s when given. Resolves to an
   * empty list when the workload is not entitled (the endpoint answers PermissionDenied).
   */
  fetchJwtSvids(
    selectors: readonly WorkloadSelector[],
    audience: readonly string[],
    spiffeId?: string,
  ): Promise<WorkloadJwtSvid[]>;
  /** All bundles the agent knows (own + federated), keyed by trust domain name, and change notifications. */
  bundles(): { readonly own: SpiffeBundle; readonly federated: ReadonlyMap<string, SpiffeBundle> };
  onBundlesChange(listener: () => void): () => void;
  /** True once the agent has its bundle and first sync (readiness). */
  ready(): boolean;
}
