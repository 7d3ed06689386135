/**
 * The federation client of the server: for every federation relationship (stored through the TrustDomain API,
 * plus those of the configuration file), fetch the foreign trust domain's bundle from its bundle endpoint and
 * store it in the datastore, from where agents receive it. Relationships are re-read periodically, so creating
 * or deleting one through the API starts or stops its polling (on every server sharing the datastore).
 *
 * - `https_web`: Web PKI (Node's root store, or `webPkiRoots`).
 * - `https_spiffe`: the endpoint must present exactly `endpoint_spiffe_id`, verified against the bundle of that
 *   ID's trust domain: our own bundle for an ID of our trust domain, otherwise the stored bundle of its trust
 *   domain. For a self-serving endpoint that is the foreign trust domain's stored bundle (the bootstrap bundle an
 *   operator set with `bundle set`, then the latest fetched one: FED-16).
 * - Cadence: the bundle's `spiffe_refresh_hint`, 5 minutes without one, 60 s while no bundle is known at all;
 *   a failed poll waits the same interval (FED-18). An unchanged bundle is not written. A bundle whose
 *   `spiffe_sequence` is lower than the one this poller last fetched is not written (FED-04).
 *
 * @module
 */
import type { X509Certificate } from 'node:crypto';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { FederationError } from '@tessera/spiffe/errors';
import { type FetchBundleOptions, fetchBundle } from '@tessera/spiffe/federation';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { abortableSleep } from '@tessera/spiffe/workloadapi';
import type { CaManager } from '../ca/ca-manager.js';
import type { Datastore } from '../datastore/datastore.js';
import type { FederationRelationship } from '../datastore/types.js';
import type { FederationLogger } from './bundle-endpoint.js';

/** Poll interval without a refresh hint. */
export const DEFAULT_POLL_SECONDS = 300;
/** Poll interval while no bundle of the trust domain is known. */
export const UNKNOWN_BUNDLE_POLL_SECONDS = 60;
const MIN_POLL_SECONDS = 1;
const PAGE_SIZE = 1000;

/** Configuration of {@link createFederationPoller}. */
export interface FederationPollerConfig {
  readonly trustDomain: TrustDomain;
  readonly datastore: Pick<Datastore, 'listFederationRelationships' | 'fetchBundle' | 'appendBundle'>;
  readonly ca: Pick<CaManager, 'bundle'>;
  /** Relationships of the configuration file; they take precedence over stored ones of the same trust domain. */
  readonly staticRelationships?: readonly FederationRelationship[];
  /** How often stored relationships are re-read, in milliseconds. Default 2000. */
  readonly reconcileIntervalMs?: number;
  /** Trusted roots of `https_web` endpoints. Default: Node's root store. */
  readonly webPkiRoots?: readonly X509Certificate[];
  /** Waits between polls (tests substitute it). Default: a timer that ends early on abort. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly logger: FederationLogger;
}

/** A running federation poller. */
export interface FederationPoller {
  /** Starts polling and the periodic re-read of relationships. */
  start(): void;
  /** Re-reads the relationships now, starting and stopping polls as needed. */
  reconcile(): Promise<void>;
  /** Trust domains being polled, sorted. */
  polling(): string[];
  /**
   * Fetches the bundle of `trustDomain` from its bundle endpoint now, as a poll would (and stores it when it
   * changed); the regular polls go on as scheduled. Relationships are re-read first when it is not polled yet.
   *
   * @returns false when there is no relationship with `trustDomain`.
   * @throws {FederationError} (or the fetch's error) when the bundle cannot be fetched or verified.
   */
  refresh(trustDomain: string): Promise<boolean>;
  /** Stops every poll and waits for them to end. */
  close(): Promise<void>;
}

interface Poll {
  readonly key: string;
  readonly ac: AbortController;
  readonly done: Promise<void>;
  /** One fetch now, sharing the poll's state (see {@link FederationPoller.refresh}). */
  readonly once: () => Promise<unknown>;
}

/** What a poll of one relationship remembers between fetches. */
interface PollState {
  /** The last bundle this poll fetched and accepted. */
  latest: SpiffeBundle | undefined;
}

function keyOf(r: FederationRelationship): string {
  return JSON.stringify([r.bundleEndpointUrl, r.profile, r.endpointSpiffeId ?? null]);
}

function failed(message: string): FederationError {
  return new FederationError('ERR_FEDERATION_FAILED', `federation: ${message}`);
}

/**
 * Creates the federation poller.
 *
 * @example
 * ```ts
 * const poller = createFederationPoller({ trustDomain, datastore, ca, logger });
 * poller.start();
 * ```
 */
export function createFederationPoller(config: FederationPollerConfig): FederationPoller {
  const { datastore, ca, logger } = config;
  const own = config.trustDomain;
  const sleep = config.sleep ?? abortableSleep;
  const reconcileMs = config.reconcileIntervalMs ?? 2000;
  const polls = new Map<string, Poll>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let reconciling: Promise<void> | undefined;

  const parseStored = async (td: TrustDomain): Promise<SpiffeBundle | undefined> => {
    const rec = await datastore.fetchBundle(td.name);
    if (rec === undefined) return undefined;
    try {
      return SpiffeBundle.parse(td, rec.data);
    } catch (err) {
      logger.warn({ err, trust_domain: td.name }, 'Stored bundle cannot be parsed');
      return undefined;
    }
  };

  const authOf = async (rel: FederationRelationship, td: TrustDomain): Promise<FetchBundleOptions> => {
    if (rel.profile === 'https_web') {
      return config.webPkiRoots === undefined ? {} : { webPkiRoots: config.webPkiRoots };
    }
    if (rel.endpointSpiffeId === undefined || rel.endpointSpiffeId === '') {
      throw failed(`no SPIFFE ID specified for federation with "${td.name}"`);
    }
    const endpointId = SpiffeId.fromString(rel.endpointSpiffeId);
    const etd = endpointId.trustDomain;
    const bundle = etd.equals(own) ? ca.bundle() : await parseStored(etd);
    if (bundle === undefined) {
      throw failed(
        `no bundle for trust domain "${etd.name}" to authenticate the bundle endpoint of "${td.name}" (set one with "bundle set")`,
      );
    }
    return { spiffeAuth: { bundleSource: bundle, endpointId } };
  };

  /**
   * One fetch of `rel`'s bundle: stored when it changed and is not older than the last one fetched.
   *
   * @returns the bundle that decides the next poll's delay (the latest known one, fetched or stored).
   * @throws when the bundle cannot be fetched or verified; `known` then holds what was known before.
   */
  const fetchOnce = async (
    rel: FederationRelationship,
    td: TrustDomain,
    state: PollState,
    signal: AbortSignal,
    known: { bundle: SpiffeBundle | undefined },
  ): Promise<void> => {
    const log = { trust_domain: td.name, url: rel.bundleEndpointUrl };
    const stored = await parseStored(td);
    known.bundle = state.latest ?? stored;
    const opts = await authOf(rel, td);
    const fetched = await fetchBundle(td, rel.bundleEndpointUrl, { ...opts, signal });
    if (signal.aborted) return;
    const fs = fetched.sequenceNumber;
    const ls = state.latest?.sequenceNumber;
    if (ls !== undefined && fs !== undefined && fs < ls) {
      logger.warn(
        { ...log, sequence: fs.toString(), latest_sequence: ls.toString() },
        'Ignoring a federated bundle older than the last one fetched',
      );
      return;
    }
    state.latest = fetched;
    known.bundle = fetched;
    if (stored === undefined || !stored.equals(fetched)) {
      await datastore.appendBundle(td.name, () => ({
        trustDomain: td.name,
        data: Buffer.from(fetched.marshal()),
        sequence: Number(fs ?? 0n),
      }));
      logger.info({ ...log, sequence: (fs ?? 0n).toString() }, 'Federated bundle updated');
    }
  };

  const run = async (
    rel: FederationRelationship,
    td: TrustDomain,
    state: PollState,
    signal: AbortSignal,
  ): Promise<void> => {
    while (!signal.aborted) {
      const known: { bundle: SpiffeBundle | undefined } = { bundle: state.latest };
      try {
        await fetchOnce(rel, td, state, signal, known);
      } catch (err) {
        if (signal.aborted) break;
        logger.warn(
          {
            trust_domain: td.name,
            url: rel.bundleEndpointUrl,
            err: err instanceof Error ? err.message : String(err),
          },
          'Federated bundle poll failed',
        );
      }
      const hint = known.bundle?.refreshHint ?? 0;
      const seconds =
        known.bundle === undefined ? UNKNOWN_BUNDLE_POLL_SECONDS : hint > 0 ? hint : DEFAULT_POLL_SECONDS;
      await sleep(Math.max(MIN_POLL_SECONDS, seconds) * 1000, signal);
    }
  };

  const startPoll = (rel: FederationRelationship): void => {
    const ac = new AbortController();
    const td = TrustDomain.fromString(rel.trustDomain);
    const state: PollState = { latest: undefined };
    const done = run(rel, td, state, ac.signal).catch((err: unknown) => {
      logger.error({ err, trust_domain: rel.trustDomain }, 'Federation poll stopped');
    });
    const once = () => fetchOnce(rel, td, state, ac.signal, { bundle: undefined });
    polls.set(rel.trustDomain, { key: keyOf(rel), ac, done, once });
    logger.info(
      { trust_domain: rel.trustDomain, url: rel.bundleEndpointUrl, profile: rel.profile },
      'Federation started',
    );
  };

  const stopPoll = (td: string, why: string): Promise<void> => {
    const p = polls.get(td);
    if (p === undefined) return Promise.resolve();
    polls.delete(td);
    p.ac.abort();
    logger.info({ trust_domain: td, reason: why }, 'Federation stopped');
    return p.done;
  };

  const doReconcile = async (): Promise<void> => {
    const wanted = new Map<string, FederationRelationship>();
    let token: string | undefined;
    do {
      const page = await datastore.listFederationRelationships({
        pagination: { token, pageSize: PAGE_SIZE },
      });
      for (const r of page.items) wanted.set(r.trustDomain, r);
      token = page.nextPageToken;
    } while (token !== undefined);
    for (const r of config.staticRelationships ?? []) wanted.set(r.trustDomain, r);
    if (closed) return;
    for (const td of [...polls.keys()]) {
      const w = wanted.get(td);
      if (w === undefined) await stopPoll(td, 'relationship deleted');
      else if (polls.get(td)?.key !== keyOf(w)) await stopPoll(td, 'relationship updated');
    }
    for (const [td, r] of wanted) {
      if (!polls.has(td) && !closed) startPoll(r);
    }
  };

  const reconcile = (): Promise<void> => {
    // One reconciliation at a time; a call during one waits for it and runs again.
    const next = (reconciling ?? Promise.resolve()).then(doReconcile, doReconcile);
    reconciling = next.catch(() => {});
    return next;
  };

  return {
    start() {
      if (timer !== undefined || closed) return;
      const tick = () => {
        reconcile().catch((err: unknown) => logger.warn({ err }, 'Reading federation relationships failed'));
      };
      tick();
      timer = setInterval(tick, reconcileMs);
      timer.unref();
    },
    reconcile,
    polling: () => [...polls.keys()].sort(),
    async refresh(trustDomain) {
      if (closed) throw failed('the server is stopping');
      if (!polls.has(trustDomain)) await reconcile();
      const p = polls.get(trustDomain);
      if (p === undefined) return false;
      await p.once();
      if (p.ac.signal.aborted)
        throw failed(`the relationship with "${trustDomain}" changed during the refresh`);
      return true;
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      await reconciling;
      await Promise.all([...polls.keys()].map((td) => stopPoll(td, 'server stopping')));
    },
  };
}
