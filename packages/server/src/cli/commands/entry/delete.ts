/** `tessera-server entry delete`: deletes registration entries by ID. @module */
import { BatchDeleteEntryRequest } from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { statusText } from '../../format.js';
import { noPositionals } from '../../values.js';
import { readJsonFile } from './shared.js';

/** The IDs to delete, from `--entry-id` (repeatable) or a `--data` file `{"ids": [...]}`. */
export async function idsToDelete(ctx: CommandContext): Promise<string[]> {
  noPositionals(ctx);
  const ids = [...(ctx.flags.lists.get('entry-id') ?? [])];
  const data = ctx.flags.strings.get('data');
  if (data !== undefined) {
    if (ids.length > 0) throw new CliUsageError(`${ctx.name}: --data cannot be combined with --entry-id`);
    const doc = await readJsonFile(ctx, 'data', data);
    const list = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? doc.ids : undefined;
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && x !== '')) {
      throw new CliUsageError(`${ctx.name}: --data: ids must be a non-empty array of entry IDs`);
    }
    return list as string[];
  }
  if (ids.length === 0) throw new CliUsageError(`${ctx.name}: --entry-id is required`);
  if (ids.some((id) => id === '')) throw new CliUsageError(`${ctx.name}: --entry-id must not be empty`);
  return ids;
}

/** The `entry delete` command. */
export const entryDelete: Command = {
  words: ['entry', 'delete'],
  summary: 'Deletes registration entries',
  flags: [
    {
      name: 'entry-id',
      aliases: ['entryID'],
      kind: 'strings',
      description: 'ID of an entry to delete',
      valueName: 'ID',
    },
    {
      name: 'data',
      aliases: ['file'],
      kind: 'string',
      description: 'JSON file {"ids": [...]}',
      valueName: 'FILE',
    },
  ],
  async run(ctx) {
    const ids = await idsToDelete(ctx);
    const res = await ctx.clients().entry.batchDeleteEntry(BatchDeleteEntryRequest.fromPartial({ ids }));
    const failed = res.results.filter((r) => r.status?.code !== 0).length;
    if (ctx.output === 'json') {
      ctx.printJson(res);
    } else {
      for (const r of res.results) {
        if (r.status?.code === 0) ctx.print(`Deleted entry with ID: ${r.id}`);
        else ctx.io.stderr(`Failed to delete entry with ID ${r.id} ${statusText(r.status)}\n`);
      }
    }
    return failed === 0 ? 0 : 1;
  },
};
