/** `tessera-server bundle show`: prints this trust domain's bundle. @module */
import { GetBundleRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals } from '../../values.js';
import { FORMAT_FLAG, formatFromFlags, renderBundle } from './shared.js';

/** The `bundle show` command. */
export const bundleShow: Command = {
  words: ['bundle', 'show'],
  summary: "Prints the server's trust bundle (PEM, or --format spiffe)",
  flags: [FORMAT_FLAG],
  async run(ctx) {
    noPositionals(ctx);
    const format = formatFromFlags(ctx);
    const bundle = await ctx.clients().bundle.getBundle(GetBundleRequest.fromPartial({}));
    if (ctx.output === 'json') ctx.printJson(bundle);
    else ctx.io.stdout(renderBundle(bundle, format));
    return 0;
  },
};
