/**
 * The TrustDomain service (`spire.api.server.trustdomain.v1.TrustDomain`): federation relationship CRUD.
 *
 * @module
 */
import { status } from '@grpc/grpc-js';
import {
  type FederationRelationship as ApiRelationship,
  GrpcStatusError,
  invalidArgument,
  type TrustDomainServer,
} from '@tessera/common/api';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import type { FederationRelationship } from '../../../datastore/types.js';
import { MAX_PAGE_SIZE } from '../../../datastore/validate.js';
import { type ApiContext, unary } from '../../context.js';
import { errorMessage, mapError, OK_STATUS, statusOf } from '../../convert.js';

function toApi(r: FederationRelationship): ApiRelationship {
  return {
    trustDomain: r.trustDomain,
    bundleEndpointUrl: r.bundleEndpointUrl,
    ...(r.profile === 'https_web'
      ? { httpsWeb: {} }
      : { httpsSpiffe: { endpointSpiffeId: r.endpointSpiffeId ?? '' } }),
    trustDomainBundle: undefined,
  };
}

/** Creates the TrustDomain service implementation. */
export function createTrustDomainService(ctx: ApiContext): TrustDomainServer {
  const parseTd = (field: string, name: string): string => {
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
  const parse = (r: ApiRelationship): FederationRelationship => {
    const trustDomain = parseTd('federation_relationship.trust_domain', r.trustDomain);
    let url: URL;
    try {
      url = new URL(r.bundleEndpointUrl);
    } catch {
      throw invalidArgument(
        'federation_relationship.bundle_endpoint_url',
        `"${r.bundleEndpointUrl}" is not a URL`,
      );
    }
    if (url.protocol !== 'https:')
      throw invalidArgument('federation_relationship.bundle_endpoint_url', 'scheme must be https');
    if (url.username !== '' || url.password !== '') {
      throw invalidArgument('federation_relationship.bundle_endpoint_url', 'must not contain user info');
    }
    if (r.httpsSpiffe !== undefined) {
      let id: SpiffeId;
      try {
        id = SpiffeId.fromString(r.httpsSpiffe.endpointSpiffeId);
      } catch (err) {
        throw invalidArgument(
          'federation_relationship.bundle_endpoint_profile.endpoint_spiffe_id',
          errorMessage(err),
        );
      }
      return {
        trustDomain,
        bundleEndpointUrl: url.toString(),
        profile: 'https_spiffe',
        endpointSpiffeId: id.toString(),
      };
    }
    if (r.httpsWeb !== undefined) {
      return {
        trustDomain,
        bundleEndpointUrl: url.toString(),
        profile: 'https_web',
        endpointSpiffeId: undefined,
      };
    }
    throw invalidArgument('federation_relationship.bundle_endpoint_profile', 'missing profile');
  };

  return {
    listFederationRelationships: unary(ctx, async (req) => {
      if (req.pageSize < 0) throw invalidArgument('page_size', 'must not be negative');
      try {
        const page = await ctx.datastore.listFederationRelationships({
          pagination: {
            token: req.pageToken === '' ? undefined : req.pageToken,
            pageSize: req.pageSize === 0 ? MAX_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE),
          },
        });
        return { federationRelationships: page.items.map(toApi), nextPageToken: page.nextPageToken ?? '' };
      } catch (err) {
        throw mapError(err, 'federation relationships');
      }
    }),

    getFederationRelationship: unary(ctx, async (req) => {
      const td = parseTd('trust_domain', req.trustDomain);
      const r = await ctx.datastore.fetchFederationRelationship(td);
      if (r === undefined)
        throw new GrpcStatusError(status.NOT_FOUND, 'federation relationship does not exist');
      return toApi(r);
    }),

    batchCreateFederationRelationship: unary(ctx, async (req) => {
      const results = [];
      for (const r of req.federationRelationship) {
        try {
          const stored = await ctx.datastore.createFederationRelationship(parse(r));
          results.push({ status: OK_STATUS, federationRelationship: toApi(stored) });
        } catch (err) {
          results.push({
            status: statusOf(mapError(err, 'federation relationship')),
            federationRelationship: undefined,
          });
        }
      }
      return { results };
    }),

    batchUpdateFederationRelationship: unary(ctx, async (req) => {
      const results = [];
      const m = req.inputMask;
      for (const r of req.federationRelationships) {
        try {
          const parsed = parse(r);
          const stored = await ctx.datastore.updateFederationRelationship(parsed, {
            bundleEndpointUrl: m === undefined || m.bundleEndpointUrl,
            profile: m === undefined || m.bundleEndpointProfile,
            endpointSpiffeId: m === undefined || m.bundleEndpointProfile,
          });
          results.push({ status: OK_STATUS, federationRelationship: toApi(stored) });
        } catch (err) {
          results.push({
            status: statusOf(mapError(err, 'federation relationship')),
            federationRelationship: undefined,
          });
        }
      }
      return { results };
    }),

    batchDeleteFederationRelationship: unary(ctx, async (req) => {
      const results = [];
      for (const name of req.trustDomains) {
        try {
          await ctx.datastore.deleteFederationRelationship(parseTd('trust_domains', name));
          results.push({ status: OK_STATUS, trustDomain: name });
        } catch (err) {
          results.push({ status: statusOf(mapError(err, 'federation relationship')), trustDomain: name });
        }
      }
      return { results };
    }),

    refreshBundle: unary(ctx, async (req) => {
      const td = parseTd('trust_domain', req.trustDomain);
      if (ctx.federation === undefined) {
        throw new GrpcStatusError(status.UNAVAILABLE, 'the federation client is not running');
      }
      let found: boolean;
      try {
        found = await ctx.federation.refresh(td);
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new GrpcStatusError(status.INTERNAL, `failed to refresh bundle: ${why}`);
      }
      if (!found) throw new GrpcStatusError(status.NOT_FOUND, `no relationship with trust domain "${td}"`);
      return {};
    }),
  };
}
