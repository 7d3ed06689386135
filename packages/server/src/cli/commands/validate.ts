/** `tessera-server validate`: validates a configuration file, reporting every problem at once. @module */
import { ConfigValidationError, formatConfigIssues } from '@tessera/common/config';
import { loadServerConfig } from '../../config/load.js';
import { CliUsageError } from '../args.js';
import type { Command } from '../context.js';
import { noPositionals } from '../values.js';

/** The `validate` command. */
export const validate: Command = {
  words: ['validate'],
  summary: 'Validates a configuration file (the same checks as run), listing every problem',
  usesSocket: false,
  flags: [
    { name: 'config', kind: 'string', description: 'configuration file (YAML or JSON)', valueName: 'FILE' },
  ],
  async run(ctx) {
    noPositionals(ctx);
    const configPath = ctx.flags.strings.get('config');
    if (configPath === undefined || configPath === '')
      throw new CliUsageError(`${ctx.name}: --config is required`);
    try {
      const { warnings } = await loadServerConfig({ configPath, env: ctx.io.env });
      if (ctx.output === 'json') {
        ctx.printJson({ valid: true, errors: [], warnings });
      } else {
        if (warnings.length > 0) ctx.io.stderr(`${formatConfigIssues(warnings)}\n`);
        ctx.print('Configuration is valid');
      }
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigValidationError)) throw err;
      if (ctx.output === 'json') {
        ctx.printJson({
          valid: false,
          errors: err.issues.filter((i) => i.severity === 'error'),
          warnings: err.issues.filter((i) => i.severity === 'warning'),
        });
      } else {
        ctx.io.stderr(`${err.message}\n`);
      }
      return 1;
    }
  },
};
