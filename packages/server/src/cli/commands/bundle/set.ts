/** `tessera-server bundle set`: creates or replaces a federated bundle. @module */
import { BatchSetFederatedBundleRequest } from '@tessera/common/api';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { statusText } from '../../format.js';
import { noPositionals, parseTrustDomainValue, requireFlag } from '../../values.js';
import { FORMAT_FLAG, formatFromFlags, readBundle, readStdin } from './shared.js';

/** The request built from the command line (validated, nothing sent yet). */
export async function setBundleRequest(
  ctx: CommandContext,
  stdin: () => Promise<Buffer> = readStdin,
): Promise<BatchSetFederatedBundleRequest> {
  noPositionals(ctx);
  const td = parseTrustDomainValue(ctx.name, 'id', requireFlag(ctx, 'id'));
  const format = formatFromFlags(ctx);
  const bundle = await readBundle(ctx, 'path', ctx.flags.strings.get('path') ?? '-', td, format, stdin);
  return BatchSetFederatedBundleRequest.fromPartial({ bundle: [bundle] });
}

/** The `bundle set` command. */
export const bundleSet: Command = {
  words: ['bundle', 'set'],
  summary: 'Creates or replaces the bundle of a federated trust domain',
  flags: [
    { name: 'id', kind: 'string', description: 'trust domain of the bundle', valueName: 'TD' },
    { name: 'path', kind: 'string', description: 'bundle file (default: standard input)', valueName: 'FILE' },
    FORMAT_FLAG,
  ],
  async run(ctx) {
    const req = await setBundleRequest(ctx);
    const res = await ctx.clients().bundle.batchSetFederatedBundle(req);
    const r = res.results[0];
    if (r === undefined) throw new CliUsageError(`${ctx.name}: the server returned no result`);
    if (ctx.output === 'json') ctx.printJson(res);
    else if (r.status?.code === 0) ctx.print('Bundle set successfully');
    else ctx.io.stderr(`Failed to set the bundle ${statusText(r.status)}\n`);
    return r.status?.code === 0 ? 0 : 1;
  },
};
