/**
 * What the API services share: the trust domain, datastore, CA, entry index, attestors, clock, limits and
 * logging, and the caller of a call.
 *
 * @module
 */
import { type ServerUnaryCall, status } from '@grpc/grpc-js';
import { type ApiLogger, GrpcStatusError } from '@tessera/common/api';
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { CaManager } from '../ca/ca-manager.js';
import type { EntryIndex } from '../cache/entry-index.js';
import type { Datastore } from '../datastore/datastore.js';
import type { FederationPoller } from '../federation/poller.js';
import type { NodeAttestor } from '../plugin/nodeattestor/node-attestor.js';
import type { Authenticator, Caller } from './middleware/auth.js';
import type { RateLimiter } from './middleware/rate-limit.js';

/** Dependencies of the API services. */
export interface ApiContext {
  readonly trustDomain: TrustDomain;
  readonly datastore: Datastore;
  readonly ca: CaManager;
  readonly index: EntryIndex;
  readonly authenticator: Authenticator;
  readonly attestors: ReadonlyMap<string, NodeAttestor>;
  readonly now: () => Date;
  /** Default X509-SVID lifetime in seconds (also the agent SVID lifetime). */
  readonly defaultX509SvidTtl: number;
  /** Default JWT-SVID lifetime in seconds. */
  readonly defaultJwtSvidTtl: number;
  /** SVIDs signed per second per caller. */
  readonly signingLimiter: RateLimiter;
  /** Deadline of one AttestAgent exchange in milliseconds (default 30 s). */
  readonly attestationTimeoutMs?: number;
  readonly log: ApiLogger & { info(fields: object, msg: string): void };
  /** The federation client, for TrustDomain.RefreshBundle (absent: the call answers Unavailable). */
  readonly federation?: Pick<FederationPoller, 'refresh'>;
}

/** The caller of a call (the interceptor already authorized it); Internal when it cannot be resolved. */
export function callerOf(ctx: ApiContext, call: { getPeer(): string }): Caller {
  const c = ctx.authenticator.callerOf(call);
  if (c === undefined)
    throw new GrpcStatusError(status.PERMISSION_DENIED, 'authorization denied: unknown connection');
  return c;
}

/** The agent ID of an agent call; PermissionDenied otherwise. */
export function agentOf(ctx: ApiContext, call: { getPeer(): string }): string {
  const c = callerOf(ctx, call);
  if (c.kind !== 'agent')
    throw new GrpcStatusError(status.PERMISSION_DENIED, 'authorization denied: caller is not an agent');
  return c.agentId;
}

/** Takes `count` signing tokens for the caller; ResourceExhausted when over the limit. */
export function takeSigning(ctx: ApiContext, key: string, count: number): void {
  if (!ctx.signingLimiter.take(key, count)) {
    throw new GrpcStatusError(status.RESOURCE_EXHAUSTED, 'rate limit exceeded: too many SVIDs signed');
  }
}

/** Wraps an async unary handler: its result or error goes to the callback; unexpected errors become Internal. */
export function unary<Req, Res>(
  ctx: ApiContext,
  fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, cb: (err: GrpcStatusError | null, res?: Res) => void) => void {
  return (call, cb) => {
    fn(call.request, call).then(
      (res) => cb(null, res),
      (err: unknown) => {
        const e =
          err instanceof GrpcStatusError
            ? err
            : new GrpcStatusError(status.INTERNAL, 'internal error', { cause: err });
        if (e.code === status.INTERNAL) ctx.log.error({ err, method: call.getPath() }, 'API call failed');
        cb(e);
      },
    );
  };
}
