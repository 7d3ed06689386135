/**
 * The `tessera-server` admin command line: `entry`, `agent`, `token`, `bundle`, `federation`, `x509`, `jwt`,
 * `localauthority`, `healthcheck` and `validate`, as clients of the admin API on the server's Unix socket.
 *
 * Flags are kebab-case (`--spiffe-id`); SPIRE's spellings (`-spiffeID`, `-parentID`, `-socketPath`) are accepted
 * too. Every command takes `--socket PATH` and `--output pretty|json`. Usage errors and failed calls are written
 * to standard error and give exit status 1.
 *
 * @module
 */
import { CliUsageError, flagHelp, parseFlags } from './args.js';
import {
  type AdminClients,
  type ClientFactory,
  type CliIo,
  type Command,
  type CommandContext,
  DEFAULT_SOCKET_PATH,
  GLOBAL_FLAGS,
  type OutputFormat,
  socketClients,
  toJsonValue,
} from './context.js';
import { grpcFailureText, isGrpcFailure } from './format.js';
import { COMMANDS } from './registry.js';

export { CliUsageError, type FlagKind, type FlagSpec, type ParsedFlags, parseFlags } from './args.js';
export {
  type AdminClients,
  type ClientFactory,
  type CliIo,
  type Command,
  type CommandContext,
  DEFAULT_SOCKET_PATH,
  type OutputFormat,
  socketClients,
  toJsonValue,
} from './context.js';
export { COMMANDS } from './registry.js';

/** Options of {@link runCli}, for tests and embedding. */
export interface RunCliOptions {
  /** Output and environment (default: the process's). */
  readonly io?: Partial<CliIo>;
  /** Builds the admin clients (default: grpc-js over the Unix socket). */
  readonly clients?: ClientFactory;
  /** Clock (default: `new Date()`). */
  readonly now?: () => Date;
}

function processIo(): CliIo {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  };
}

function usage(): string {
  const groups = new Map<string, Command[]>();
  for (const c of COMMANDS) {
    const noun = c.words[0] as string;
    groups.set(noun, [...(groups.get(noun) ?? []), c]);
  }
  let out =
    'Usage: tessera-server <command> [flags]\n\nCommands:\n  run --config FILE'.padEnd(60) +
    'Runs the server\n';
  for (const cmds of groups.values()) {
    for (const c of cmds) out += `  ${c.words.join(' ').padEnd(40)}${c.summary}\n`;
  }
  out += `\nEvery command takes --socket PATH (default ${DEFAULT_SOCKET_PATH}) and --output pretty|json.\n`;
  out += 'Run "tessera-server <command> --help" for its flags.\n';
  return out;
}

function commandHelp(c: Command): string {
  const flags = [
    ...c.flags,
    ...(c.usesSocket === false ? GLOBAL_FLAGS.filter((f) => f.name === 'output') : GLOBAL_FLAGS),
  ];
  return `Usage: tessera-server ${c.words.join(' ')} [flags]\n\n${c.summary}\n\nFlags:\n${flagHelp(flags)}`;
}

/** Finds the command named by the leading words of `argv`; returns it and the remaining arguments. */
function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const c of COMMANDS) {
    if (
      c.words.every((w, i) => argv[i] === w) &&
      (best === undefined || c.words.length > best.command.words.length)
    ) {
      best = { command: c, rest: argv.slice(c.words.length) };
    }
  }
  return best;
}

/**
 * Runs one `tessera-server` admin command and resolves to its exit status (0 success, 1 failure). Never throws:
 * usage errors, failed calls and unexpected errors are written to standard error.
 *
 * @param argv - arguments after the program name, e.g. `['entry', 'show', '--spiffe-id', 'spiffe://td/w']`.
 * @param options - I/O, client factory and clock (tests).
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2));
 * ```
 */
export async function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const io: CliIo = { ...processIo(), ...options.io };
  const first = argv[0];
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    (first === undefined ? io.stderr : io.stdout)(usage());
    return first === undefined ? 1 : 0;
  }
  const found = findCommand(argv);
  if (found === undefined) {
    const known = COMMANDS.filter((c) => c.words[0] === first);
    const hint =
      known.length > 0
        ? `"${first}" needs one of: ${known.map((c) => c.words.slice(1).join(' ')).join(', ')}`
        : `unknown command ${JSON.stringify(argv.slice(0, 2).join(' '))}`;
    io.stderr(`Error: ${hint}\n\n${usage()}`);
    return 1;
  }
  const { command, rest } = found;
  const name = command.words.join(' ');
  if (rest.includes('--help') || rest.includes('-h') || rest.includes('-help')) {
    io.stdout(commandHelp(command));
    return 0;
  }
  let clients: AdminClients | undefined;
  try {
    const globals =
      command.usesSocket === false ? GLOBAL_FLAGS.filter((f) => f.name === 'output') : GLOBAL_FLAGS;
    const flags = parseFlags([...command.flags, ...globals], rest, name);
    const outputText = flags.strings.get('output') ?? 'pretty';
    if (outputText !== 'pretty' && outputText !== 'json') {
      throw new CliUsageError(
        `${name}: invalid --output ${JSON.stringify(outputText)}: must be "pretty" or "json"`,
      );
    }
    const output: OutputFormat = outputText;
    const socketPath = flags.strings.get('socket') ?? DEFAULT_SOCKET_PATH;
    if (socketPath === '') throw new CliUsageError(`${name}: --socket must not be empty`);
    const factory = options.clients ?? socketClients;
    const ctx: CommandContext = {
      name,
      flags,
      output,
      socketPath,
      io,
      now: options.now ?? (() => new Date()),
      clients() {
        clients ??= factory(socketPath);
        return clients;
      },
      print(text) {
        io.stdout(`${text}\n`);
      },
      printJson(value) {
        io.stdout(`${JSON.stringify(toJsonValue(value), null, 2)}\n`);
      },
    };
    return await command.run(ctx);
  } catch (err) {
    if (err instanceof CliUsageError) {
      io.stderr(`Error: ${err.message}\nRun "tessera-server ${name} --help" for usage.\n`);
    } else if (isGrpcFailure(err)) {
      io.stderr(
        `Error: ${name}: ${grpcFailureText(err, options.clients === undefined ? clientSocket(rest) : 'the server')}\n`,
      );
    } else {
      io.stderr(`Error: ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    return 1;
  } finally {
    clients?.close();
  }
}

function clientSocket(rest: readonly string[]): string {
  for (let i = 0; i < rest.length; i++) {
    const m = /^--?(socket|socketPath|socket-path)(?:=(.*))?$/.exec(rest[i] as string);
    if (m) return m[2] ?? rest[i + 1] ?? DEFAULT_SOCKET_PATH;
  }
  return DEFAULT_SOCKET_PATH;
}
