/**
 * The processes the helper notifies: a child it starts (`cmd`) and a process named by a PID file.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { ConfigError } from '@tessera/spiffe/errors';

/** How a child ended. */
export interface ExitStatus {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  /** Signal that killed it, or null. */
  readonly signal: NodeJS.Signals | null;
}

/** Shell-style exit code of an {@link ExitStatus}: the code, or 128 + signal number. */
export function exitCodeOf(status: ExitStatus): number {
  if (status.code !== null) return status.code;
  const n = status.signal === null ? undefined : osConstants.signals[status.signal];
  return n === undefined ? 1 : 128 + n;
}

/** Options of {@link ManagedProcess}. */
export interface ManagedProcessOptions {
  /** Program to run. */
  readonly cmd: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long a stop waits after SIGTERM before SIGKILL; default 10 s. */
  readonly stopTimeoutMs?: number;
}

/**
 * A child program the helper starts, signals, restarts and stops. Its stdio is inherited.
 *
 * @example
 * ```ts
 * const p = new ManagedProcess({ cmd: 'nginx', args: ['-g', 'daemon off;'] });
 * await p.start();
 * p.signal('SIGHUP');
 * ```
 */
export class ManagedProcess {
  readonly #options: ManagedProcessOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<ExitStatus> | undefined;
  #onExit: ((status: ExitStatus) => void) | undefined;

  constructor(options: ManagedProcessOptions) {
    this.#options = options;
  }

  /** Called whenever the current child exits (also after a stop or restart). */
  set onExit(fn: ((status: ExitStatus) => void) | undefined) {
    this.#onExit = fn;
  }

  /** Whether a child is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** PID of the running child. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Starts the program; resolves once it has been spawned.
   *
   * @throws {Error} when the program cannot be started (ENOENT, EACCES…).
   */
  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawn(this.#options.cmd, [...this.#options.args], {
      stdio: 'inherit',
      env: { ...process.env, ...this.#options.env },
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.#child = child;
    this.#exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.#child === child) this.#child = undefined;
        const status = { code, signal };
        resolve(status);
        this.#onExit?.(status);
      });
    });
  }

  /** Resolves when the current child exits (immediately with a null status when none runs). */
  wait(): Promise<ExitStatus> {
    return this.#exited ?? Promise.resolve({ code: null, signal: null });
  }

  /** Sends `signal` to the child; returns false when none runs. */
  signal(signal: NodeJS.Signals): boolean {
    const child = this.#child;
    if (!child) return false;
    return child.kill(signal);
  }

  /** Stops the child: SIGTERM, then SIGKILL after the timeout. Resolves with its exit status. */
  async stop(): Promise<ExitStatus> {
    const child = this.#child;
    if (!child || !this.#exited) return { code: null, signal: null };
    const exited = this.#exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), this.#options.stopTimeoutMs ?? 10_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the child (if running) and starts it again. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/**
 * Reads a PID file and sends `signal` to that process.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the file cannot be read or holds no valid PID.
 * @throws {Error} ESRCH / EPERM from `process.kill` when the process is gone or not ours.
 * @example
 * ```ts
 * await signalPidFile('/run/nginx.pid', 'SIGHUP');
 * ```
 */
export async function signalPidFile(path: string, signal: NodeJS.Signals): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `helper: cannot read pid file ${JSON.stringify(path)} (${code})`,
      {
        cause: err,
      },
    );
  }
  const trimmed = text.trim();
  if (!/^[1-9][0-9]{0,9}$/.test(trimmed)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `helper: pid file ${JSON.stringify(path)} does not hold a process id: ${JSON.stringify(trimmed.slice(0, 32))}`,
    );
  }
  const pid = Number(trimmed);
  process.kill(pid, signal);
  return pid;
}
