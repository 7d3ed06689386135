/** `tessera-server bundle list`: prints federated bundles. @module */
import { type Bundle, GetFederatedBundleRequest, ListFederatedBundlesRequest } from '@tessera/common/api';
import type { Command } from '../../context.js';
import { noPositionals, parseTrustDomainValue } from '../../values.js';
import { FORMAT_FLAG, formatFromFlags, renderBundle } from './shared.js';

/** The `bundle list` command. */
export const bundleList: Command = {
  words: ['bundle', 'list'],
  summary: 'Lists federated bundles',
  flags: [
    { name: 'id', kind: 'string', description: 'only the bundle of this trust domain', valueName: 'TD' },
    FORMAT_FLAG,
  ],
  async run(ctx) {
    noPositionals(ctx);
    const format = formatFromFlags(ctx);
    const id = ctx.flags.strings.get('id');
    let bundles: Bundle[];
    if (id !== undefined) {
      const trustDomain = parseTrustDomainValue(ctx.name, 'id', id);
      bundles = [
        await ctx.clients().bundle.getFederatedBundle(GetFederatedBundleRequest.fromPartial({ trustDomain })),
      ];
    } else {
      bundles = [];
      let pageToken = '';
      do {
        const res = await ctx
          .clients()
          .bundle.listFederatedBundles(
            ListFederatedBundlesRequest.fromPartial({ pageSize: 1000, pageToken }),
          );
        bundles.push(...res.bundles);
        pageToken = res.nextPageToken;
      } while (pageToken !== '');
    }
    if (ctx.output === 'json') {
      ctx.printJson({ bundles });
      return 0;
    }
    if (bundles.length === 0) ctx.print('No federated bundles found');
    for (const b of bundles) {
      if (id === undefined)
        ctx.print(
          `****************************************\n* ${b.trustDomain}\n****************************************`,
        );
      ctx.io.stdout(renderBundle(b, format));
    }
    return 0;
  },
};
