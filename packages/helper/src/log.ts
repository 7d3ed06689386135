/**
 * The helper's logger: one JSON object per line on stderr. Callers pass only non-secret fields (paths,
 * SPIFFE IDs, serials, expiries); keys and tokens are never handed to it.
 *
 * @module
 */
import type { Logger } from '@tessera/spiffe/workloadapi';

/** Log levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are replaced by `[redacted]` should they ever be logged. */
const SECRET_FIELDS = /key|token|secret|password|svid_bytes/i;

/**
 * Creates a JSON-lines logger writing to `write` (default stderr) at `level` and above.
 *
 * @example
 * ```ts
 * const log = createJsonLogger('info');
 * log.info('X.509 certificates updated', { spiffe_id: 'spiffe://example.org/web' });
 * ```
 */
export function createJsonLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[lvl] < ORDER[level]) return;
    const safe: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields ?? {})) safe[k] = SECRET_FIELDS.test(k) ? '[redacted]' : v;
    write(
      `${JSON.stringify({ level: lvl, time: new Date().toISOString(), name: 'tessera-helper', msg, ...safe })}\n`,
    );
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
