/** `tessera-server federation create`: creates a federation relationship. @module */
import { BatchCreateFederationRelationshipRequest } from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { formatFederation, statusText } from '../../format.js';
import { noPositionals } from '../../values.js';
import { RELATIONSHIP_FLAGS, relationshipFromFlags } from './shared.js';

/** The request built from the command line (validated, nothing sent yet). */
export async function createFederationRequest(
  ctx: CommandContext,
): Promise<BatchCreateFederationRelationshipRequest> {
  noPositionals(ctx);
  const { relationship, mask } = await relationshipFromFlags(ctx);
  if (!mask.bundleEndpointUrl) throw new CliUsageError(`${ctx.name}: --bundle-endpoint-url is required`);
  if (!mask.bundleEndpointProfile)
    throw new CliUsageError(`${ctx.name}: --bundle-endpoint-profile is required`);
  return BatchCreateFederationRelationshipRequest.fromPartial({ federationRelationship: [relationship] });
}

/** The `federation create` command. */
export const federationCreate: Command = {
  words: ['federation', 'create'],
  summary: 'Creates a federation relationship with a foreign trust domain',
  flags: RELATIONSHIP_FLAGS,
  async run(ctx) {
    const req = await createFederationRequest(ctx);
    const res = await ctx.clients().trustDomain.batchCreateFederationRelationship(req);
    const r = res.results[0];
    const ok = r !== undefined && r.status?.code === 0;
    if (ctx.output === 'json') ctx.printJson(res);
    else if (ok && r.federationRelationship !== undefined)
      ctx.print(`${formatFederation(r.federationRelationship)}\n`);
    else ctx.io.stderr(`Failed to create the federation relationship ${statusText(r?.status)}\n`);
    return ok ? 0 : 1;
  },
};
