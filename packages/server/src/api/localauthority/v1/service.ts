/**
 * The LocalAuthority service (`spire.api.server.localauthority.v1.LocalAuthority`): show, prepare, activate,
 * taint and revoke the X.509 and JWT authorities through the CA manager.
 *
 * @module
 */
import { status } from '@grpc/grpc-js';
import {
  type AuthorityState,
  GrpcStatusError,
  invalidArgument,
  type LocalAuthorityServer,
} from '@tessera/common/api';
import type { AuthorityInfo, AuthorityKind } from '../../../ca/ca-manager.js';
import { type ApiContext, unary } from '../../context.js';
import { mapError } from '../../convert.js';

function stateOf(a: AuthorityInfo | undefined): AuthorityState | undefined {
  if (a === undefined) return undefined;
  return {
    authorityId: a.authorityId,
    expiresAt: BigInt(Math.floor(a.notAfter.getTime() / 1000)),
    upstreamAuthoritySubjectKeyId: a.upstreamAuthorityId ?? '',
  };
}

/** Creates the LocalAuthority service implementation. */
export function createLocalAuthorityService(ctx: ApiContext): LocalAuthorityServer {
  const show = (kind: AuthorityKind) => {
    const s = ctx.ca.showAuthorities(kind);
    return { active: stateOf(s.active), prepared: stateOf(s.prepared), old: stateOf(s.old[0]) };
  };
  const op = async (kind: AuthorityKind, verb: 'activate' | 'taint' | 'revoke', id: string) => {
    if (id === '') throw invalidArgument('authority_id', 'no authority ID provided');
    try {
      if (verb === 'activate') return stateOf(await ctx.ca.activateAuthority(kind, id));
      if (verb === 'taint') return stateOf(await ctx.ca.taintAuthority(kind, id));
      return stateOf(await ctx.ca.revokeAuthority(kind, id));
    } catch (err) {
      throw mapError(err, 'authority');
    }
  };
  const prepare = async (kind: AuthorityKind) => {
    try {
      return stateOf(await ctx.ca.prepareAuthority(kind));
    } catch (err) {
      throw mapError(err, 'authority');
    }
  };
  const upstream = async (): Promise<never> => {
    throw new GrpcStatusError(status.UNIMPLEMENTED, 'upstream authority taint/revoke is not supported');
  };
  return {
    getJwtAuthorityState: unary(ctx, async () => show('jwt')),
    prepareJwtAuthority: unary(ctx, async () => ({ preparedAuthority: await prepare('jwt') })),
    activateJwtAuthority: unary(ctx, async (req) => ({
      activatedAuthority: await op('jwt', 'activate', req.authorityId),
    })),
    taintJwtAuthority: unary(ctx, async (req) => ({
      taintedAuthority: await op('jwt', 'taint', req.authorityId),
    })),
    revokeJwtAuthority: unary(ctx, async (req) => ({
      revokedAuthority: await op('jwt', 'revoke', req.authorityId),
    })),
    getX509AuthorityState: unary(ctx, async () => show('x509')),
    prepareX509Authority: unary(ctx, async () => ({ preparedAuthority: await prepare('x509') })),
    activateX509Authority: unary(ctx, async (req) => ({
      activatedAuthority: await op('x509', 'activate', req.authorityId),
    })),
    taintX509Authority: unary(ctx, async (req) => ({
      taintedAuthority: await op('x509', 'taint', req.authorityId),
    })),
    taintX509UpstreamAuthority: unary(ctx, upstream),
    revokeX509Authority: unary(ctx, async (req) => ({
      revokedAuthority: await op('x509', 'revoke', req.authorityId),
    })),
    revokeX509UpstreamAuthority: unary(ctx, upstream),
  };
}
