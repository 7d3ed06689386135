/** `tessera-server bundle count`: counts bundles (this trust domain's and federated ones). @module */
import { CountBundlesRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals } from '../../values.js';

/** The `bundle count` command. */
export const bundleCount: Command = {
  words: ['bundle', 'count'],
  summary: 'Counts bundles',
  flags: [],
  async run(ctx) {
    noPositionals(ctx);
    const { count } = await ctx.clients().bundle.countBundles(CountBundlesRequest.fromPartial({}));
    if (ctx.output === 'json') ctx.printJson({ count });
    else ctx.print(`${count} ${count === 1 ? 'bundle' : 'bundles'}`);
    return 0;
  },
};
