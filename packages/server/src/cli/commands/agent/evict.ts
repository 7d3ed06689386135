/** `tessera-server agent evict`: deletes an attested agent so it must attest again. @module */
import { DeleteAgentRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { idText, noPositionals } from '../../values.js';
import { AGENT_ID_FLAG, agentIdFromFlags } from './shared.js';

/** The `agent evict` command. */
export const agentEvict: Command = {
  words: ['agent', 'evict'],
  summary: 'Evicts an attested agent (it must attest again)',
  flags: [AGENT_ID_FLAG],
  async run(ctx) {
    noPositionals(ctx);
    const id = agentIdFromFlags(ctx);
    await ctx.clients().agent.deleteAgent(DeleteAgentRequest.fromPartial({ id }));
    if (ctx.output === 'json') ctx.printJson({});
    else ctx.print(`Agent evicted successfully: ${idText(id)}`);
    return 0;
  },
};
