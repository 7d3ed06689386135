/** `tessera-server entry show`: shows one entry by ID or every entry matching filters. @module */
import {
  type Entry,
  GetEntryRequest,
  ListEntriesRequest,
  ListEntriesRequest_Filter,
} from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command } from '../../context.js';
import { formatEntry } from '../../format.js';
import { noPositionals } from '../../values.js';
import { ENTRY_FILTER_FLAGS, entryFilterFromFlags } from './shared.js';

const PAGE_SIZE = 1000;

/** The `entry show` command. */
export const entryShow: Command = {
  words: ['entry', 'show'],
  summary: 'Shows registration entries',
  flags: [
    {
      name: 'entry-id',
      aliases: ['entryID'],
      kind: 'string',
      description: 'ID of the entry to show',
      valueName: 'ID',
    },
    ...ENTRY_FILTER_FLAGS,
  ],
  async run(ctx) {
    noPositionals(ctx);
    const id = ctx.flags.strings.get('entry-id');
    const filter = entryFilterFromFlags(ctx);
    let entries: Entry[];
    if (id !== undefined) {
      if (id === '') throw new CliUsageError(`${ctx.name}: --entry-id must not be empty`);
      const hasFilter = Object.values(filter).some((v) => v !== undefined);
      if (hasFilter) throw new CliUsageError(`${ctx.name}: --entry-id cannot be combined with filters`);
      entries = [await ctx.clients().entry.getEntry(GetEntryRequest.fromPartial({ id }))];
    } else {
      entries = [];
      let pageToken = '';
      do {
        const res = await ctx.clients().entry.listEntries(
          ListEntriesRequest.fromPartial({
            filter: ListEntriesRequest_Filter.fromPartial(filter),
            pageSize: PAGE_SIZE,
            pageToken,
          }),
        );
        entries.push(...res.entries);
        pageToken = res.nextPageToken;
      } while (pageToken !== '');
    }
    if (ctx.output === 'json') {
      ctx.printJson({ entries });
      return 0;
    }
    ctx.print(`Found ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`);
    for (const e of entries) ctx.print(`${formatEntry(e)}\n`);
    return 0;
  },
};
