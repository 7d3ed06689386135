/**
 * Integration harness: starts the BUILT tessera-server (packages/server/dist/bin/tessera-server.js) as a real
 * process in its own process group, in a temp directory, on a free port (started again on another one when that
 * port is taken before the server binds it) and a temp admin socket; runs the CLI as a real process; and always
 * kills what it started (SIGKILL to the process group) on teardown or exit.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { BundleService, GetBundleRequest, makeClient } from '@tessera/common/api';
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

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
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

/** How many times {@link TesseraServer.start} starts the server when it finds its agent API port taken. */
export const PORT_ATTEMPTS = 5;

/** Options of {@link TesseraServer.start}. */
export interface StartOptions {
  /** Trust domain (default example.org). */
  readonly trustDomain?: string;
  /** Extra configuration keys, merged over the defaults (snake_case, as in the file). */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Reuse this directory (a restart); default: a new temp directory. */
  readonly dir?: string;
  /** Reuse this agent API port (a restart); default: a port picked free. */
  readonly port?: number;
  /** How long to wait for the admin socket to answer (each start). Default 30 s. */
  readonly readyTimeoutMs?: number;
}

/** A running tessera-server process. */
export class TesseraServer extends GroupProcess {
  readonly dir: string;
  readonly socketPath: string;
  readonly port: number;
  readonly trustDomain: string;
  readonly configPath: string;
  readonly #bindAddress: string;

  private constructor(
    dir: string,
    bindAddress: string,
    port: number,
    trustDomain: string,
    configPath: string,
    child: ChildProcess,
  ) {
    super('tessera-server', child);
    this.dir = dir;
    this.socketPath = join(dir, 'admin', 'api.sock');
    this.#bindAddress = bindAddress;
    this.port = port;
    this.trustDomain = trustDomain;
    this.configPath = configPath;
  }

  /**
   * Writes a config file, starts `tessera-server run`, and waits until the admin socket answers GetBundle.
   *
   * The built server cannot bind port 0 (its config takes ports 1-65535), so the agent API port is picked free
   * beforehand ({@link freePort}) and another process may take it before the server binds it. When the server
   * exits because its agent API port is in use, the start is tried again ({@link PORT_ATTEMPTS} times at most):
   * on a newly picked port, or after a short pause on the same port when `opts.port` asks for that port (a restart).
   */
  static async start(opts: StartOptions = {}): Promise<TesseraServer> {
    const dir = opts.dir ?? (await tempDir('server')).path;
    for (let attempt = 1; ; attempt++) {
      const server = await TesseraServer.#launch(dir, opts.port ?? (await freePort()), opts);
      try {
        await server.waitReady(opts.readyTimeoutMs ?? 30_000);
        return server;
      } catch (err) {
        await server.stop();
        if (attempt >= PORT_ATTEMPTS || !server.#lostPort()) throw err;
        if (opts.port !== undefined) await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /** Writes the config file for `port` into `dir` and starts `tessera-server run` on it. */
  static async #launch(dir: string, port: number, opts: StartOptions): Promise<TesseraServer> {
    const trustDomain = opts.trustDomain ?? 'example.org';
    const config = {
      trust_domain: trustDomain,
      bind_address: '127.0.0.1',
      bind_port: port,
      socket_path: join(dir, 'admin', 'api.sock'),
      data_dir: join(dir, 'data'),
      log_level: 'debug',
      ...opts.config,
    };
    const configPath = join(dir, 'server.json');
    await writeFile(configPath, JSON.stringify(config, null, 2));
    const child = spawnGroup(process.execPath, [SERVER_BIN, 'run', '--config', configPath], { cwd: dir });
    return new TesseraServer(dir, String(config.bind_address), port, trustDomain, configPath, child);
  }

  /** Whether the process has exited because another process holds its agent API address. */
  #lostPort(): boolean {
    return (
      this.exited &&
      this.logs().includes(`EADDRINUSE: address already in use ${this.#bindAddress}:${this.port}`)
    );
  }

  /** Resolves when the admin socket answers, rejects on timeout or early exit (with the logs). */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exited) throw this.exitedError(' early');
      const client = makeClient(BundleService, `unix://${this.socketPath}`, credentials.createInsecure());
      try {
        await client.getBundle(GetBundleRequest.fromPartial({}), { deadline: Date.now() + 1000 });
        return;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      } finally {
        client.close();
      }
      await new Promise((r) => setTimeout(r, 100));
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
