/** `tessera-server healthcheck`: asks the server over its admin socket whether it can serve its bundle. @module */
import { GetBundleRequest } from '@tessera/common/api';
import type { Command } from '../context.js';
import { grpcFailureText, isGrpcFailure } from '../format.js';
import { noPositionals } from '../values.js';

const TIMEOUT_MS = 5000;

/** The `healthcheck` command. */
export const healthcheck: Command = {
  words: ['healthcheck'],
  summary: 'Checks that the server answers on its admin socket (exit 0 when healthy)',
  flags: [{ name: 'verbose', kind: 'bool', description: 'print the failure details' }],
  async run(ctx) {
    noPositionals(ctx);
    try {
      await ctx
        .clients()
        .bundle.getBundle(GetBundleRequest.fromPartial({}), { deadline: ctx.now().getTime() + TIMEOUT_MS });
    } catch (err) {
      const why = isGrpcFailure(err)
        ? grpcFailureText(err, ctx.socketPath)
        : err instanceof Error
          ? err.message
          : String(err);
      if (ctx.output === 'json') ctx.printJson({ healthy: false, error: why });
      else
        ctx.io.stderr(
          ctx.flags.bools.get('verbose') === true
            ? `Server is unhealthy: ${why}\n`
            : 'Server is unhealthy: unable to get the bundle\n',
        );
      return 1;
    }
    if (ctx.output === 'json') ctx.printJson({ healthy: true });
    else ctx.print('Server is healthy.');
    return 0;
  },
};
