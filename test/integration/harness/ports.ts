/**
 * Integration harness: TCP ports for the processes under test. Where a program cannot bind port 0 and report
 * the port it got (the built server's config takes ports 1-65535; the quick start hands its server port to the
 * agent), a suite picks a free port beforehand ({@link freePort}) and passes it on, and another process may
 * take that port before the program binds it. {@link retryOnTakenPort} then starts the program again on newly
 * picked ports.
 *
 * @module
 */
export { freePort } from '@tessera/testing';

/** How many times {@link retryOnTakenPort} starts a program that finds a port it was given taken. */
export const PORT_ATTEMPTS = 5;

/**
 * Whether `output` (a process's logs) reports that binding `port` failed because the address was in use: Node's
 * `listen EADDRINUSE: address already in use <address>:<port>`, whatever the address.
 */
export function portTakenIn(output: string, port: number): boolean {
  return new RegExp(`EADDRINUSE: address already in use \\S*:${port}(?!\\d)`).test(output);
}

/** The failure of a start because a port picked for it was taken (`cause`: how the start failed). */
export class PortTakenError extends Error {
  readonly port: number;

  constructor(port: number, cause: unknown) {
    super(
      `port ${port} was taken before the program bound it: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'PortTakenError';
    this.port = port;
  }
}

/**
 * Runs `start` (which picks its ports, starts the program and waits until it is ready) until it returns, at
 * most {@link PORT_ATTEMPTS} times: a start is tried again only when it throws a {@link PortTakenError} (after
 * stopping what it started), any other failure is thrown at once, and so is the last attempt's error.
 * `pauseMs` is waited between attempts: a start that must keep its port (a restart) tries the same port again.
 *
 * @param start - one start; `attempt` counts from 1
 */
export async function retryOnTakenPort<T>(
  start: (attempt: number) => Promise<T>,
  opts: { readonly pauseMs?: number } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (err) {
      if (attempt >= PORT_ATTEMPTS || !(err instanceof PortTakenError)) throw err;
      if (opts.pauseMs !== undefined && opts.pauseMs > 0)
        await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  }
}
