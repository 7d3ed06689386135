/** `tessera-server federation refresh`: fetches a federated trust domain's bundle from its endpoint now. @module */
import { RefreshBundleRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals, parseTrustDomainValue, requireFlag } from '../../values.js';
import { RELATIONSHIP_ID_FLAG } from './shared.js';

/** The `federation refresh` command. */
export const federationRefresh: Command = {
  words: ['federation', 'refresh'],
  summary: "Fetches a federated trust domain's bundle from its bundle endpoint now",
  flags: [RELATIONSHIP_ID_FLAG],
  async run(ctx) {
    noPositionals(ctx);
    const td = parseTrustDomainValue(ctx.name, 'id', requireFlag(ctx, 'id'));
    await ctx.clients().trustDomain.refreshBundle(RefreshBundleRequest.fromPartial({ trustDomain: td }));
    if (ctx.output === 'json') ctx.printJson({});
    else ctx.print('Bundle refreshed');
    return 0;
  },
};
