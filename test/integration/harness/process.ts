/**
 * Integration harness: the process groups it starts. Every process runs in its own group (`detached`), is tracked
 * while it lives, and is killed with its whole group on teardown, on a time limit, or when the test process
 * exits.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** Result of a finished process. */
export interface ProcessResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Process group ids of the processes started and not yet exited. */
const live = new Set<number>();
process.on('exit', () => {
  for (const pid of live) killGroup(pid, 'SIGKILL');
});

/** Sends `signal` to the process group `pid`; a group already gone is not an error. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Spawns `command args` in a process group of its own, with stdout and stderr piped; the group is killed when the
 * test process exits while it still runs.
 */
export function spawnGroup(
  command: string,
  args: readonly string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv },
): ChildProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid !== undefined) {
    live.add(pid);
    child.once('close', () => live.delete(pid));
  }
  return child;
}

/**
 * Runs `command args` to completion in a process group of its own (see {@link spawnGroup}), killing the group
 * after `timeoutMs`; resolves with the exit and the output.
 */
export function runGroup(
  command: string,
  args: readonly string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawnGroup(command, args, opts);
    const pid = child.pid;
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => pid !== undefined && killGroup(pid, 'SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * A long-running process started by {@link spawnGroup}: its output so far, its exit, log waits, signals to its
 * group, and teardown. The server and agent harnesses extend it.
 */
export class GroupProcess {
  /** Name used in error messages (`tessera-server`, `tessera-agent`). */
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<ProcessResult>;
  readonly #logWaiters = new Set<() => void>();
  #logs = '';
  #exit: ProcessResult | undefined;

  protected constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    const onData = (c: Buffer) => {
      this.#logs += c.toString();
      for (const w of this.#logWaiters) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.#exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#exit = { code, signal, stdout: this.#logs, stderr: '' };
        for (const w of this.#logWaiters) w();
        resolve(this.#exit);
      });
    });
  }

  /** The process id (also the process group id). */
  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** Everything the process wrote so far (stdout and stderr, interleaved). */
  logs(): string {
    return this.#logs;
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exit !== undefined;
  }

  /** The exit (`undefined` while the process runs). */
  get exit(): ProcessResult | undefined {
    return this.#exit;
  }

  /** The end of the logs, for error messages. */
  protected logTail(): string {
    return this.#logs.slice(-4000);
  }

  /** An error saying that the process has exited (`<name> exited (<code or signal>)<context>`), with the log tail. */
  protected exitedError(context: string): Error {
    const how = this.#exit === undefined ? 'running' : (this.#exit.code ?? this.#exit.signal);
    return new Error(`${this.name} exited (${how})${context}:\n${this.logTail()}`);
  }

  /**
   * Resolves with the first log match of `re` (already written or to come); rejects on timeout, or when the
   * process exits without writing it.
   */
  waitForLog(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.#logs);
        if (m !== null) {
          done();
          resolve(m);
        } else if (this.#exit !== undefined) {
          done();
          reject(this.exitedError(` without a log line matching ${re}`));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.#logWaiters.delete(check);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`${this.name}: no log line matching ${re} within ${timeoutMs} ms:\n${this.logTail()}`),
        );
      }, timeoutMs);
      this.#logWaiters.add(check);
      check();
    });
  }

  /** Sends a signal to the whole process group (default SIGKILL); nothing once the process has exited. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#child.pid !== undefined && this.#exit === undefined) killGroup(this.#child.pid, signal);
  }

  /** Resolves when the process has exited. */
  waitExit(): Promise<ProcessResult> {
    return this.#exited;
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. */
  async terminate(graceMs = 15_000): Promise<ProcessResult> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process group and waits for the exit (teardown; safe to call twice). */
  async stop(): Promise<void> {
    this.kill('SIGKILL');
    await this.#exited;
  }
}
