/** Flags and filters shared by the `agent` commands. @module */
import {
  ListAgentsRequest_Filter,
  SelectorMatch,
  SelectorMatch_MatchBehavior,
  type SPIFFEID,
} from '@tessera/common/api';
import { CliUsageError, type FlagSpec } from '../../args.js';
import type { CommandContext } from '../../context.js';
import { parseEnumValue, parseIdValue, parseSelectorValue, requireFlag } from '../../values.js';

/** The `--spiffe-id` flag naming one agent. */
export const AGENT_ID_FLAG: FlagSpec = {
  name: 'spiffe-id',
  aliases: ['spiffeID'],
  kind: 'string',
  description: 'SPIFFE ID of the agent',
  valueName: 'ID',
};

/** The agent ID given with `--spiffe-id` (required). */
export function agentIdFromFlags(ctx: CommandContext): SPIFFEID {
  return parseIdValue(ctx.name, 'spiffe-id', requireFlag(ctx, 'spiffe-id'));
}

/** Filter flags of `agent list` and `agent count`. */
export const AGENT_FILTER_FLAGS: readonly FlagSpec[] = [
  { name: 'selector', kind: 'strings', description: 'selector "type:value" to match', valueName: 'SELECTOR' },
  {
    name: 'match',
    aliases: ['matchSelectorsOn'],
    kind: 'string',
    description: 'selector match: exact, subset, superset (default) or any',
    valueName: 'MODE',
  },
  {
    name: 'attestation-type',
    aliases: ['attestationType'],
    kind: 'string',
    description: 'only agents attested with this method',
    valueName: 'TYPE',
  },
  {
    name: 'banned',
    kind: 'bool',
    description: 'only banned agents (--banned=false: only agents not banned)',
  },
  {
    name: 'can-reattest',
    aliases: ['canReattest'],
    kind: 'bool',
    description: 'only agents that can (or, =false, cannot) re-attest',
  },
  {
    name: 'expires-before',
    aliases: ['expiresBefore'],
    kind: 'string',
    description: 'only agents whose SVID expires before this RFC 3339 time',
    valueName: 'TIME',
  },
];

const MATCH = {
  exact: SelectorMatch_MatchBehavior.MATCH_EXACT,
  subset: SelectorMatch_MatchBehavior.MATCH_SUBSET,
  superset: SelectorMatch_MatchBehavior.MATCH_SUPERSET,
  any: SelectorMatch_MatchBehavior.MATCH_ANY,
} as const;

/** Builds the agent filter (ListAgents and CountAgents filters have the same fields). */
export function agentFilterFromFlags(ctx: CommandContext): ListAgentsRequest_Filter {
  const f = ctx.flags;
  const filter: Partial<ListAgentsRequest_Filter> = {};
  const selectors = f.lists.get('selector');
  const match = f.strings.get('match');
  if (selectors !== undefined) {
    const mode = parseEnumValue(
      ctx.name,
      'match',
      match ?? 'superset',
      Object.keys(MATCH) as (keyof typeof MATCH)[],
    );
    filter.bySelectorMatch = SelectorMatch.fromPartial({
      selectors: selectors.map((s) => parseSelectorValue(ctx.name, s)),
      match: MATCH[mode],
    });
  } else if (match !== undefined) {
    throw new CliUsageError(`${ctx.name}: --match needs at least one --selector`);
  }
  const type = f.strings.get('attestation-type');
  if (type !== undefined) filter.byAttestationType = type;
  const banned = f.bools.get('banned');
  if (banned !== undefined) filter.byBanned = banned;
  const reattest = f.bools.get('can-reattest');
  if (reattest !== undefined) filter.byCanReattest = reattest;
  const before = f.strings.get('expires-before');
  if (before !== undefined) {
    if (Number.isNaN(Date.parse(before)) || !/^\d{4}-\d{2}-\d{2}T/.test(before)) {
      throw new CliUsageError(
        `${ctx.name}: invalid --expires-before ${JSON.stringify(before)}: must be an RFC 3339 time`,
      );
    }
    filter.byExpiresBefore = before;
  }
  return ListAgentsRequest_Filter.fromPartial(filter);
}
