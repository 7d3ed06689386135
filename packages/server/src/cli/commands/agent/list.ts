/** `tessera-server agent list`: lists attested agents. @module */
import { type Agent, ListAgentsRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { formatAgent } from '../../format.js';
import { noPositionals } from '../../values.js';
import { AGENT_FILTER_FLAGS, agentFilterFromFlags } from './shared.js';

/** The `agent list` command. */
export const agentList: Command = {
  words: ['agent', 'list'],
  summary: 'Lists attested agents',
  flags: AGENT_FILTER_FLAGS,
  async run(ctx) {
    noPositionals(ctx);
    const filter = agentFilterFromFlags(ctx);
    const agents: Agent[] = [];
    let pageToken = '';
    do {
      const res = await ctx
        .clients()
        .agent.listAgents(ListAgentsRequest.fromPartial({ filter, pageSize: 1000, pageToken }));
      agents.push(...res.agents);
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
    if (ctx.output === 'json') {
      ctx.printJson({ agents });
      return 0;
    }
    ctx.print(
      agents.length === 0
        ? 'No attested agents found'
        : `Found ${agents.length} attested ${agents.length === 1 ? 'agent' : 'agents'}:\n`,
    );
    for (const a of agents) ctx.print(`${formatAgent(a)}\n`);
    return 0;
  },
};
