#!/usr/bin/env node
/**
 * The `tessera-agent` command: `run`, `validate` and `healthcheck` are dispatched here; every other verb
 * (`api fetch x509`, `api watch`, …) goes to the CLI module (`../cli/index.js`, `runCli(argv)`).
 *
 * Exit codes: 0 success, 1 failure (invalid config, not healthy, agent stopped by the server), 2 usage error.
 *
 * @module
 */
import { request } from 'node:http';
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { type ConfigIssue, ConfigValidationError, loadRawConfig } from '@tessera/common/config';
import { SpiffeError } from '@tessera/spiffe/errors';
import { startAgent } from '../agent.js';
import {
  AGENT_ENV_PREFIX,
  loadAgentAdminSocketPath,
  loadAgentConfig,
  validateAgentConfig,
} from '../config/index.js';

/**
 * Stops V8 from growing its young generation (1 MB semi-spaces by default, up to 16 MB each) unless the
 * operator set a semi-space flag. An entry sync keeps many new objects alive at once, which grew it to the
 * maximum and kept ~30 MB of RSS for 10,000 entries long after the sync. `semi_space_growth_factor` is read
 * at every growth decision, so setting it after start-up takes effect.
 */
function keepYoungGenerationSmall(): void {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (flags.some((f) => f.includes('semi-space') || f.includes('semi_space'))) return;
  setFlagsFromString('--semi-space-growth-factor=1');
}
keepYoungGenerationSmall();

const USAGE = `usage: tessera-agent <command> [flags]

commands:
  run --config FILE [--join-token TOKEN]   run the agent
  validate --config FILE [--output json]   validate a configuration file
  healthcheck [--config FILE | --admin-socket PATH] [--shallow]
                                           check the agent's readiness over its admin socket
  api …                                    Workload API client commands (see "tessera-agent api --help")
`;

class UsageError extends Error {}

function parseFlags(
  argv: readonly string[],
  known: Record<string, 'string' | 'bool'>,
): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = known[name];
    if (kind === undefined) throw new UsageError(`unknown flag "--${name}"`);
    if (kind === 'bool') {
      if (eq !== -1) throw new UsageError(`flag "--${name}" takes no value`);
      out[name] = true;
    } else if (eq !== -1) {
      out[name] = arg.slice(eq + 1);
    } else {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`flag "--${name}" needs a value`);
      out[name] = v;
    }
  }
  return out;
}

function printIssues(issues: readonly ConfigIssue[]): void {
  for (const i of issues)
    process.stderr.write(`${i.severity}: ${i.path === '' ? '(root)' : i.path}: ${i.message}\n`);
}

async function cmdRun(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, { config: 'string', 'join-token': 'string' });
  const flags: Record<string, unknown> = {};
  if (typeof f['join-token'] === 'string') flags.join_token = f['join-token'];
  let loaded: Awaited<ReturnType<typeof loadAgentConfig>>;
  try {
    loaded = await loadAgentConfig({
      ...(typeof f.config === 'string' ? { configPath: f.config } : {}),
      env: process.env,
      flags,
    });
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  printIssues(loaded.warnings);
  const abort = new AbortController();
  let exitCode = 0;
  let fatal: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => {
    fatal = r;
  });
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    agent = await startAgent(loaded.config, {
      signal: abort.signal,
      onFatal: () => fatal(1),
    });
  } catch (err) {
    // startAgent has stopped whatever it had started, so the process can end.
    const code = err instanceof SpiffeError ? ` (${err.code})` : '';
    process.stderr.write(
      `tessera-agent: the agent did not start${code}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return 1;
  }
  const signalled = new Promise<number>((r) => {
    if (abort.signal.aborted) r(0);
    abort.signal.addEventListener('abort', () => r(0), { once: true });
  });
  exitCode = await Promise.race([finished, signalled]);
  await agent.stop(5000);
  return exitCode;
}

async function cmdValidate(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, { config: 'string', output: 'string' });
  if (typeof f.config !== 'string') throw new UsageError('validate needs --config FILE');
  if (f.output !== undefined && f.output !== 'json' && f.output !== 'text') {
    throw new UsageError(`--output must be "json" or "text", got "${String(f.output)}"`);
  }
  const raw = await loadRawConfig({ configPath: f.config, env: process.env, envPrefix: AGENT_ENV_PREFIX });
  const r = validateAgentConfig(raw.raw, { origins: raw.origins });
  const errors = [...raw.issues, ...('errors' in r ? r.errors : [])];
  const warnings = r.warnings;
  if (f.output === 'json') {
    process.stdout.write(`${JSON.stringify({ valid: errors.length === 0, errors, warnings })}\n`);
  } else {
    printIssues([...errors, ...warnings]);
    if (errors.length === 0) process.stdout.write('Configuration is valid\n');
  }
  return errors.length === 0 ? 0 : 1;
}

function getOverUnixSocket(socketPath: string, path: string, timeoutMs: number): Promise<number> {
  return new Promise((res) => {
    const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(0));
    req.end();
  });
}

async function cmdHealthcheck(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, {
    config: 'string',
    'admin-socket': 'string',
    shallow: 'bool',
    verbose: 'bool',
  });
  let socket: string;
  if (typeof f['admin-socket'] === 'string') {
    socket = f['admin-socket'];
  } else if (typeof f.config === 'string') {
    socket = await loadAgentAdminSocketPath({ configPath: f.config, env: process.env });
  } else {
    socket = '/tmp/tessera-agent/private/admin.sock';
  }
  const code = await getOverUnixSocket(resolve(socket), f.shallow === true ? '/live' : '/ready', 5000);
  const ok = code === 200;
  if (ok) process.stdout.write('Agent is healthy.\n');
  else
    process.stderr.write(
      `Agent is unhealthy: ${code === 0 ? `cannot reach "${socket}"` : `status ${code}`}\n`,
    );
  return ok ? 0 : 1;
}

async function delegate(argv: readonly string[]): Promise<number> {
  const modulePath = new URL('../cli/index.js', import.meta.url).href;
  const mod = (await import(modulePath)) as { runCli?: (argv: readonly string[]) => Promise<number> };
  if (typeof mod.runCli !== 'function') throw new Error('tessera-agent: cli module has no runCli');
  return mod.runCli(argv);
}

async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'validate':
        return await cmdValidate(rest);
      case 'healthcheck':
        return await cmdHealthcheck(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        return await delegate(argv);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tessera-agent: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    process.stderr.write(`tessera-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`tessera-agent: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
