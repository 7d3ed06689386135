/** `tessera-server token generate`: creates a single-use join token. @module */
import { CreateJoinTokenRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals, parseIdValue, parseTtlValue } from '../../values.js';

const DEFAULT_TTL_SECONDS = 600;

/** The request built from the command line (validated, nothing sent yet). */
export function joinTokenRequest(ctx: Parameters<Command['run']>[0]): CreateJoinTokenRequest {
  noPositionals(ctx);
  const ttlText = ctx.flags.strings.get('ttl');
  const ttl = ttlText === undefined ? DEFAULT_TTL_SECONDS : parseTtlValue(ctx.name, 'ttl', ttlText, 1);
  const id = ctx.flags.strings.get('spiffe-id');
  return CreateJoinTokenRequest.fromPartial(
    id === undefined ? { ttl } : { ttl, agentId: parseIdValue(ctx.name, 'spiffe-id', id) },
  );
}

/** The `token generate` command. */
export const tokenGenerate: Command = {
  words: ['token', 'generate'],
  summary: 'Generates a single-use join token for agent attestation',
  flags: [
    {
      name: 'spiffe-id',
      aliases: ['spiffeID'],
      kind: 'string',
      description: 'SPIFFE ID given as an alias to the agent that uses the token',
      valueName: 'ID',
    },
    {
      name: 'ttl',
      kind: 'string',
      description: `lifetime of the token (default ${DEFAULT_TTL_SECONDS}s)`,
      valueName: 'TTL',
    },
  ],
  async run(ctx) {
    const req = joinTokenRequest(ctx);
    const token = await ctx.clients().agent.createJoinToken(req);
    if (ctx.output === 'json') ctx.printJson(token);
    else ctx.print(`Token: ${token.value}`);
    return 0;
  },
};
