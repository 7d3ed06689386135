#!/usr/bin/env node
/**
 * tessera-server: `run`, `validate` and `healthcheck`; every other verb goes to the admin CLI (src/cli).
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { credentials } from '@grpc/grpc-js';
import { BundleService, makeClient } from '@tessera/common/api';
import { type ConfigIssue, ConfigValidationError, formatConfigIssues } from '@tessera/common/config';
import { loadServerConfig, type ServerConfig } from '../config/load.js';
import { startServer } from '../server.js';

const USAGE = `Usage: tessera-server <command> [flags]

Commands:
  run --config <file>           Run the server
  validate --config <file>      Validate a configuration file (every problem at once)
  healthcheck [--config <file>] [--socket <path>]
                                Check that a local server is healthy
  entry|agent|token|bundle|federation|x509|jwt|localauthority ...
                                Admin commands over the admin socket
`;

interface Flags {
  config?: string;
  socket?: string;
  rest: string[];
}

/** Parses `--config f`, `-config f`, `--config=f` (and `--socket`, `-socketPath`). */
function parseFlags(argv: readonly string[]): Flags {
  const out: Flags = { rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const m = /^--?([A-Za-z-]+)(?:=(.*))?$/.exec(a);
    const name = m?.[1];
    if (m && (name === 'config' || name === 'socket' || name === 'socketPath' || name === 'socket-path')) {
      const value = m[2] ?? argv[++i];
      if (value === undefined) throw new Error(`flag "${a}" needs a value`);
      if (name === 'config') out.config = value;
      else out.socket = value;
    } else out.rest.push(a);
  }
  return out;
}

function printIssues(issues: readonly ConfigIssue[]): void {
  if (issues.length > 0) process.stderr.write(`${formatConfigIssues(issues)}\n`);
}

async function load(flags: Flags): Promise<ServerConfig> {
  const r = await loadServerConfig({
    ...(flags.config === undefined ? {} : { configPath: flags.config }),
    env: process.env,
  });
  printIssues(r.warnings);
  return r.config;
}

async function run(flags: Flags): Promise<number> {
  const config = await load(flags);
  const server = await startServer({ config });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`tessera-server: received ${signal}, stopping\n`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  await server.close();
  return 0;
}

async function validateCommand(flags: Flags): Promise<number> {
  if (flags.config === undefined) {
    process.stderr.write('tessera-server validate: --config is required\n');
    return 2;
  }
  await load(flags);
  process.stdout.write('Configuration is valid\n');
  return 0;
}

function httpReady(host: string, port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

async function healthcheck(flags: Flags): Promise<number> {
  let socketPath = flags.socket ?? '/tmp/tessera-server/private/api.sock';
  if (flags.config !== undefined) {
    const config = await load(flags);
    if (flags.socket === undefined) socketPath = config.socketPath;
    if (config.healthChecks.listenerEnabled) {
      const host =
        config.healthChecks.bindAddress === '0.0.0.0' ? '127.0.0.1' : config.healthChecks.bindAddress;
      const ok = await httpReady(host, config.healthChecks.bindPort, config.healthChecks.readyPath);
      process.stdout.write(ok ? 'Server is healthy.\n' : 'Server is unhealthy.\n');
      return ok ? 0 : 1;
    }
  }
  const client = makeClient(BundleService, `unix://${socketPath}`, credentials.createInsecure());
  try {
    await client.getBundle({ outputMask: undefined }, { deadline: Date.now() + 5000 });
    process.stdout.write('Server is healthy.\n');
    return 0;
  } catch (err) {
    process.stderr.write(`Server is unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    client.close();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'run' || command === 'validate' || command === 'healthcheck') {
    const flags = parseFlags(args);
    if (command === 'run') return run(flags);
    if (command === 'validate') return validateCommand(flags);
    return healthcheck(flags);
  }
  const cliPath = new URL('../cli/index.js', import.meta.url);
  if (existsSync(cliPath)) {
    const cli = (await import(cliPath.href)) as { runCli(argv: readonly string[]): Promise<number> };
    return cli.runCli(argv);
  }
  process.stderr.write(`tessera-server: unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${err.message}\n`);
    } else {
      process.stderr.write(`tessera-server: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
