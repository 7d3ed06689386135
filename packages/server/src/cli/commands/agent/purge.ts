/** `tessera-server agent purge`: evicts agents whose SVID expired long ago. @module */
import {
  type Agent,
  DeleteAgentRequest,
  ListAgentsRequest,
  ListAgentsRequest_Filter,
} from '@tessera/common/api';
import type { Command } from '../../context.js';
import { formatAgent, grpcFailureText, isGrpcFailure } from '../../format.js';
import { idText, noPositionals, parseTtlValue } from '../../values.js';

const DEFAULT_EXPIRED_FOR = '720h';

/** The `agent purge` command. */
export const agentPurge: Command = {
  words: ['agent', 'purge'],
  summary: 'Evicts agents whose SVID expired more than --expired-for ago',
  flags: [
    {
      name: 'expired-for',
      aliases: ['expiredFor'],
      kind: 'string',
      description: `how long ago the SVID must have expired (default ${DEFAULT_EXPIRED_FOR})`,
      valueName: 'DURATION',
    },
    {
      name: 'dry-run',
      aliases: ['dryRun'],
      kind: 'bool',
      description: 'only list the agents that would be purged',
    },
  ],
  async run(ctx) {
    noPositionals(ctx);
    const expiredFor = parseTtlValue(
      ctx.name,
      'expired-for',
      ctx.flags.strings.get('expired-for') ?? DEFAULT_EXPIRED_FOR,
      1,
    );
    const dryRun = ctx.flags.bools.get('dry-run') === true;
    const before = new Date(ctx.now().getTime() - expiredFor * 1000).toISOString();
    const filter = ListAgentsRequest_Filter.fromPartial({ byExpiresBefore: before });
    const agents: Agent[] = [];
    let pageToken = '';
    do {
      const res = await ctx
        .clients()
        .agent.listAgents(ListAgentsRequest.fromPartial({ filter, pageSize: 1000, pageToken }));
      agents.push(...res.agents);
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
    const purged: string[] = [];
    const failures: { id: string; error: string }[] = [];
    if (!dryRun) {
      for (const a of agents) {
        try {
          await ctx.clients().agent.deleteAgent(DeleteAgentRequest.fromPartial({ id: a.id }));
          purged.push(idText(a.id));
        } catch (err) {
          failures.push({
            id: idText(a.id),
            error: isGrpcFailure(err) ? grpcFailureText(err, ctx.socketPath) : String(err),
          });
        }
      }
    }
    if (ctx.output === 'json') {
      ctx.printJson({
        expired_before: before,
        dry_run: dryRun,
        agents: dryRun ? agents.map((a) => idText(a.id)) : purged,
        failures,
      });
    } else if (agents.length === 0) {
      ctx.print('No agents to purge');
    } else if (dryRun) {
      ctx.print(
        `Found ${agents.length} expired ${agents.length === 1 ? 'agent' : 'agents'} (dry run, nothing purged):\n`,
      );
      for (const a of agents) ctx.print(`${formatAgent(a)}\n`);
    } else {
      ctx.print(
        `Purged ${purged.length} of ${agents.length} expired ${agents.length === 1 ? 'agent' : 'agents'}`,
      );
      for (const id of purged) ctx.print(`  ${id}`);
      for (const f of failures) ctx.io.stderr(`Failed to purge ${f.id}: ${f.error}\n`);
    }
    return failures.length === 0 ? 0 : 1;
  },
};
