/**
 * The gRPC front end of the serverless service (`tessera.api.serverless.v1.RemoteAttestation`): the same checks
 * and answers as the HTTP API, as gRPC statuses (PERMISSION_DENIED, INVALID_ARGUMENT, RESOURCE_EXHAUSTED).
 *
 * @module
 */
import { type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import type { RemoteAttestationServer } from '@tessera/common/api/gen/tessera/api/serverless/v1/serverless';
import type { ClientRateLimiter } from './rate-limit.js';
import type { RequestMeta, ServerlessService } from './service.js';
import { ServerlessDenial } from './types.js';

const GRPC_STATUS: Record<number, status> = {
  400: status.INVALID_ARGUMENT,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  413: status.RESOURCE_EXHAUSTED,
  429: status.RESOURCE_EXHAUSTED,
};

function peerAddress(call: ServerUnaryCall<unknown, unknown>): string {
  const peer = call.getPeer();
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  return m?.[1] ?? peer;
}

/**
 * Creates the RemoteAttestation service implementation.
 *
 * @example
 * ```ts
 * grpcServer.addService(RemoteAttestationService, createRemoteAttestationService({ service, limiter }));
 * ```
 */
export function createRemoteAttestationService(opts: {
  readonly service: ServerlessService;
  readonly limiter: ClientRateLimiter;
}): RemoteAttestationServer {
  const { service, limiter } = opts;
  function unary<Req, Res>(method: string, fn: (req: Req, meta: RequestMeta) => Promise<Res>) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const meta: RequestMeta = {
        clientAddress: peerAddress(call as ServerUnaryCall<unknown, unknown>),
        transport: 'grpc',
      };
      void (async () => {
        if (!limiter.allow(meta.clientAddress))
          throw new ServerlessDenial('rate_limited', 'too many requests from this client');
        return fn(call.request, meta);
      })().then(
        (res) => callback(null, res),
        (err: unknown) => {
          const d =
            err instanceof ServerlessDenial ? err : new ServerlessDenial('internal', 'internal error');
          service.auditDenial(method, meta, d);
          callback({ code: GRPC_STATUS[d.status] ?? status.INTERNAL, details: `${d.code}: ${d.message}` });
        },
      );
    };
  }
  return {
    fetchX509Svid: unary('x509-svid', async (req, meta) => {
      const g = await service.mintX509Svid(
        { attestations: req.attestations, ...(req.csr.length === 0 ? {} : { csr: req.csr }) },
        meta,
      );
      return {
        spiffeId: g.spiffeId.toString(),
        x509Svid: Buffer.concat(g.chain),
        x509SvidKey:
          g.privateKey === undefined
            ? Buffer.alloc(0)
            : g.privateKey.export({ type: 'pkcs8', format: 'der' }),
        bundle: Buffer.concat(g.bundle.map((c) => c.raw)),
        expiresAt: BigInt(Math.floor(g.expiresAt.getTime() / 1000)),
      };
    }),
    fetchJwtsvid: unary('jwt-svid', async (req, meta) => {
      const g = await service.mintJwtSvid({ attestations: req.attestations, audience: req.audience }, meta);
      return {
        spiffeId: g.spiffeId.toString(),
        token: g.token,
        expiresAt: BigInt(Math.floor(g.expiresAt.getTime() / 1000)),
      };
    }),
    fetchBundles: unary('bundle', async (req, meta) => {
      const g = await service.fetchBundle({ attestations: req.attestations }, meta);
      return {
        trustDomain: g.bundle.trustDomain.name,
        x509Bundle: g.bundle.x509Bundle().marshalDer(),
        jwtBundle: Buffer.from(g.bundle.jwtBundle().marshal()),
      };
    }),
  };
}
