/** `tessera-server federation delete`: deletes a federation relationship. @module */
import { BatchDeleteFederationRelationshipRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { statusText } from '../../format.js';
import { noPositionals, parseTrustDomainValue, requireFlag } from '../../values.js';
import { RELATIONSHIP_ID_FLAG } from './shared.js';

/** The `federation delete` command. */
export const federationDelete: Command = {
  words: ['federation', 'delete'],
  summary: 'Deletes a federation relationship',
  flags: [RELATIONSHIP_ID_FLAG],
  async run(ctx) {
    noPositionals(ctx);
    const td = parseTrustDomainValue(ctx.name, 'id', requireFlag(ctx, 'id'));
    const res = await ctx
      .clients()
      .trustDomain.batchDeleteFederationRelationship(
        BatchDeleteFederationRelationshipRequest.fromPartial({ trustDomains: [td] }),
      );
    const r = res.results[0];
    const ok = r !== undefined && r.status?.code === 0;
    if (ctx.output === 'json') ctx.printJson(res);
    else if (ok) ctx.print('Federation relationship deleted successfully');
    else ctx.io.stderr(`Failed to delete the federation relationship ${statusText(r?.status)}\n`);
    return ok ? 0 : 1;
  },
};
