/** `tessera-server federation list`: lists federation relationships. @module */
import { type FederationRelationship, ListFederationRelationshipsRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { formatFederation } from '../../format.js';
import { noPositionals } from '../../values.js';

/** The `federation list` command. */
export const federationList: Command = {
  words: ['federation', 'list'],
  summary: 'Lists federation relationships',
  flags: [],
  async run(ctx) {
    noPositionals(ctx);
    const rels: FederationRelationship[] = [];
    let pageToken = '';
    do {
      const res = await ctx
        .clients()
        .trustDomain.listFederationRelationships(
          ListFederationRelationshipsRequest.fromPartial({ pageSize: 1000, pageToken }),
        );
      rels.push(...res.federationRelationships);
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
    if (ctx.output === 'json') {
      ctx.printJson({ federation_relationships: rels });
      return 0;
    }
    ctx.print(`Found ${rels.length} federation ${rels.length === 1 ? 'relationship' : 'relationships'}\n`);
    for (const r of rels) ctx.print(`${formatFederation(r)}\n`);
    return 0;
  },
};
