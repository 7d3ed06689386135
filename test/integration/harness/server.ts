/**
 * Integration harness: starts the BUILT tessera-server (packages/server/dist/bin/tessera-server.js) as a real
 * process in its own process group, in a temp directory, on free ports (started again on other ones when one is
 * taken before the server binds it) and a temp admin socket; runs the CLI as a real process; and always kills
 * what it started (SIGKILL to the process group) on teardown or exit.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { BundleService, GetBundleRequest, makeClient } from '@tessera/common/api';
import { freePort, PortTakenError, portTakenIn, retryOnTakenPort } from './ports.js';
import { GroupProcess, type ProcessResult, runGroup, spawnGroup } from './process.js';

export type { ProcessResult } from './process.js';

/** Root of the repository (test/integration/dist/harness → ../../../../). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** The built server binary. */
export const SERVER_BIN = join(REPO_ROOT, 'packages', 'server', 'dist', 'bin', 'tessera-server.js');

/**
 * Whether every thread of process `pid` is stopped (by SIGSTOP), from /proc (Linux): the state letter after the
 * command name in each `/proc/<pid>/task/<tid>/stat`.
 *
 * @throws {Error} when the process is gone or a zombie
 */
function allThreadsStopped(pid: number): boolean {
  let stopped = true;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // this thread has just exited
    }
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') {
      if (tid === String(pid)) throw new Error(`process ${pid} has exited`);
      continue;
    }
    if (state !== 'T' && state !== 't') stopped = false;
  }
  return stopped;
}

/** A temp directory removed by the returned function. */
export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `tessera-it-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Runs the built `tessera-server` binary with `args` to completion (in its own process group, killed after
 * `timeoutMs`).
 */
export function runServerBin(
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return runGroup(process.execPath, [SERVER_BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    ...(opts.env === undefined ? {} : { env: opts.env }),
    timeoutMs: opts.timeoutMs ?? 60_000,
  });
}

/**
 * Options of {@link TesseraServer.start}; `P` names the further ports picked free for each start (`freePorts`).
 */
export interface StartOptions<P extends string = never> {
  /** Trust domain (default example.org). */
  readonly trustDomain?: string;
  /**
   * Extra configuration keys, merged over the defaults (snake_case, as in the file); or a function of the ports
   * picked for this start (named in `freePorts`) that returns them, for listeners other than the agent API.
   */
  readonly config?:
    | Readonly<Record<string, unknown>>
    | ((ports: Readonly<Record<P, number>>) => Readonly<Record<string, unknown>>);
  /**
   * Names of further ports to pick free for each start and hand to `config` (e.g. `['serverless']` for
   * `serverless.bind_port`); the started server has them in {@link TesseraServer.ports}.
   */
  readonly freePorts?: readonly P[];
  /** Reuse this directory (a restart); default: a new temp directory. */
  readonly dir?: string;
  /** Reuse this agent API port (a restart); default: a port picked free. */
  readonly port?: number;
  /** How long to wait for the admin socket to answer (each start). Default 30 s. */
  readonly readyTimeoutMs?: number;
}

/** A running tessera-server process; `P` names the further ports picked for it ({@link StartOptions.freePorts}). */
export class TesseraServer<P extends string = never> extends GroupProcess {
  readonly dir: string;
  readonly socketPath: string;
  readonly port: number;
  /** The further ports picked free for this server, by the names in {@link StartOptions.freePorts}. */
  readonly ports: Readonly<Record<P, number>>;
  readonly trustDomain: string;
  readonly configPath: string;

  private constructor(
    dir: string,
    port: number,
    ports: Readonly<Record<P, number>>,
    trustDomain: string,
    configPath: string,
    child: ChildProcess,
  ) {
    super('tessera-server', child);
    this.dir = dir;
    this.socketPath = join(dir, 'admin', 'api.sock');
    this.port = port;
    this.ports = ports;
    this.trustDomain = trustDomain;
    this.configPath = configPath;
  }

  /**
   * Writes a config file, starts `tessera-server run`, and waits until it is ready ({@link waitReady}).
   *
   * The built server cannot bind port 0 (its config takes ports 1-65535), so the agent API port and the ports
   * named in `opts.freePorts` are picked free beforehand ({@link freePort}), and another process may take one of
   * them before the server binds it. When the server exits because one of them is in use, the start is tried
   * again ({@link retryOnTakenPort}): on newly picked ports, but after a short pause on the same agent API port
   * when `opts.port` asks for that port (a restart).
   */
  static async start<P extends string = never>(opts: StartOptions<P> = {}): Promise<TesseraServer<P>> {
    const dir = opts.dir ?? (await tempDir('server')).path;
    return retryOnTakenPort(
      async () => {
        const port = opts.port ?? (await freePort());
        const ports: Partial<Record<P, number>> = {};
        const picked = new Set([port]);
        for (const name of opts.freePorts ?? []) {
          let p = await freePort();
          while (picked.has(p)) p = await freePort(); // a released port may be handed out again at once
          picked.add(p);
          ports[name] = p;
        }
        const server = await TesseraServer.#launch(dir, port, ports as Record<P, number>, opts);
        try {
          await server.waitReady(opts.readyTimeoutMs ?? 30_000);
          return server;
        } catch (err) {
          await server.stop();
          const taken = [port, ...Object.values<number>(server.ports)].find((p) =>
            portTakenIn(server.logs(), p),
          );
          throw taken === undefined ? err : new PortTakenError(taken, err);
        }
      },
      { pauseMs: opts.port === undefined ? 0 : 250 },
    );
  }

  /** Writes the config file for these ports into `dir` and starts `tessera-server run` on it. */
  static async #launch<P extends string>(
    dir: string,
    port: number,
    ports: Readonly<Record<P, number>>,
    opts: StartOptions<P>,
  ): Promise<TesseraServer<P>> {
    const trustDomain = opts.trustDomain ?? 'example.org';
    const config = {
      trust_domain: trustDomain,
      bind_address: '127.0.0.1',
      bind_port: port,
      socket_path: join(dir, 'admin', 'api.sock'),
      data_dir: join(dir, 'data'),
      log_level: 'debug',
      ...(typeof opts.config === 'function' ? opts.config(ports) : opts.config),
    };
    const configPath = join(dir, 'server.json');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const child = spawnGroup(process.execPath, [SERVER_BIN, 'run', '--config', configPath], { cwd: dir });
    return new TesseraServer(dir, port, ports, trustDomain, configPath, child);
  }

  /**
   * Resolves when the admin socket answers and the server has logged "Server started" (at info level: every
   * listener is bound then, while the admin socket answers before the serverless and health listeners are up);
   * rejects on timeout or early exit (with the logs).
   */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exited) throw this.exitedError(' early');
      const client = makeClient(BundleService, `unix://${this.socketPath}`, credentials.createInsecure());
      try {
        await client.getBundle(GetBundleRequest.fromPartial({}), { deadline: Date.now() + 1000 });
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
        await new Promise((r) => setTimeout(r, 100));
        continue;
      } finally {
        client.close();
      }
      await this.waitForLog(/\bServer started\b/, Math.max(deadline - Date.now(), 1));
      return;
    }
    throw new Error(`tessera-server not ready after ${timeoutMs} ms (${last}):\n${this.logTail()}`);
  }

  /** Runs the built CLI against this server's admin socket. */
  cli(args: readonly string[], opts: { cwd?: string } = {}): Promise<ProcessResult> {
    return runServerBin([...args, '--socket', this.socketPath], { cwd: opts.cwd ?? this.dir });
  }

  /**
   * Stops the process group (SIGSTOP) and resolves once every thread of the server has stopped: from then until
   * {@link resume} (or a kill) the server writes nothing and answers nothing. Linux only (reads /proc).
   *
   * @throws {Error} when the process has exited
   */
  async pause(): Promise<void> {
    if (this.exited) throw new Error('tessera-server has exited');
    this.kill('SIGSTOP');
    while (!allThreadsStopped(this.pid)) {
      if (this.exited) throw new Error('tessera-server has exited');
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Lets a {@link pause}d process group run again (SIGCONT). */
  resume(): void {
    this.kill('SIGCONT');
  }
}
