/**
 * Shared pieces of the helper's end-to-end tests: the built binary as a real process (own process
 * group, always killed), SVIDs for the fake Workload API, polling.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FakeX509Svid, LeafOptions, TestCa } from '@tessera/testing';

/** Path of the built `tessera-helper` entry point. */
export const HELPER_BIN: string = fileURLToPath(new URL('../bin/tessera-helper.js', import.meta.url));

/** A process started by {@link spawnProcess}. */
export interface RunningProcess {
  readonly child: ChildProcess;
  /** Resolves when it exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Sends a signal to the process only. */
  signal(sig: NodeJS.Signals): void;
  /** Kills the whole process group (SIGKILL) and waits for the exit. Idempotent. */
  kill(): Promise<void>;
}

/**
 * Starts a program in its own process group, capturing its output.
 *
 * @example
 * ```ts
 * const p = spawnProcess(process.execPath, [HELPER_BIN, 'run', '--config', file]);
 * ```
 */
export function spawnProcess(
  cmd: string,
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): RunningProcess {
  const child = spawn(cmd, [...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  return {
    child,
    exited,
    stdout: () => out,
    stderr: () => err,
    signal: (sig) => {
      if (!done) child.kill(sig);
    },
    kill: async () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await exited;
    },
  };
}

/** Runs `tessera-helper` with `args` to completion. */
export async function runHelper(
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const p = spawnProcess(process.execPath, [HELPER_BIN, ...args], options);
  const timer = setTimeout(() => void p.kill(), options.timeoutMs ?? 20_000);
  try {
    const r = await p.exited;
    return { ...r, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    clearTimeout(timer);
    await p.kill();
  }
}

/** Mints an X509-SVID with `ca` in the form the fake Workload API serves. */
export function fakeSvid(ca: TestCa, options: LeafOptions & { hint?: string } = {}): FakeX509Svid {
  const { hint, ...leaf } = options;
  const svid = ca.issueX509Svid(leaf);
  return {
    spiffeId: leaf.spiffeId ?? `spiffe://${ca.trustDomain}/workload`,
    chainDer: svid.chainDer,
    keyDer: svid.keyDer,
    bundleDer: ca.rootDer(),
    ...(hint === undefined ? {} : { hint }),
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastErr instanceof Error ? `: ${lastErr.message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
