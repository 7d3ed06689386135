/**
 * The `tessera-agent` client commands other than `run`, `validate` and `healthcheck` (which the bin
 * dispatches itself): `api fetch x509 | jwt | bundles`, `api validate jwt`, `api watch`.
 *
 * @module
 */
import { API_USAGE, type CliIo, DEFAULT_SOCKET, runApi, UsageError } from './api.js';

export { API_USAGE, type CliIo, DEFAULT_SOCKET, UsageError };

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/**
 * Runs a client command; `argv` starts with the noun (`['api', 'fetch', 'x509', '--socket', path]`).
 * Exit codes: 0 success, 1 failure (agent unreachable, refused, invalid response), 2 usage error.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2));
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const [noun, ...rest] = argv;
  if (noun === 'api') return runApi(rest, io);
  io.stderr(`error: unknown command "${noun ?? ''}"\n\n${API_USAGE}`);
  return 2;
}
