/** `tessera-server entry update`: updates registration entries from flags (only the given fields) or a file. @module */
import { BatchUpdateEntryRequest, type Entry, EntryMask } from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { formatEntry, statusText } from '../../format.js';
import { noPositionals } from '../../values.js';
import {
  anyEntryFieldFlag,
  ENTRY_FIELD_FLAGS,
  entryFromFlags,
  parseEntriesDocument,
  readJsonFile,
} from './shared.js';

/** The update request built from the command line (validated, nothing sent yet). */
export async function updateRequest(ctx: CommandContext): Promise<BatchUpdateEntryRequest> {
  noPositionals(ctx);
  const data = ctx.flags.strings.get('data');
  let entries: Entry[];
  let inputMask: EntryMask | undefined;
  if (data !== undefined) {
    const other = anyEntryFieldFlag(ctx);
    if (other !== undefined)
      throw new CliUsageError(`${ctx.name}: --data cannot be combined with --${other}`);
    entries = parseEntriesDocument(ctx.name, await readJsonFile(ctx, 'data', data));
    entries.forEach((e, i) => {
      if (e.id === '') throw new CliUsageError(`${ctx.name}: --data: entries[${i}].id is required to update`);
    });
    // Whole entries replace the stored ones, as SPIRE's `entry update -data`.
    inputMask = undefined;
  } else {
    const { entry, given } = entryFromFlags(ctx);
    if (entry.id === '') throw new CliUsageError(`${ctx.name}: --entry-id is required`);
    if (anyEntryFieldFlag(ctx, ['entry-id']) === undefined) {
      throw new CliUsageError(`${ctx.name}: nothing to update: give at least one field flag`);
    }
    entries = [entry];
    inputMask = EntryMask.fromPartial(given);
  }
  return BatchUpdateEntryRequest.fromPartial(inputMask === undefined ? { entries } : { entries, inputMask });
}

/** The `entry update` command. */
export const entryUpdate: Command = {
  words: ['entry', 'update'],
  summary: 'Updates registration entries (flags change only the fields given)',
  flags: ENTRY_FIELD_FLAGS,
  async run(ctx) {
    const req = await updateRequest(ctx);
    const res = await ctx.clients().entry.batchUpdateEntry(req);
    const failed = res.results.filter((r) => r.status?.code !== 0).length;
    if (ctx.output === 'json') {
      ctx.printJson(res);
    } else {
      res.results.forEach((r, i) => {
        if (r.status?.code === 0 && r.entry !== undefined) {
          ctx.print(`${formatEntry(r.entry)}\n`);
        } else {
          const requested = req.entries[i];
          ctx.io.stderr(
            `Failed to update the following entry ${statusText(r.status)}:\n${requested === undefined ? '' : formatEntry(requested)}\n\n`,
          );
        }
      });
    }
    return failed === 0 ? 0 : 1;
  },
};
