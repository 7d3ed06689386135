/** `tessera-server agent ban`: bans an agent (its SVID stops working at once; it cannot re-attest). @module */
import { BanAgentRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { idText, noPositionals } from '../../values.js';
import { AGENT_ID_FLAG, agentIdFromFlags } from './shared.js';

/** The `agent ban` command. */
export const agentBan: Command = {
  words: ['agent', 'ban'],
  summary: 'Bans an attested agent',
  flags: [AGENT_ID_FLAG],
  async run(ctx) {
    noPositionals(ctx);
    const id = agentIdFromFlags(ctx);
    await ctx.clients().agent.banAgent(BanAgentRequest.fromPartial({ id }));
    if (ctx.output === 'json') ctx.printJson({});
    else ctx.print(`Agent banned successfully: ${idText(id)}`);
    return 0;
  },
};
