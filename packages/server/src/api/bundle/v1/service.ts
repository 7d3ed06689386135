/**
 * The Bundle service (`spire.api.server.bundle.v1.Bundle`): the trust domain's bundle (get, append) and
 * federated bundles (batch create/update/set/delete, get, list, count).
 *
 * @module
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import {
  type Bundle as ApiBundle,
  BatchDeleteFederatedBundleRequest_Mode,
  type BundleMask,
  type BundleServer,
  GrpcStatusError,
  invalidArgument,
} from '@tessera/common/api';
import { keyIdentifier, spkiDer } from '@tessera/common/x509';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { DeleteBundleMode } from '../../../datastore/datastore.js';
import type { Bundle } from '../../../datastore/types.js';
import { MAX_PAGE_SIZE } from '../../../datastore/validate.js';
import { type ApiContext, unary } from '../../context.js';
import { errorMessage, mapError, OK_STATUS, statusOf } from '../../convert.js';

/** A SPIFFE bundle as an API bundle message, with only the fields of `mask`. */
export function bundleToApi(
  b: SpiffeBundle,
  mask?: BundleMask,
  tainted: { x509: readonly string[]; jwt: readonly string[] } = { x509: [], jwt: [] },
): ApiBundle {
  const m = mask ?? { x509Authorities: true, jwtAuthorities: true, refreshHint: true, sequenceNumber: true };
  return {
    trustDomain: b.trustDomain.name,
    x509Authorities: m.x509Authorities
      ? b.x509Authorities().map((c) => ({ asn1: c.raw, tainted: tainted.x509.includes(skiHex(c)), hint: '' }))
      : [],
    jwtAuthorities: m.jwtAuthorities
      ? [...b.jwtAuthorities()].map(([kid, key]) => ({
          publicKey: key.export({ format: 'der', type: 'spki' }),
          keyId: kid,
          expiresAt: 0n,
          tainted: tainted.jwt.includes(kid),
          hint: '',
        }))
      : [],
    refreshHint: m.refreshHint ? BigInt(b.refreshHint ?? 0) : 0n,
    sequenceNumber: m.sequenceNumber ? (b.sequenceNumber ?? 0n) : 0n,
  };
}

function skiHex(c: X509Certificate): string {
  return keyIdentifier(spkiDer(c.publicKey)).toString('hex');
}

/** An API bundle message as a SPIFFE bundle; InvalidArgument naming the field otherwise. */
export function apiToBundle(b: ApiBundle, field = 'bundle'): SpiffeBundle {
  let td: TrustDomain;
  try {
    td = TrustDomain.fromString(b.trustDomain);
  } catch (err) {
    throw invalidArgument(`${field}.trust_domain`, errorMessage(err));
  }
  const certs = b.x509Authorities.map((a, i) => {
    try {
      return new X509Certificate(a.asn1);
    } catch {
      throw invalidArgument(`${field}.x509_authorities`, `certificate ${i} cannot be parsed`);
    }
  });
  const keys = new Map<string, KeyObject>();
  for (const k of b.jwtAuthorities) {
    if (k.keyId === '') throw invalidArgument(`${field}.jwt_authorities`, 'missing key ID');
    if (keys.has(k.keyId)) throw invalidArgument(`${field}.jwt_authorities`, `duplicate key ID "${k.keyId}"`);
    try {
      keys.set(k.keyId, createPublicKey({ key: k.publicKey, format: 'der', type: 'spki' }));
    } catch {
      throw invalidArgument(`${field}.jwt_authorities`, `key "${k.keyId}" cannot be parsed`);
    }
  }
  if (b.refreshHint < 0n) throw invalidArgument(`${field}.refresh_hint`, 'must not be negative');
  try {
    return SpiffeBundle.fromAuthorities(td, {
      x509Authorities: certs,
      jwtAuthorities: keys,
      sequenceNumber: b.sequenceNumber,
      ...(b.refreshHint > 0n ? { refreshHint: Number(b.refreshHint) } : {}),
    });
  } catch (err) {
    throw invalidArgument(field, errorMessage(err));
  }
}

function stored(b: SpiffeBundle): Bundle {
  return {
    trustDomain: b.trustDomain.name,
    data: Buffer.from(b.marshal()),
    sequence: Number(b.sequenceNumber ?? 0n),
  };
}

function parseStored(b: Bundle): SpiffeBundle {
  return SpiffeBundle.parse(TrustDomain.fromString(b.trustDomain), b.data);
}

/** Creates the Bundle service implementation. */
export function createBundleService(ctx: ApiContext): BundleServer {
  const own = async (): Promise<SpiffeBundle> => {
    const b = await ctx.datastore.fetchBundle(ctx.trustDomain.name);
    return b === undefined ? ctx.ca.bundle() : parseStored(b);
  };
  const federatedTd = (field: string, name: string): string => {
    let td: TrustDomain;
    try {
      td = TrustDomain.fromString(name);
    } catch (err) {
      throw invalidArgument(field, errorMessage(err));
    }
    if (td.equals(ctx.trustDomain))
      throw invalidArgument(field, `"${td.name}" is the server's own trust domain`);
    return td.name;
  };
  const federated = (b: ApiBundle): SpiffeBundle => {
    federatedTd('bundle.trust_domain', b.trustDomain);
    const parsed = apiToBundle(b);
    if (parsed.x509Authorities().length === 0 && parsed.jwtAuthorities().size === 0) {
      throw invalidArgument('bundle', 'a bundle needs at least one authority');
    }
    return parsed;
  };

  return {
    countBundles: unary(ctx, async () => {
      try {
        return { count: await ctx.datastore.countBundles() };
      } catch (err) {
        throw mapError(err, 'bundles');
      }
    }),

    getBundle: unary(ctx, async (req) =>
      bundleToApi(await own(), req.outputMask, ctx.ca.taintedAuthorities()),
    ),

    appendBundle: unary(ctx, async (req) => {
      const extra = apiToBundle({
        trustDomain: ctx.trustDomain.name,
        x509Authorities: req.x509Authorities,
        jwtAuthorities: req.jwtAuthorities,
        refreshHint: 0n,
        sequenceNumber: 0n,
      });
      if (extra.x509Authorities().length === 0 && extra.jwtAuthorities().size === 0) {
        throw invalidArgument('x509_authorities', 'nothing to append');
      }
      let result: Bundle;
      try {
        result = await ctx.datastore.appendBundle(ctx.trustDomain.name, (current) => {
          const cur = current === undefined ? ctx.ca.bundle() : parseStored(current);
          const certs = new Map(cur.x509Authorities().map((c) => [c.fingerprint256, c]));
          for (const c of extra.x509Authorities()) certs.set(c.fingerprint256, c);
          const keys = new Map(cur.jwtAuthorities());
          for (const [k, v] of extra.jwtAuthorities()) keys.set(k, v);
          return stored(
            SpiffeBundle.fromAuthorities(ctx.trustDomain, {
              x509Authorities: certs.values(),
              jwtAuthorities: keys,
              sequenceNumber: (cur.sequenceNumber ?? 0n) + 1n,
              ...(cur.refreshHint === undefined ? {} : { refreshHint: cur.refreshHint }),
            }),
          );
        });
      } catch (err) {
        throw mapError(err, 'bundle');
      }
      return bundleToApi(parseStored(result), req.outputMask);
    }),

    publishJwtAuthority: unary(ctx, async () => {
      throw new GrpcStatusError(status.UNIMPLEMENTED, 'downstream servers are not supported');
    }),

    listFederatedBundles: unary(ctx, async (req) => {
      if (req.pageSize < 0) throw invalidArgument('page_size', 'must not be negative');
      try {
        const page = await ctx.datastore.listBundles({
          pagination: {
            token: req.pageToken === '' ? undefined : req.pageToken,
            pageSize: req.pageSize === 0 ? MAX_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE),
          },
        });
        return {
          bundles: page.items
            .filter((b) => b.trustDomain !== ctx.trustDomain.name)
            .map((b) => bundleToApi(parseStored(b), req.outputMask)),
          nextPageToken: page.nextPageToken ?? '',
        };
      } catch (err) {
        throw mapError(err, 'bundles');
      }
    }),

    getFederatedBundle: unary(ctx, async (req) => {
      const td = federatedTd('trust_domain', req.trustDomain);
      const b = await ctx.datastore.fetchBundle(td);
      if (b === undefined) throw new GrpcStatusError(status.NOT_FOUND, 'bundle not found');
      return bundleToApi(parseStored(b), req.outputMask);
    }),

    batchCreateFederatedBundle: unary(ctx, async (req) => ({
      results: await Promise.all(
        req.bundle.map(async (b) => {
          try {
            const parsed = federated(b);
            await ctx.datastore.createBundle(stored(parsed));
            return { status: OK_STATUS, bundle: bundleToApi(parsed, req.outputMask) };
          } catch (err) {
            return { status: statusOf(mapError(err, 'bundle')), bundle: undefined };
          }
        }),
      ),
    })),

    batchUpdateFederatedBundle: unary(ctx, async (req) => ({
      results: await Promise.all(
        req.bundle.map(async (b) => {
          try {
            const parsed = federated(b);
            await ctx.datastore.updateBundle(stored(parsed));
            return { status: OK_STATUS, bundle: bundleToApi(parsed, req.outputMask) };
          } catch (err) {
            return { status: statusOf(mapError(err, 'bundle')), bundle: undefined };
          }
        }),
      ),
    })),

    batchSetFederatedBundle: unary(ctx, async (req) => ({
      results: await Promise.all(
        req.bundle.map(async (b) => {
          try {
            const parsed = federated(b);
            await ctx.datastore.setBundle(stored(parsed));
            return { status: OK_STATUS, bundle: bundleToApi(parsed, req.outputMask) };
          } catch (err) {
            return { status: statusOf(mapError(err, 'bundle')), bundle: undefined };
          }
        }),
      ),
    })),

    batchDeleteFederatedBundle: unary(ctx, async (req) => {
      const modes: Record<number, DeleteBundleMode> = {
        [BatchDeleteFederatedBundleRequest_Mode.RESTRICT]: 'restrict',
        [BatchDeleteFederatedBundleRequest_Mode.DELETE]: 'delete',
        [BatchDeleteFederatedBundleRequest_Mode.DISSOCIATE]: 'dissociate',
      };
      const mode = modes[req.mode];
      if (mode === undefined) throw invalidArgument('mode', `unknown mode ${req.mode}`);
      const results = [];
      for (const name of req.trustDomains) {
        try {
          const td = federatedTd('trust_domains', name);
          await ctx.datastore.deleteBundle(td, mode);
          results.push({ status: OK_STATUS, trustDomain: name });
        } catch (err) {
          const m = mapError(err, 'bundle');
          results.push({
            status:
              m.code === status.ALREADY_EXISTS
                ? { code: status.FAILED_PRECONDITION, message: 'bundle is still used by entries' }
                : statusOf(m),
            trustDomain: name,
          });
        }
      }
      await ctx.index.refresh();
      return { results };
    }),
  };
}
