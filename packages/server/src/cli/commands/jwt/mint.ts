/** `tessera-server jwt mint`: mints a JWT-SVID for any SPIFFE ID of the trust domain (admin). @module */
import { resolve } from 'node:path';
import { MintJWTSVIDRequest } from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { noPositionals, parseIdValue, parseTtlValue, requireFlag } from '../../values.js';
import { writeFileAtomic } from '../x509/mint.js';

/** The request built from the command line (validated, nothing sent yet). */
export function mintJwtRequest(ctx: CommandContext): MintJWTSVIDRequest {
  noPositionals(ctx);
  const id = parseIdValue(ctx.name, 'spiffe-id', requireFlag(ctx, 'spiffe-id'));
  const audience = [...(ctx.flags.lists.get('audience') ?? [])];
  if (audience.length === 0) throw new CliUsageError(`${ctx.name}: at least one --audience is required`);
  if (audience.some((a) => a === '')) throw new CliUsageError(`${ctx.name}: --audience must not be empty`);
  const ttlText = ctx.flags.strings.get('ttl');
  const ttl = ttlText === undefined ? 0 : parseTtlValue(ctx.name, 'ttl', ttlText);
  return MintJWTSVIDRequest.fromPartial({ id, audience, ttl });
}

/** The `jwt mint` command. */
export const jwtMint: Command = {
  words: ['jwt', 'mint'],
  summary: 'Mints a JWT-SVID',
  flags: [
    {
      name: 'spiffe-id',
      aliases: ['spiffeID'],
      kind: 'string',
      description: 'SPIFFE ID of the JWT-SVID',
      valueName: 'ID',
    },
    {
      name: 'audience',
      aliases: ['aud'],
      kind: 'strings',
      description: 'audience of the token',
      valueName: 'AUD',
    },
    {
      name: 'ttl',
      kind: 'string',
      description: 'lifetime (default: the server default JWT-SVID TTL)',
      valueName: 'TTL',
    },
    {
      name: 'write',
      kind: 'string',
      description: 'file to write the token to (0600) instead of standard output',
      valueName: 'FILE',
    },
  ],
  async run(ctx) {
    const req = mintJwtRequest(ctx);
    const write = ctx.flags.strings.get('write');
    const res = await ctx.clients().svid.mintJwtsvid(req);
    const token = res.svid?.token ?? '';
    if (token === '') throw new Error('jwt mint: the server returned no token');
    if (write !== undefined) {
      const path = resolve(ctx.io.cwd, write);
      await writeFileAtomic(path, `${token}\n`, 0o600);
      if (ctx.output === 'json') ctx.printJson({ expires_at: res.svid?.expiresAt ?? 0n, file: path });
      else ctx.print(`JWT-SVID written to ${path}`);
      return 0;
    }
    if (ctx.output === 'json') ctx.printJson(res);
    else ctx.print(token);
    return 0;
  },
};
