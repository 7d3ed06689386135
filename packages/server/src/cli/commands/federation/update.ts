/** `tessera-server federation update`: updates a federation relationship (only the fields given). @module */
import { BatchUpdateFederationRelationshipRequest } from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { formatFederation, statusText } from '../../format.js';
import { noPositionals } from '../../values.js';
import { RELATIONSHIP_FLAGS, relationshipFromFlags } from './shared.js';

/** The request built from the command line (validated, nothing sent yet). */
export async function updateFederationRequest(
  ctx: CommandContext,
): Promise<BatchUpdateFederationRelationshipRequest> {
  noPositionals(ctx);
  const { relationship, mask } = await relationshipFromFlags(ctx);
  if (!mask.bundleEndpointUrl && !mask.bundleEndpointProfile && !mask.trustDomainBundle) {
    throw new CliUsageError(`${ctx.name}: nothing to update: give at least one field flag`);
  }
  return BatchUpdateFederationRelationshipRequest.fromPartial({
    federationRelationships: [relationship],
    inputMask: mask,
  });
}

/** The `federation update` command. */
export const federationUpdate: Command = {
  words: ['federation', 'update'],
  summary: 'Updates a federation relationship',
  flags: RELATIONSHIP_FLAGS,
  async run(ctx) {
    const req = await updateFederationRequest(ctx);
    const res = await ctx.clients().trustDomain.batchUpdateFederationRelationship(req);
    const r = res.results[0];
    const ok = r !== undefined && r.status?.code === 0;
    if (ctx.output === 'json') ctx.printJson(res);
    else if (ok && r.federationRelationship !== undefined)
      ctx.print(`${formatFederation(r.federationRelationship)}\n`);
    else ctx.io.stderr(`Failed to update the federation relationship ${statusText(r?.status)}\n`);
    return ok ? 0 : 1;
  },
};
