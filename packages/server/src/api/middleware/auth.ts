/**
 * Authentication and authorization of API calls, decided from the connection before the request is read:
 * the admin Unix socket makes callers admin; over TLS, a verified agent SVID of an attested, unbanned node with
 * the current (or new) serial makes an agent, and a verified SVID of an admin entry (or a configured admin ID)
 * makes an admin. Everything else may only attest. Deny by default.
 *
 * Agent SVID renewal is two-phase, as in SPIRE: after RenewAgent the node has a current and a new serial, and
 * both are accepted; the agent's first call with the new serial promotes it (new → current, new cleared) before
 * the call proceeds, after which the previous SVID is refused.
 *
 * @module
 */
import type { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  type Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from '@grpc/grpc-js';

type PartialStatusObject = Parameters<Parameters<ResponderBuilder['withSendStatus']>[0]>[0];

import type { SpiffeBundle } from '@tessera/spiffe/bundle';
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509SvidSync } from '@tessera/spiffe/svid';
import type { EntryIndex } from '../../cache/entry-index.js';
import type { Datastore } from '../../datastore/datastore.js';
import type { AttestedNode } from '../../datastore/types.js';
import { errorMessage, serialMatches } from '../convert.js';
import type { RateLimiter } from './rate-limit.js';

/** What is known of a connection when it is accepted. */
export interface ConnectionInfo {
  readonly transport: 'unix' | 'tls';
  /** Remote IP address (TLS) or `local` (Unix socket). */
  readonly address: string;
  /** The client certificate chain as sent (leaf first); empty when the client sent none. */
  readonly peerChain: readonly X509Certificate[];
}

/** Who is calling. */
export type Caller =
  | { readonly kind: 'admin'; readonly id: string; readonly address: string }
  | {
      readonly kind: 'agent';
      readonly agentId: string;
      readonly node: AttestedNode;
      readonly address: string;
      /** The caller presented the node's new serial (from RenewAgent), which is not promoted yet. */
      readonly renewalPending: boolean;
    }
  | { readonly kind: 'anonymous'; readonly address: string; readonly reason: string; readonly code: status };

/** Who may call a method. */
export type Access = 'any' | 'agent' | 'agent_or_admin' | 'admin';

const TOKEN_PREFIX = 'tessera-conn:';

/**
 * Methods and who may call them; any method not listed is admin-only. Agent RPCs follow the architecture: an
 * agent may attest, renew, sync and sign for its own entries, and read bundles.
 */
export const METHOD_ACCESS: ReadonlyMap<string, Access> = new Map<string, Access>([
  ['/spire.api.server.agent.v1.Agent/AttestAgent', 'any'],
  ['/spire.api.server.agent.v1.Agent/RenewAgent', 'agent'],
  ['/spire.api.server.entry.v1.Entry/GetAuthorizedEntries', 'agent'],
  ['/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries', 'agent'],
  ['/spire.api.server.svid.v1.SVID/BatchNewX509SVID', 'agent'],
  ['/spire.api.server.svid.v1.SVID/NewJWTSVID', 'agent'],
  ['/tessera.api.server.sync.v1.Sync/WatchAuthorizedEntries', 'agent'],
  ['/spire.api.server.bundle.v1.Bundle/GetBundle', 'agent_or_admin'],
  ['/spire.api.server.bundle.v1.Bundle/ListFederatedBundles', 'agent_or_admin'],
  ['/spire.api.server.bundle.v1.Bundle/GetFederatedBundle', 'agent_or_admin'],
]);

/** Access of a method path (admin when not listed). */
export function accessOf(path: string): Access {
  return METHOD_ACCESS.get(path) ?? 'admin';
}

/**
 * Tracks accepted connections: each socket gets a token that grpc-js reports as the call's peer, mapping calls
 * back to their connection.
 */
export class ConnectionRegistry {
  readonly #byToken = new Map<string, ConnectionInfo>();
  #next = 0;

  /** Registers an accepted socket (before injecting it into grpc-js); forgotten when the socket closes. */
  register(socket: Socket, info: ConnectionInfo): void {
    const token = `${TOKEN_PREFIX}${this.#next++}`;
    Object.defineProperty(socket, 'remoteAddress', { value: token, enumerable: false, configurable: true });
    Object.defineProperty(socket, 'remotePort', { value: undefined, enumerable: false, configurable: true });
    this.#byToken.set(token, info);
    socket.once('close', () => this.#byToken.delete(token));
  }

  /** The connection of a call, if it came through a registered socket. */
  lookup(call: { getPeer(): string }): ConnectionInfo | undefined {
    let peer: string;
    try {
      peer = call.getPeer();
    } catch {
      return undefined;
    }
    return peer.startsWith(TOKEN_PREFIX) ? this.#byToken.get(peer) : undefined;
  }

  /** Open connections. */
  get size(): number {
    return this.#byToken.size;
  }
}

/** An agent caller. */
export type AgentCaller = Extract<Caller, { readonly kind: 'agent' }>;

/** The datastore operations the authenticator uses (to promote a renewed agent SVID). */
export type AuthenticatorDatastore = Pick<Datastore, 'fetchAttestedNode' | 'updateAttestedNode'>;

/** Configuration of {@link Authenticator}. */
export interface AuthenticatorConfig {
  readonly registry: ConnectionRegistry;
  readonly index: EntryIndex;
  readonly datastore: AuthenticatorDatastore;
  readonly trustDomain: TrustDomain;
  /** The trust domain's current bundle (client SVIDs are verified against it). */
  readonly bundle: () => SpiffeBundle;
  /** SPIFFE IDs that are admin over TLS besides entries marked admin. */
  readonly adminIds?: readonly string[];
  readonly now?: () => Date;
}

interface Verified {
  readonly bundle: SpiffeBundle;
  readonly id: string | undefined;
  readonly error: string | undefined;
  readonly untilMs: number;
}

/** Resolves the caller of a call from its connection. */
export class Authenticator {
  readonly #registry: ConnectionRegistry;
  readonly #index: EntryIndex;
  readonly #ds: AuthenticatorDatastore;
  readonly #promotions = new Map<string, Promise<void>>();
  readonly #agentPrefix: string;
  readonly #bundle: () => SpiffeBundle;
  readonly #adminIds: ReadonlySet<string>;
  readonly #now: () => Date;
  readonly #verified = new WeakMap<ConnectionInfo, Verified>();

  constructor(config: AuthenticatorConfig) {
    this.#registry = config.registry;
    this.#index = config.index;
    this.#ds = config.datastore;
    this.#agentPrefix = `${config.trustDomain.id().toString()}/spire/agent/`;
    this.#bundle = config.bundle;
    this.#adminIds = new Set(config.adminIds ?? []);
    this.#now = config.now ?? (() => new Date());
  }

  /** The caller of a call; undefined when the call did not come through a registered connection. */
  callerOf(call: { getPeer(): string }): Caller | undefined {
    const conn = this.#registry.lookup(call);
    if (conn === undefined) return undefined;
    return this.callerOfConnection(conn);
  }

  /** The caller behind a connection. */
  callerOfConnection(conn: ConnectionInfo): Caller {
    const address = conn.address;
    if (conn.transport === 'unix') return { kind: 'admin', id: 'local', address };
    if (conn.peerChain.length === 0) {
      return { kind: 'anonymous', address, reason: 'no client certificate', code: status.PERMISSION_DENIED };
    }
    const v = this.#verify(conn);
    if (v.id === undefined) {
      return {
        kind: 'anonymous',
        address,
        reason: `client certificate verification failed: ${v.error ?? 'unknown error'}`,
        code: status.UNAUTHENTICATED,
      };
    }
    const id = v.id;
    if (id.startsWith(this.#agentPrefix)) {
      const node = this.#index.node(id);
      const denied = (reason: string): Caller => ({
        kind: 'anonymous',
        address,
        reason,
        code: status.PERMISSION_DENIED,
      });
      if (node === undefined) return denied(`agent "${id}" is not attested`);
      if (node.banned) return denied(`agent "${id}" is banned`);
      const serial = (conn.peerChain[0] as X509Certificate).serialNumber;
      const current = serialMatches(node.certSerial, serial);
      if (!current && !serialMatches(node.newCertSerial, serial)) {
        return denied(`agent "${id}" presented an SVID that is not its current one`);
      }
      return { kind: 'agent', agentId: id, node, address, renewalPending: !current };
    }
    if (this.#adminIds.has(id) || this.#index.isAdminId(id)) return { kind: 'admin', id, address };
    return { kind: 'anonymous', address, reason: `"${id}" is not an admin`, code: status.PERMISSION_DENIED };
  }

  /**
   * Completes the two-phase renewal of an agent SVID for a caller that presented the new serial: the new serial
   * becomes the current one and the new one is cleared (from the node as stored now, so a later renewal or a
   * ban is never overwritten). Concurrent calls of one agent share one promotion; it resolves once the entry
   * index reflects it. Resolve the caller again afterwards: it may no longer be permitted.
   *
   * @throws {DatastoreError} when the datastore fails (the call must then be refused)
   */
  promoteRenewedSvid(caller: AgentCaller): Promise<void> {
    const newSerial = caller.node.newCertSerial;
    if (!caller.renewalPending || newSerial === undefined) return Promise.resolve();
    const key = `${caller.agentId} ${newSerial}`;
    const pending = this.#promotions.get(key);
    if (pending !== undefined) return pending;
    const p = (async () => {
      const node = await this.#ds.fetchAttestedNode(caller.agentId);
      if (
        node !== undefined &&
        !node.banned &&
        node.newCertSerial === newSerial &&
        node.newCertNotAfter !== undefined
      ) {
        await this.#ds.updateAttestedNode(
          {
            ...node,
            certSerial: newSerial,
            certNotAfter: node.newCertNotAfter,
            newCertSerial: undefined,
            newCertNotAfter: undefined,
          },
          { certSerial: true, certNotAfter: true, newCertSerial: true, newCertNotAfter: true },
        );
      }
      await this.#index.refresh();
    })().finally(() => this.#promotions.delete(key));
    this.#promotions.set(key, p);
    return p;
  }

  #verify(conn: ConnectionInfo): Verified {
    const bundle = this.#bundle();
    const nowMs = this.#now().getTime();
    const cached = this.#verified.get(conn);
    if (cached !== undefined && cached.bundle === bundle && nowMs < cached.untilMs) return cached;
    let v: Verified;
    try {
      const r = verifyX509SvidSync([...conn.peerChain], bundle, { now: new Date(nowMs) });
      const leafNotAfter = new Date((conn.peerChain[0] as X509Certificate).validTo).getTime();
      v = { bundle, id: r.id.toString(), error: undefined, untilMs: leafNotAfter };
    } catch (err) {
      v = { bundle, id: undefined, error: errorMessage(err), untilMs: nowMs + 1000 };
    }
    this.#verified.set(conn, v);
    return v;
  }
}

/** The audit logging (pino's `Logger` fits). */
export interface AuditLogger {
  info(fields: object, msg: string): void;
}

/** Configuration of {@link createAuthInterceptor}. */
export interface AuthInterceptorConfig {
  readonly authenticator: Authenticator;
  /** Node attestations per caller address; checked before the request is read. */
  readonly attestationLimiter?: RateLimiter;
  /** Audit log of admin calls; none when undefined. */
  readonly audit?: AuditLogger;
}

function permitted(access: Access, caller: Caller): boolean {
  switch (access) {
    case 'any':
      return true;
    case 'agent':
      return caller.kind === 'agent';
    case 'agent_or_admin':
      return caller.kind === 'agent' || caller.kind === 'admin';
    case 'admin':
      return caller.kind === 'admin';
  }
}

function denial(access: Access, caller: Caller): { code: status; details: string } {
  if (caller.kind === 'anonymous')
    return { code: caller.code, details: `authorization denied: ${caller.reason}` };
  if (access === 'admin')
    return { code: status.PERMISSION_DENIED, details: 'authorization denied: caller is not an admin' };
  return { code: status.PERMISSION_DENIED, details: 'authorization denied: caller is not an agent' };
}

function callerLabel(caller: Caller | undefined): string {
  if (caller === undefined) return 'unknown';
  if (caller.kind === 'admin') return caller.id;
  if (caller.kind === 'agent') return caller.agentId;
  return 'anonymous';
}

/**
 * A grpc-js server interceptor that authorizes each call when its metadata arrives, before any request message
 * is read, answers denied calls itself, rate-limits attestation per address, and writes an audit line per admin
 * call with its result.
 */
export function createAuthInterceptor(config: AuthInterceptorConfig): ServerInterceptor {
  const { authenticator, attestationLimiter, audit } = config;
  return (method, call) => {
    const access = accessOf(method.path);
    let caller: Caller | undefined;
    let audited = false;
    const auditStatus = (st: PartialStatusObject) => {
      if (audit === undefined || audited || !(access === 'admin' || caller?.kind === 'admin')) return;
      audited = true;
      audit.info(
        {
          audit: true,
          method: method.path,
          caller_id: callerLabel(caller),
          caller_address: caller?.address ?? 'unknown',
          status: status[st.code],
          ...(st.code === status.OK ? {} : { status_message: st.details ?? '' }),
        },
        'API accessed',
      );
    };
    // Denials are sent straight to the transport (not through this interceptor's responder): audit them here.
    const deny = (st: PartialStatusObject & { metadata: Metadata }) => {
      auditStatus(st);
      call.sendStatus(st);
    };
    /** Resolves and checks the caller; false (after denying the call) when it may not proceed. */
    const authorize = (metadata: Metadata): boolean => {
      caller = authenticator.callerOf(call);
      if (caller === undefined) {
        deny({
          code: status.PERMISSION_DENIED,
          details: 'authorization denied: unknown connection',
          metadata,
        });
        return false;
      }
      if (!permitted(access, caller)) {
        const d = denial(access, caller);
        deny({ ...d, metadata });
        return false;
      }
      return true;
    };
    /** Rate-limits attestation, then lets the call proceed. */
    const proceed = (metadata: Metadata, next: (m: Metadata) => void): void => {
      const address = caller?.address ?? 'unknown';
      if (access === 'any' && attestationLimiter !== undefined && !attestationLimiter.take(address)) {
        deny({
          code: status.RESOURCE_EXHAUSTED,
          details: 'rate limit exceeded: too many attestations',
          metadata,
        });
        return;
      }
      next(metadata);
    };
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata: Metadata, next: (m: Metadata) => void) => {
        if (!authorize(metadata)) return;
        const c = caller as Caller;
        if (c.kind !== 'agent' || !c.renewalPending) {
          proceed(metadata, next);
          return;
        }
        // First call with the SVID from RenewAgent: promote it, then decide again on the promoted node.
        // grpc-js holds the request until `next` is called.
        authenticator.promoteRenewedSvid(c).then(
          () => {
            if (authorize(metadata)) proceed(metadata, next);
          },
          () => {
            deny({
              code: status.UNAVAILABLE,
              details: 'authorization failed: could not activate the renewed agent SVID',
              metadata,
            });
          },
        );
      })
      .build();
    const responder = new ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendStatus((st: PartialStatusObject, next: (s: PartialStatusObject) => void) => {
        auditStatus(st);
        next(st);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}
