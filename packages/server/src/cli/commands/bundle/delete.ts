/** `tessera-server bundle delete`: deletes a federated bundle. @module */
import {
  BatchDeleteFederatedBundleRequest,
  BatchDeleteFederatedBundleRequest_Mode,
} from '@tessera/common/api';
import type { Command } from '../../context.js';
import { statusText } from '../../format.js';
import { noPositionals, parseEnumValue, parseTrustDomainValue, requireFlag } from '../../values.js';

const MODES = {
  restrict: BatchDeleteFederatedBundleRequest_Mode.RESTRICT,
  delete: BatchDeleteFederatedBundleRequest_Mode.DELETE,
  dissociate: BatchDeleteFederatedBundleRequest_Mode.DISSOCIATE,
} as const;

/** The `bundle delete` command. */
export const bundleDelete: Command = {
  words: ['bundle', 'delete'],
  summary: 'Deletes the bundle of a federated trust domain',
  flags: [
    { name: 'id', kind: 'string', description: 'trust domain of the bundle', valueName: 'TD' },
    {
      name: 'mode',
      kind: 'string',
      description:
        'restrict (default: fail if entries federate with it), delete (delete those entries) or dissociate (remove it from them)',
      valueName: 'MODE',
    },
  ],
  async run(ctx) {
    noPositionals(ctx);
    const td = parseTrustDomainValue(ctx.name, 'id', requireFlag(ctx, 'id'));
    const mode = parseEnumValue(
      ctx.name,
      'mode',
      ctx.flags.strings.get('mode') ?? 'restrict',
      Object.keys(MODES) as (keyof typeof MODES)[],
    );
    const res = await ctx
      .clients()
      .bundle.batchDeleteFederatedBundle(
        BatchDeleteFederatedBundleRequest.fromPartial({ trustDomains: [td], mode: MODES[mode] }),
      );
    const r = res.results[0];
    const ok = r !== undefined && r.status?.code === 0;
    if (ctx.output === 'json') ctx.printJson(res);
    else if (ok) ctx.print('Bundle deleted successfully');
    else ctx.io.stderr(`Failed to delete the bundle ${statusText(r?.status)}\n`);
    return ok ? 0 : 1;
  },
};
