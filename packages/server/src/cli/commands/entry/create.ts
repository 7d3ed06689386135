/** `tessera-server entry create`: creates registration entries from flags or a `--data` file. @module */
import { BatchCreateEntryRequest, type Entry } from '@tessera/common/api';
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

/** Builds the entries to create, from `--data` or the field flags (validated, nothing sent yet). */
export async function entriesToCreate(ctx: CommandContext): Promise<Entry[]> {
  noPositionals(ctx);
  const data = ctx.flags.strings.get('data');
  if (data !== undefined) {
    const other = anyEntryFieldFlag(ctx);
    if (other !== undefined)
      throw new CliUsageError(`${ctx.name}: --data cannot be combined with --${other}`);
    return parseEntriesDocument(ctx.name, await readJsonFile(ctx, 'data', data));
  }
  const { entry } = entryFromFlags(ctx);
  if (entry.spiffeId === undefined) throw new CliUsageError(`${ctx.name}: --spiffe-id is required`);
  if (entry.parentId === undefined) throw new CliUsageError(`${ctx.name}: --parent-id or --node is required`);
  if (entry.selectors.length === 0)
    throw new CliUsageError(`${ctx.name}: at least one --selector is required`);
  return [entry];
}

/** The `entry create` command. */
export const entryCreate: Command = {
  words: ['entry', 'create'],
  summary: 'Creates registration entries',
  flags: ENTRY_FIELD_FLAGS,
  async run(ctx) {
    const entries = await entriesToCreate(ctx);
    const res = await ctx.clients().entry.batchCreateEntry(BatchCreateEntryRequest.fromPartial({ entries }));
    const failed = res.results.filter((r) => r.status?.code !== 0).length;
    if (ctx.output === 'json') {
      ctx.printJson(res);
    } else {
      res.results.forEach((r, i) => {
        if (r.status?.code === 0 && r.entry !== undefined) {
          ctx.print(`${formatEntry(r.entry)}\n`);
        } else {
          const requested = entries[i];
          ctx.io.stderr(
            `Failed to create the following entry ${statusText(r.status)}:\n${requested === undefined ? '' : formatEntry(requested)}\n\n`,
          );
        }
      });
    }
    return failed === 0 ? 0 : 1;
  },
};
