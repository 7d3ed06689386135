/**
 * Command line of tessera-helper.
 *
 * ```
 * tessera-helper [-config <file>] [-daemon-mode=<bool>]     spiffe-helper compatible
 * tessera-helper run [--config <file>] [--daemon-mode <bool>]
 * tessera-helper exec [--config <file>] -- <cmd> [args…]
 * tessera-helper validate [--config <file>] [--output json]
 * ```
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpiffeError } from '@tessera/spiffe/errors';
import type { Logger } from '@tessera/spiffe/workloadapi';
import {
  type HelperConfig,
  HelperConfigError,
  loadHelperConfig,
  validateHelperConfig,
} from './config/config.js';
import { Helper } from './helper.js';
import { createJsonLogger, type LogLevel } from './log.js';
import { exitCodeOf } from './process.js';

const USAGE = `usage:
  tessera-helper [-config <file>] [-daemon-mode=<true|false>]
  tessera-helper run [--config <file>] [--daemon-mode <true|false>]
  tessera-helper exec [--config <file>] -- <cmd> [args...]
  tessera-helper validate [--config <file>] [--output json]

The configuration file is YAML (.yaml, .yml), JSON (.json) or spiffe-helper HCL (.hcl, .conf);
the default is helper.conf. exec without --config writes svid.pem, svid_key.pem and svid_bundle.pem
to a private temporary directory and passes their paths in TESSERA_SVID_FILE, TESSERA_SVID_KEY_FILE
and TESSERA_SVID_BUNDLE_FILE.
`;

class UsageError extends Error {}

interface ParsedArgs {
  command: 'run' | 'exec' | 'validate' | 'help';
  config: string | undefined;
  daemonMode: boolean | undefined;
  output: 'text' | 'json';
  logLevel: LogLevel;
  rest: string[];
}

function parseBool(flag: string, v: string | undefined): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new UsageError(`${flag} takes true or false, got ${JSON.stringify(v ?? '')}`);
}

/** Parses argv (without node and script). Accepts `-flag`, `--flag`, `--flag=value` and `--flag value`. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const out: ParsedArgs = {
    command: 'run',
    config: undefined,
    daemonMode: undefined,
    output: 'text',
    logLevel: 'info',
    rest: [],
  };
  let i = 0;
  const first = argv[0];
  if (first === 'run' || first === 'exec' || first === 'validate' || first === 'help') {
    out.command = first;
    i = 1;
  }
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.rest = argv.slice(i + 1);
      break;
    }
    const m = /^--?([a-zA-Z][\w-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const name = m[1]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');
    const value = (): string => {
      if (m[2] !== undefined) return m[2];
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      return v;
    };
    switch (name) {
      case 'config':
        out.config = value();
        break;
      case 'daemon-mode':
        // spiffe-helper's boolean flag: `-daemon-mode` alone means true.
        out.daemonMode =
          m[2] === undefined && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('-'))
            ? true
            : parseBool('--daemon-mode', value());
        break;
      case 'output': {
        const v = value();
        if (v !== 'json' && v !== 'text')
          throw new UsageError(`--output takes json or text, got ${JSON.stringify(v)}`);
        out.output = v;
        break;
      }
      case 'log-level': {
        const v = value();
        if (v !== 'debug' && v !== 'info' && v !== 'warn' && v !== 'error') {
          throw new UsageError(`--log-level takes debug, info, warn or error, got ${JSON.stringify(v)}`);
        }
        out.logLevel = v;
        break;
      }
      case 'help':
      case 'h':
        out.command = 'help';
        break;
      default:
        throw new UsageError(`unknown flag ${JSON.stringify(arg)}`);
    }
  }
  if (out.command === 'exec' && out.rest.length === 0) throw new UsageError('exec needs a program after --');
  if (out.command !== 'exec' && out.rest.length > 0)
    throw new UsageError('arguments after -- are only for exec');
  return out;
}

function withDaemonMode(config: HelperConfig, daemonMode: boolean | undefined): HelperConfig {
  return daemonMode === undefined ? config : { ...config, daemonMode };
}

/** Environment given to the exec target: where its files are. */
function execEnv(config: HelperConfig): Record<string, string> {
  const env: Record<string, string> = { TESSERA_CERT_DIR: config.certDir };
  if (config.x509) {
    env.TESSERA_SVID_FILE = config.x509.svidFile;
    env.TESSERA_SVID_KEY_FILE = config.x509.keyFile;
    env.TESSERA_SVID_BUNDLE_FILE = config.x509.bundleFile;
  }
  if (config.jwtBundleFile) env.TESSERA_JWT_BUNDLE_FILE = config.jwtBundleFile;
  return env;
}

type SignalName = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const FORWARDED: readonly SignalName[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs the command line; resolves with the process exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: readonly string[], log?: Logger): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`tessera-helper: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (args.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const logger = log ?? createJsonLogger(args.logLevel);
  let tempDir: string | undefined;
  let config: HelperConfig;
  try {
    if (args.command === 'exec' && args.config === undefined) {
      tempDir = mkdtempSync(join(tmpdir(), 'tessera-helper-'));
      config = validateHelperConfig({
        cert_dir: tempDir,
        svid_file_name: 'svid.pem',
        svid_key_file_name: 'svid_key.pem',
        svid_bundle_file_name: 'svid_bundle.pem',
      });
    } else {
      config = withDaemonMode(loadHelperConfig(args.config ?? 'helper.conf'), args.daemonMode);
    }
    if (args.command === 'exec' && config.cmd !== undefined) {
      throw new HelperConfigError([
        { path: 'cmd', message: 'must not be set with exec (the program comes after --)' },
      ]);
    }
  } catch (err) {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    if (!(err instanceof SpiffeError)) throw err;
    if (args.command === 'validate' && args.output === 'json') {
      const issues =
        err instanceof HelperConfigError ? err.issues : [{ path: '(file)', message: err.message }];
      process.stdout.write(`${JSON.stringify({ valid: false, code: err.code, issues })}\n`);
    } else {
      process.stderr.write(`tessera-helper: ${err.message}\n`);
    }
    return 1;
  }

  if (args.command === 'validate') {
    process.stdout.write(
      args.output === 'json' ? `${JSON.stringify({ valid: true })}\n` : 'configuration is valid\n',
    );
    return 0;
  }
  try {
    if (args.command === 'exec') return await runExec(config, args.rest, logger);
    if (!config.daemonMode) {
      await new Helper(config, { logger }).runOnce();
      logger.info('Credentials written, exiting (daemon_mode is false)');
      return 0;
    }
    return await runDaemon(config, logger);
  } catch (err) {
    logger.error('Helper failed', { err: err instanceof Error ? err.message : String(err) });
    return 1;
  } finally {
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

async function runDaemon(config: HelperConfig, logger: Logger): Promise<number> {
  const helper = new Helper(config, { logger });
  return new Promise<number>((resolve, reject) => {
    const handlers = new Map<SignalName, () => void>();
    const finish = (code: number): void => {
      for (const [s, h] of handlers) process.off(s, h);
      helper.stop().then(() => resolve(code), reject);
    };
    for (const s of ['SIGINT', 'SIGTERM'] as const) {
      const h = (): void => {
        logger.info('Stopping', { signal: s });
        finish(0);
      };
      handlers.set(s, h);
      process.on(s, h);
    }
    helper.onFatal(() => finish(1));
    helper.start().catch((err: unknown) => {
      logger.error('Helper failed', { err: err instanceof Error ? err.message : String(err) });
      finish(1);
    });
  });
}

async function runExec(config: HelperConfig, command: readonly string[], logger: Logger): Promise<number> {
  config = { ...config, daemonMode: true };
  const [cmd, ...args] = command as [string, ...string[]];
  const helper = new Helper(config, { logger, exec: { cmd, args, env: execEnv(config) } });
  const handlers = new Map<SignalName, () => void>();
  let stopping: number | undefined;
  try {
    const started = new Promise<void>((resolve, reject) => {
      for (const s of FORWARDED) {
        const h = (): void => {
          const pid = helper.childPid;
          if (pid !== undefined) {
            // Forwarded to the program; its exit decides ours.
            process.kill(pid, s);
            return;
          }
          stopping = 128 + (osConstants.signals[s] ?? 0);
          resolve();
        };
        handlers.set(s, h);
        process.on(s, h);
      }
      helper.onFatal((err) => reject(err));
      helper.start().then(resolve, reject);
    });
    await started;
    if (stopping !== undefined) return stopping;
    const exit = helper.execExit;
    if (exit === undefined) return 1;
    const status = await exit;
    logger.info('Program exited', { code: status.code, signal: status.signal });
    return exitCodeOf(status);
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    await helper.stop();
  }
}
