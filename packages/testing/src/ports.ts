/**
 * Free TCP ports for tests and benchmarks.
 *
 * @module
 */
import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * A free TCP port on 127.0.0.1 (bound, then released). Another process may take it before it is used: prefer
 * binding port 0 where the program under test can report its port, or retry the start on a new port.
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export async function freePort(): Promise<number> {
  const s = createServer();
  await once(s.listen(0, '127.0.0.1'), 'listening');
  const addr = s.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
