#!/usr/bin/env node
/** Entry point of the tessera-helper binary. */
import { main } from '../cli.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tessera-helper: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
