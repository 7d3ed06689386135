/** `tessera-server entry count`: counts registration entries matching filters. @module */
import { CountEntriesRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals } from '../../values.js';
import { ENTRY_FILTER_FLAGS, entryFilterFromFlags } from './shared.js';

/** The `entry count` command. */
export const entryCount: Command = {
  words: ['entry', 'count'],
  summary: 'Counts registration entries',
  flags: ENTRY_FILTER_FLAGS,
  async run(ctx) {
    noPositionals(ctx);
    const filter = entryFilterFromFlags(ctx);
    const { count } = await ctx.clients().entry.countEntries(CountEntriesRequest.fromPartial({ filter }));
    if (ctx.output === 'json') ctx.printJson({ count });
    else ctx.print(`${count} registration ${count === 1 ? 'entry' : 'entries'}`);
    return 0;
  },
};
