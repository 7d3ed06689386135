/**
 * Directories of the Unix sockets of the server and the agent. A directory's mode is set only when it is
 * created here: the (agent's) public socket's directory is then 1777 (any uid may reach the socket, the sticky bit keeps others from
 * replacing it) and the admin socket's directory 0700. An existing directory keeps its mode, so a socket
 * configured in `/run` or `/tmp` never changes those directories; a private socket in a directory other users
 * may write to is refused, since they could put their own socket in its place.
 *
 * @module
 */
import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '@tessera/spiffe/errors';

/**
 * Creates the public socket's directory (mode 1777) when it does not exist; an existing directory is left as is.
 *
 * @example
 * ```ts
 * await preparePublicSocketDir('/tmp/tessera-agent/public/api.sock');
 * ```
 */
export async function preparePublicSocketDir(socketPath: string): Promise<void> {
  const dir = dirname(resolve(socketPath));
  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined) await chmod(dir, 0o1777);
}

/**
 * Creates a private (admin) socket's directory (mode 0700) when it does not exist, and refuses an existing one
 * that other users may write to. `area` prefixes error messages (default `agent`).
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the directory is writable by group or others, or is not a
 * directory.
 * @example
 * ```ts
 * await preparePrivateSocketDir('/tmp/tessera-agent/private/admin.sock');
 * ```
 */
export async function preparePrivateSocketDir(socketPath: string, area = 'agent'): Promise<void> {
  const dir = dirname(resolve(socketPath));
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) {
    await chmod(dir, 0o700);
    return;
  }
  const st = await stat(dir);
  if (!st.isDirectory()) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${area}: socket directory "${dir}" is not a directory`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `${area}: socket directory "${dir}" is writable by other users (mode ${(st.mode & 0o7777).toString(8)}); use a dedicated directory`,
    );
  }
}

/**
 * Removes a stale socket at `path`; nothing when absent. `area` prefixes error messages (default `agent`).
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when `path` exists and is not a socket (it is never deleted).
 * @example
 * ```ts
 * await removeStaleSocket('/tmp/tessera-agent/private/admin.sock');
 * ```
 */
export async function removeStaleSocket(path: string, area = 'agent'): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) {
    throw new ConfigError('ERR_CONFIG_INVALID', `${area}: "${path}" exists and is not a socket`);
  }
  await unlink(path);
}
