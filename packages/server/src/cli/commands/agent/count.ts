/** `tessera-server agent count`: counts attested agents. @module */
import { CountAgentsRequest, CountAgentsRequest_Filter } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals } from '../../values.js';
import { AGENT_FILTER_FLAGS, agentFilterFromFlags } from './shared.js';

/** The `agent count` command. */
export const agentCount: Command = {
  words: ['agent', 'count'],
  summary: 'Counts attested agents',
  flags: AGENT_FILTER_FLAGS,
  async run(ctx) {
    noPositionals(ctx);
    const filter = CountAgentsRequest_Filter.fromPartial(agentFilterFromFlags(ctx));
    const { count } = await ctx.clients().agent.countAgents(CountAgentsRequest.fromPartial({ filter }));
    if (ctx.output === 'json') ctx.printJson({ count });
    else ctx.print(`${count} attested ${count === 1 ? 'agent' : 'agents'}`);
    return 0;
  },
};
