/**
 * An in-memory {@link WorkloadIdentityProvider} for endpoint tests: entries matched by selector subset
 * (SPIRE semantics), X509-SVIDs minted by a TestCa, JWT-SVIDs by a TestJwtAuthority, and explicit rotation,
 * entry and bundle changes pushed to subscribers. Not for production use.
 *
 * @module
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { TestCa, TestJwtAuthority } from '@tessera/testing';
import type {
  IdentitySnapshot,
  IdentitySubscription,
  WorkloadIdentityProvider,
  WorkloadJwtSvid,
  WorkloadSelector,
  WorkloadX509Svid,
} from '../../manager/provider.js';

/** A registration entry as the test provider knows it. */
export interface MemoryEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly selectors: readonly WorkloadSelector[];
  readonly hint?: string;
  /** Trust domain names the entry federates with. */
  readonly federatesWith?: readonly string[];
  /** False: no SVID is minted for it until {@link MemoryProvider.issue} (its issuance is "in flight"). */
  readonly issued?: boolean;
}

interface Subscriber {
  readonly selectors: readonly WorkloadSelector[];
  readonly onUpdate: (snap: IdentitySnapshot) => void;
  snapshot: IdentitySnapshot;
}

/** A test provider; see the module comment. */
export class MemoryProvider implements WorkloadIdentityProvider {
  readonly trustDomain: TrustDomain;
  ca: TestCa;
  readonly jwt: TestJwtAuthority;
  #bundle: SpiffeBundle;
  readonly #federated = new Map<string, SpiffeBundle>();
  #entries: MemoryEntry[] = [];
  readonly #svids = new Map<string, WorkloadX509Svid>();
  readonly #subs = new Set<Subscriber>();
  readonly #bundleListeners = new Set<() => void>();
  /** Number of subscribe() calls and currently open subscriptions, for leak checks. */
  subscribeCalls = 0;
  /** When set, fetchJwtSvids rejects with it. */
  jwtFailure: Error | undefined;
  /**
   * Whether missing SVIDs are being issued (true) or wait for an unreachable server (false: snapshots are
   * `pending` without `issuing`). Takes effect at the next notification ({@link notifyAll}).
   */
  issuing = true;

  constructor(trustDomain = 'example.org', now: Date = new Date()) {
    this.trustDomain = TrustDomain.fromString(trustDomain);
    this.ca = TestCa.create({ trustDomain });
    this.jwt = new TestJwtAuthority(this.trustDomain, { keyTypes: ['ec-p256'], now });
    this.#bundle = this.#ownBundle();
  }

  #ownBundle(): SpiffeBundle {
    return SpiffeBundle.fromAuthorities(this.trustDomain, {
      x509Authorities: [this.ca.certificate],
      jwtAuthorities: this.jwt.jwtBundle().jwtAuthorities(),
    });
  }

  /** Number of open subscriptions. */
  get openSubscriptions(): number {
    return this.#subs.size;
  }

  /** Replaces the entries (SVIDs are minted for new ones) and notifies subscribers. */
  setEntries(entries: readonly MemoryEntry[]): void {
    this.#entries = [...entries];
    for (const e of entries) {
      if (!this.#svids.has(e.id) && e.issued !== false) this.#svids.set(e.id, this.#mint(e));
    }
    for (const id of [...this.#svids.keys()]) if (!entries.some((e) => e.id === id)) this.#svids.delete(id);
    this.#notify();
  }

  /** Mints the SVID of an entry set with `issued: false` and notifies subscribers. */
  issue(entryId: string): void {
    const e = this.#entries.find((x) => x.id === entryId);
    if (e === undefined) throw new Error(`memory provider: no entry "${entryId}"`);
    this.#svids.set(e.id, this.#mint(e));
    this.#notify();
  }

  /** Re-issues every SVID (rotation) and notifies subscribers. */
  rotate(): void {
    for (const e of this.#entries) this.#svids.set(e.id, this.#mint(e));
    this.#notify();
  }

  /** Replaces the own CA (and bundle) and re-issues every SVID. */
  rotateCa(): void {
    this.ca = TestCa.create({ trustDomain: this.trustDomain.name });
    this.#bundle = this.#ownBundle();
    this.rotate();
    for (const l of this.#bundleListeners) l();
  }

  /** Sets (or with undefined, removes) a federated bundle and notifies. */
  setFederatedBundle(
    td: string,
    certs: readonly X509Certificate[] | undefined,
    jwtKeys?: Map<string, KeyObject>,
  ): void {
    if (certs === undefined) this.#federated.delete(td);
    else {
      this.#federated.set(
        td,
        SpiffeBundle.fromAuthorities(TrustDomain.fromString(td), {
          x509Authorities: certs,
          ...(jwtKeys !== undefined ? { jwtAuthorities: jwtKeys } : {}),
        }),
      );
    }
    this.#notify();
    for (const l of this.#bundleListeners) l();
  }

  /** The current SVID of an entry. */
  svidOf(entryId: string): WorkloadX509Svid | undefined {
    return this.#svids.get(entryId);
  }

  #mint(e: MemoryEntry): WorkloadX509Svid {
    const issued = this.ca.issueX509Svid({ spiffeId: e.spiffeId });
    return {
      entryId: e.id,
      spiffeId: e.spiffeId,
      hint: e.hint ?? '',
      chainDer: issued.chainDer,
      keyDer: issued.keyDer,
      expiresAt: new Date(issued.leaf.validTo),
    };
  }

  #matching(selectors: readonly WorkloadSelector[]): MemoryEntry[] {
    const have = new Set(selectors.map((s) => `${s.type}:${s.value}`));
    return this.#entries.filter(
      (e) => e.selectors.length > 0 && e.selectors.every((s) => have.has(`${s.type}:${s.value}`)),
    );
  }

  snapshot(selectors: readonly WorkloadSelector[]): IdentitySnapshot {
    const entries = this.#matching(selectors);
    const federatedBundles = new Map<string, SpiffeBundle>();
    for (const e of entries) {
      for (const td of e.federatesWith ?? []) {
        const b = this.#federated.get(td);
        if (b !== undefined) federatedBundles.set(td, b);
      }
    }
    const svids = entries.flatMap((e) => this.#svids.get(e.id) ?? []);
    return {
      svids,
      bundle: this.#bundle,
      federatedBundles,
      ...(svids.length < entries.length ? { pending: true, ...(this.issuing ? { issuing: true } : {}) } : {}),
    };
  }

  /** Recomputes every subscriber's snapshot and notifies them (after changing {@link issuing}). */
  notifyAll(): void {
    this.#notify();
  }

  #notify(): void {
    for (const s of [...this.#subs]) {
      s.snapshot = this.snapshot(s.selectors);
      s.onUpdate(s.snapshot);
    }
  }

  subscribe(
    selectors: readonly WorkloadSelector[],
    onUpdate: (snapshot: IdentitySnapshot) => void,
  ): IdentitySubscription {
    this.subscribeCalls += 1;
    const sub: Subscriber = { selectors: [...selectors], onUpdate, snapshot: this.snapshot(selectors) };
    this.#subs.add(sub);
    return {
      current: () => sub.snapshot,
      close: () => {
        this.#subs.delete(sub);
      },
    };
  }

  async fetchJwtSvids(
    selectors: readonly WorkloadSelector[],
    audience: readonly string[],
    spiffeId?: string,
  ): Promise<WorkloadJwtSvid[]> {
    if (this.jwtFailure !== undefined) throw this.jwtFailure;
    const entries = this.#matching(selectors).filter(
      (e) => spiffeId === undefined || e.spiffeId === spiffeId,
    );
    return entries.map((e) => ({
      spiffeId: e.spiffeId,
      hint: e.hint ?? '',
      token: this.jwt.mint({ sub: e.spiffeId, aud: [...audience] }),
    }));
  }

  bundles(): { readonly own: SpiffeBundle; readonly federated: ReadonlyMap<string, SpiffeBundle> } {
    return { own: this.#bundle, federated: this.#federated };
  }

  onBundlesChange(listener: () => void): () => void {
    this.#bundleListeners.add(listener);
    return () => this.#bundleListeners.delete(listener);
  }

  ready(): boolean {
    return true;
  }
}
