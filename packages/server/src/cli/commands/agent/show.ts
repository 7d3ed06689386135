/** `tessera-server agent show`: shows one attested agent. @module */
import { GetAgentRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { formatAgent } from '../../format.js';
import { noPositionals } from '../../values.js';
import { AGENT_ID_FLAG, agentIdFromFlags } from './shared.js';

/** The `agent show` command. */
export const agentShow: Command = {
  words: ['agent', 'show'],
  summary: 'Shows the details of an attested agent',
  flags: [AGENT_ID_FLAG],
  async run(ctx) {
    noPositionals(ctx);
    const id = agentIdFromFlags(ctx);
    const agent = await ctx.clients().agent.getAgent(GetAgentRequest.fromPartial({ id }));
    if (ctx.output === 'json') ctx.printJson(agent);
    else ctx.print(`Found an attested agent given its SPIFFE ID\n\n${formatAgent(agent)}`);
    return 0;
  },
};
