/** `tessera-server federation show`: shows one federation relationship. @module */
import { GetFederationRelationshipRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { formatFederation } from '../../format.js';
import { noPositionals, parseTrustDomainValue, requireFlag } from '../../values.js';

/** The `federation show` command. */
export const federationShow: Command = {
  words: ['federation', 'show'],
  summary: 'Shows a federation relationship',
  flags: [
    {
      name: 'trust-domain',
      aliases: ['trustDomain', 'id'],
      kind: 'string',
      description: 'trust domain of the relationship',
      valueName: 'TD',
    },
  ],
  async run(ctx) {
    noPositionals(ctx);
    const trustDomain = parseTrustDomainValue(ctx.name, 'trust-domain', requireFlag(ctx, 'trust-domain'));
    const rel = await ctx
      .clients()
      .trustDomain.getFederationRelationship(GetFederationRelationshipRequest.fromPartial({ trustDomain }));
    if (ctx.output === 'json') ctx.printJson(rel);
    else ctx.print(`${formatFederation(rel)}\n`);
    return 0;
  },
};
