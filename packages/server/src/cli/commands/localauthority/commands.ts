/**
 * `tessera-server localauthority x509|jwt show|prepare|activate|taint|revoke`: inspects and drives the rotation
 * of the server's own signing authorities (e.g. after a key compromise: prepare, activate, taint, revoke).
 *
 * @module
 */
import type { AuthorityState } from '@tessera/common/api';
import type { FlagSpec } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { unixTime } from '../../format.js';
import { noPositionals, requireFlag } from '../../values.js';

type Kind = 'x509' | 'jwt';
const LABEL: Readonly<Record<Kind, string>> = { x509: 'X.509', jwt: 'JWT' };

const AUTHORITY_ID_FLAG: FlagSpec = {
  name: 'authority-id',
  aliases: ['authorityID'],
  kind: 'string',
  description: 'ID of the authority (from `show`)',
  valueName: 'ID',
};

function stateText(title: string, s: AuthorityState | undefined, kind: Kind): string {
  if (s === undefined || s.authorityId === '')
    return `${title}:\n  No ${title.replace(/^\w+/, (w) => w.toLowerCase())} found`;
  const lines = [`${title}:`, `  Authority ID: ${s.authorityId}`, `  Expires at: ${unixTime(s.expiresAt)}`];
  if (kind === 'x509' && s.upstreamAuthoritySubjectKeyId !== '') {
    lines.push(`  Upstream authority Subject Key ID: ${s.upstreamAuthoritySubjectKeyId}`);
  }
  return lines.join('\n');
}

function printState(ctx: CommandContext, title: string, s: AuthorityState | undefined, kind: Kind): void {
  if (ctx.output === 'json') ctx.printJson(s ?? {});
  else ctx.print(stateText(title, s, kind));
}

function show(kind: Kind): Command {
  return {
    words: ['localauthority', kind, 'show'],
    summary: `Shows the active, prepared and old ${LABEL[kind]} authorities`,
    flags: [],
    async run(ctx) {
      noPositionals(ctx);
      const la = ctx.clients().localAuthority;
      const res = kind === 'x509' ? await la.getX509AuthorityState({}) : await la.getJwtAuthorityState({});
      if (ctx.output === 'json') {
        ctx.printJson(res);
        return 0;
      }
      ctx.print(
        [
          stateText(`Active ${LABEL[kind]} authority`, res.active, kind),
          stateText(`Prepared ${LABEL[kind]} authority`, res.prepared, kind),
          stateText(`Old ${LABEL[kind]} authority`, res.old, kind),
        ].join('\n\n'),
      );
      return 0;
    },
  };
}

function prepare(kind: Kind): Command {
  return {
    words: ['localauthority', kind, 'prepare'],
    summary: `Prepares a new ${LABEL[kind]} authority`,
    flags: [],
    async run(ctx) {
      noPositionals(ctx);
      const la = ctx.clients().localAuthority;
      const res = kind === 'x509' ? await la.prepareX509Authority({}) : await la.prepareJwtAuthority({});
      printState(ctx, `Prepared ${LABEL[kind]} authority`, res.preparedAuthority, kind);
      return 0;
    },
  };
}

function withId(
  kind: Kind,
  verb: 'activate' | 'taint' | 'revoke',
  summary: string,
  call: (ctx: CommandContext, authorityId: string) => Promise<AuthorityState | undefined>,
  title: string,
): Command {
  return {
    words: ['localauthority', kind, verb],
    summary,
    flags: [AUTHORITY_ID_FLAG],
    async run(ctx) {
      noPositionals(ctx);
      const id = requireFlag(ctx, 'authority-id');
      printState(ctx, `${title} ${LABEL[kind]} authority`, await call(ctx, id), kind);
      return 0;
    },
  };
}

/** Every `localauthority` command. */
export const localAuthorityCommands: readonly Command[] = [
  show('x509'),
  prepare('x509'),
  withId(
    'x509',
    'activate',
    'Activates the prepared X.509 authority',
    async (ctx, authorityId) =>
      (await ctx.clients().localAuthority.activateX509Authority({ authorityId })).activatedAuthority,
    'Activated',
  ),
  withId(
    'x509',
    'taint',
    'Taints the old X.509 authority (agents rotate away from it)',
    async (ctx, authorityId) =>
      (await ctx.clients().localAuthority.taintX509Authority({ authorityId })).taintedAuthority,
    'Tainted',
  ),
  withId(
    'x509',
    'revoke',
    'Revokes the tainted X.509 authority (removed from the bundle)',
    async (ctx, authorityId) =>
      (await ctx.clients().localAuthority.revokeX509Authority({ authorityId })).revokedAuthority,
    'Revoked',
  ),
  show('jwt'),
  prepare('jwt'),
  withId(
    'jwt',
    'activate',
    'Activates the prepared JWT authority',
    async (ctx, authorityId) =>
      (await ctx.clients().localAuthority.activateJwtAuthority({ authorityId })).activatedAuthority,
    'Activated',
  ),
  withId(
    'jwt',
    'taint',
    'Taints the old JWT authority',
    async (ctx, authorityId) =>
      (await ctx.clients().localAuthority.taintJwtAuthority({ authorityId })).taintedAuthority,
    'Tainted',
  ),
  withId(
    'jwt',
    'revoke',
    'Revokes the tainted JWT authority (removed from the bundle)',
    async (ctx, authorityId) =>
      (await ctx.clients().localAuthority.revokeJwtAuthority({ authorityId })).revokedAuthority,
    'Revoked',
  ),
];
