/**
 * The SVID service (`spire.api.server.svid.v1.SVID`): agents get X509-SVIDs from CSRs and JWT-SVIDs only for
 * entries they are authorized for; admins mint X.509 and JWT SVIDs.
 *
 * @module
 */
import { status } from '@grpc/grpc-js';
import {
  type BatchNewX509SVIDResponse_Result,
  GrpcStatusError,
  invalidArgument,
  type JWTSVID,
  type SVIDServer,
  type X509SVID,
} from '@tessera/common/api';
import { X509SvidError } from '@tessera/spiffe/errors';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import type { SignedX509Svid, SignX509SvidCsrRequest } from '../../../ca/ca-manager.js';
import type { RegistrationEntry } from '../../../datastore/types.js';
import { parseCsrField } from '../../agent/v1/service.js';
import { type ApiContext, agentOf, callerOf, takeSigning, unary } from '../../context.js';
import {
  checkWorkloadId,
  errorMessage,
  idToApi,
  mapError,
  OK_STATUS,
  parseLocalId,
  statusOf,
} from '../../convert.js';

const MAX_BATCH = 10_000;

function checkAudience(audience: readonly string[]): string[] {
  if (audience.length === 0) throw invalidArgument('audience', 'at least one audience is required');
  for (const a of audience) if (a === '') throw invalidArgument('audience', 'audiences must not be empty');
  return [...audience];
}

function checkTtl(field: string, ttl: number): void {
  if (!Number.isInteger(ttl) || ttl < 0) throw invalidArgument(field, 'must not be negative');
}

/** Creates the SVID service implementation. */
export function createSvidService(ctx: ApiContext): SVIDServer {
  const x509Of = (id: string, chain: readonly Buffer[], notAfter: Date, hint: string): X509SVID => ({
    id: idToApi(id),
    certChain: [...chain],
    expiresAt: BigInt(Math.floor(notAfter.getTime() / 1000)),
    hint,
  });

  return {
    batchNewX509Svid: unary(ctx, async (req, call) => {
      const agentId = agentOf(ctx, call);
      if (req.params.length === 0) throw invalidArgument('params', 'at least one param is required');
      if (req.params.length > MAX_BATCH)
        throw invalidArgument('params', `at most ${MAX_BATCH} params are allowed`);
      takeSigning(ctx, agentId, req.params.length);
      const authorized = new Map(ctx.index.authorizedEntries(agentId).map((e) => [e.id, e] as const));
      const results: BatchNewX509SVIDResponse_Result[] = new Array(req.params.length);
      // Authorization here, in order; CSR verification and signing as one batch (on the CA's workers).
      const entries: RegistrationEntry[] = [];
      const requests: SignX509SvidCsrRequest[] = [];
      const at: number[] = [];
      req.params.forEach((p, i) => {
        try {
          if (p.entryId === '') throw invalidArgument('entry_id', 'missing entry ID');
          if (p.csr.length === 0) throw invalidArgument('csr', 'missing CSR');
          const entry = authorized.get(p.entryId);
          if (entry === undefined) {
            throw new GrpcStatusError(status.PERMISSION_DENIED, 'entry not found or not authorized');
          }
          entries.push(entry);
          requests.push({
            spiffeId: entry.spiffeId,
            csr: p.csr,
            ttlSeconds: entry.x509SvidTtl > 0 ? entry.x509SvidTtl : ctx.defaultX509SvidTtl,
            dnsNames: entry.dnsNames,
          });
          at.push(i);
        } catch (err) {
          results[i] = { status: statusOf(mapError(err, 'X509-SVID')), svid: undefined };
        }
      });
      let signed: (SignedX509Svid | Error)[];
      try {
        signed = requests.length === 0 ? [] : await ctx.ca.signX509SvidCsrs(requests);
      } catch (err) {
        signed = requests.map(() => (err instanceof Error ? err : new Error(String(err))));
      }
      signed.forEach((r, k) => {
        const i = at[k] as number;
        const entry = entries[k] as RegistrationEntry;
        if (r instanceof Error) {
          const mapped =
            r instanceof X509SvidError ? invalidArgument('csr', errorMessage(r)) : mapError(r, 'X509-SVID');
          results[i] = { status: statusOf(mapped), svid: undefined };
        } else {
          results[i] = { status: OK_STATUS, svid: x509Of(entry.spiffeId, r.chain, r.notAfter, entry.hint) };
        }
      });
      return { results };
    }),

    newJwtsvid: unary(ctx, async (req, call) => {
      const agentId = agentOf(ctx, call);
      if (req.entryId === '') throw invalidArgument('entry_id', 'missing entry ID');
      const audience = checkAudience(req.audience);
      takeSigning(ctx, agentId, 1);
      const entry = ctx.index.authorizedEntries(agentId).find((e) => e.id === req.entryId);
      if (entry === undefined)
        throw new GrpcStatusError(status.PERMISSION_DENIED, 'entry not found or not authorized');
      try {
        const minted = ctx.ca.mintJwtSvid({
          spiffeId: entry.spiffeId,
          audience,
          ttlSeconds: entry.jwtSvidTtl > 0 ? entry.jwtSvidTtl : ctx.defaultJwtSvidTtl,
        });
        const svid: JWTSVID = {
          token: minted.token,
          id: idToApi(entry.spiffeId),
          expiresAt: BigInt(Math.floor(minted.expiresAt.getTime() / 1000)),
          issuedAt: BigInt(Math.floor(minted.issuedAt.getTime() / 1000)),
          hint: entry.hint,
        };
        return { svid };
      } catch (err) {
        throw mapError(err, 'JWT-SVID');
      }
    }),

    mintX509Svid: unary(ctx, async (req, call) => {
      const caller = callerOf(ctx, call);
      checkTtl('ttl', req.ttl);
      const csr = parseCsrField('csr', req.csr);
      if (csr.uris.length !== 1) throw invalidArgument('csr', 'CSR must have exactly one URI SAN');
      let id: SpiffeId;
      try {
        id = SpiffeId.fromString(csr.uris[0] as string);
      } catch (err) {
        throw invalidArgument('csr', `CSR URI SAN is invalid: ${errorMessage(err)}`);
      }
      if (!id.memberOf(ctx.trustDomain)) {
        throw invalidArgument(
          'csr',
          `CSR URI SAN "${id.toString()}" is not a member of trust domain "${ctx.trustDomain.name}"`,
        );
      }
      if (id.path === '') throw invalidArgument('csr', 'CSR URI SAN has no path');
      checkWorkloadId('csr', id);
      takeSigning(ctx, caller.kind === 'admin' ? caller.id : caller.address, 1);
      try {
        const signed = ctx.ca.signX509Svid({
          spiffeId: id,
          publicKey: csr.spkiDer,
          ttlSeconds: req.ttl > 0 ? req.ttl : ctx.defaultX509SvidTtl,
          dnsNames: csr.dnsNames,
        });
        return { svid: x509Of(id.toString(), signed.chain, signed.notAfter, '') };
      } catch (err) {
        throw mapError(err, 'X509-SVID');
      }
    }),

    mintJwtsvid: unary(ctx, async (req, call) => {
      const caller = callerOf(ctx, call);
      const id = parseLocalId('id', req.id, ctx.trustDomain);
      if (id.path === '') throw invalidArgument('id', 'must have a path');
      checkWorkloadId('id', id);
      const audience = checkAudience(req.audience);
      checkTtl('ttl', req.ttl);
      takeSigning(ctx, caller.kind === 'admin' ? caller.id : caller.address, 1);
      try {
        const minted = ctx.ca.mintJwtSvid({
          spiffeId: id,
          audience,
          ttlSeconds: req.ttl > 0 ? req.ttl : ctx.defaultJwtSvidTtl,
        });
        return {
          svid: {
            token: minted.token,
            id: idToApi(id.toString()),
            expiresAt: BigInt(Math.floor(minted.expiresAt.getTime() / 1000)),
            issuedAt: BigInt(Math.floor(minted.issuedAt.getTime() / 1000)),
            hint: '',
          },
        };
      } catch (err) {
        throw mapError(err, 'JWT-SVID');
      }
    }),

    newDownstreamX509Ca: unary(ctx, async () => {
      throw new GrpcStatusError(status.UNIMPLEMENTED, 'downstream CAs are not supported');
    }),
  };
}
