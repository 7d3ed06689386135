/** Parsing of the `datastore.connection_string` setting. @module */
import { ConfigError } from '@tessera/spiffe/errors';

/** Where the datastore lives, as parsed from a connection string. */
export type DatastoreTarget =
  | { readonly engine: 'sqlite'; readonly filename: string }
  | { readonly engine: 'postgres'; readonly url: string; readonly redacted: string }
  | { readonly engine: 'mysql'; readonly url: string; readonly redacted: string };

/**
 * Parses a datastore connection string: a file path or `sqlite:` URL (`sqlite:///abs/path.db`,
 * `sqlite:relative.db`, `sqlite::memory:`), `postgres://` / `postgresql://`, or `mysql://` (MariaDB/MySQL).
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID for an empty string, an unknown scheme or an unparsable URL; the
 *   message never contains the password.
 * @example
 * parseConnectionString('postgres://tessera@db:5432/tessera').engine; // 'postgres'
 */
export function parseConnectionString(s: string): DatastoreTarget {
  if (typeof s !== 'string') throw new TypeError('datastore: connection string must be a string');
  if (s.trim() === '') throw new ConfigError('ERR_CONFIG_INVALID', 'datastore: connection string is empty');
  if (s.startsWith('sqlite:')) {
    const filename = s.startsWith('sqlite://') ? s.slice('sqlite://'.length) : s.slice('sqlite:'.length);
    if (filename === '') {
      throw new ConfigError('ERR_CONFIG_INVALID', 'datastore: sqlite connection string has no file name');
    }
    return { engine: 'sqlite', filename };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s)?.[1]?.toLowerCase();
  if (scheme === undefined) return { engine: 'sqlite', filename: s };
  if (scheme !== 'postgres' && scheme !== 'postgresql' && scheme !== 'mysql') {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `datastore: unsupported connection string scheme "${scheme}"`,
    );
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ConfigError('ERR_CONFIG_INVALID', `datastore: connection string is not a valid ${scheme} URL`);
  }
  if (url.hostname === '' && !url.searchParams.has('host') && !url.searchParams.has('socketPath')) {
    throw new ConfigError('ERR_CONFIG_INVALID', `datastore: ${scheme} connection string has no host`);
  }
  const redacted = `${scheme}://${url.username === '' ? '' : `${url.username}@`}${url.host}${url.pathname}`;
  return scheme === 'mysql'
    ? { engine: 'mysql', url: s, redacted }
    : { engine: 'postgres', url: s, redacted };
}
