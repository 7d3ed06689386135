/**
 * An HTTP listener serving liveness (`/live`), readiness (`/ready`) and Prometheus metrics (`/metrics`), plus a
 * probe for `healthcheck` commands.
 *
 * @module
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '../metrics/registry.js';

/** Outcome of a health check. */
export interface HealthStatus {
  /** Whether the process is healthy for this check. */
  readonly ok: boolean;
  /** Extra, non-secret facts written in the JSON body (e.g. `{ datastore: 'ok', ca: 'ok' }`). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** A health check; a thrown error or a timeout counts as not healthy. */
export type HealthCheck = () => HealthStatus | Promise<HealthStatus>;

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** Address to bind (`localhost`, `0.0.0.0`, `::1`). */
  readonly bindAddress: string;
  /** Port to bind; 0 picks a free one. */
  readonly bindPort: number;
  /** Serve `/live` and `/ready` (default true); false serves only metrics. */
  readonly health?: boolean;
  /** Path of the liveness check (default `/live`). */
  readonly livePath?: string;
  /** Path of the readiness check (default `/ready`). */
  readonly readyPath?: string;
  /** Liveness check (default: always alive while the process answers). */
  readonly live?: HealthCheck;
  /** Readiness check (default: ready). */
  readonly ready?: HealthCheck;
  /** Metrics served at `metricsPath`; none when absent. */
  readonly metrics?: MetricsRegistry;
  /** Path of the metrics (default `/metrics`). */
  readonly metricsPath?: string;
  /** Longest time a check may take before it counts as failed (default 5000 ms). */
  readonly checkTimeoutMs?: number;
}

/** A running health listener. */
export interface HealthServer {
  /** The bound address. */
  readonly address: string;
  /** The bound port (useful with `bindPort: 0`). */
  readonly port: number;
  /** Base URL (`http://127.0.0.1:8080`). */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

async function runCheck(check: HealthCheck | undefined, timeoutMs: number): Promise<HealthStatus> {
  if (check === undefined) return { ok: true };
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(check),
      new Promise<HealthStatus>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, details: { error: 'check timed out' } }), timeoutMs);
        timer.unref();
      }),
    ]);
  } catch {
    return { ok: false, details: { error: 'check failed' } };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, head);
}

/**
 * Starts the HTTP health listener. `/live` and `/ready` answer 200 with `{"status":"ok",…}` or 503 with
 * `{"status":"unavailable",…}`; `/metrics` answers the Prometheus text. Only GET and HEAD are allowed (405
 * otherwise); other paths get 404. Query strings are ignored.
 *
 * @throws {Error} when the address cannot be bound (e.g. `EADDRINUSE`)
 * @example
 * ```ts
 * const hs = await startHealthServer({ bindAddress: 'localhost', bindPort: 8080, ready: () => ({ ok: caReady }) });
 * await hs.close();
 * ```
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const livePath = opts.livePath ?? '/live';
  const readyPath = opts.readyPath ?? '/ready';
  const metricsPath = opts.metricsPath ?? '/metrics';
  const serveHealth = opts.health ?? true;
  const timeoutMs = opts.checkTimeoutMs ?? 5000;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const head = req.method === 'HEAD';
    const known =
      (serveHealth && (path === livePath || path === readyPath)) ||
      (opts.metrics !== undefined && path === metricsPath);
    if (!known) return sendJson(res, 404, { status: 'not_found' }, head);
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      return sendJson(res, 405, { status: 'method_not_allowed' }, head);
    }
    if (opts.metrics !== undefined && path === metricsPath) {
      return send(res, 200, PROMETHEUS_CONTENT_TYPE, opts.metrics.render(), head);
    }
    const st = await runCheck(path === livePath ? opts.live : opts.ready, timeoutMs);
    sendJson(res, st.ok ? 200 : 503, { status: st.ok ? 'ok' : 'unavailable', ...(st.details ?? {}) }, head);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { status: 'error' }, false);
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await once(server.listen(opts.bindPort, opts.bindAddress), 'listening');
  const addr = server.address() as AddressInfo;
  const hostText = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    address: addr.address,
    port: addr.port,
    url: `http://${hostText}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Result of {@link probeHealth}. */
export interface HealthProbeResult {
  /** Whether the endpoint answered 200. */
  readonly ok: boolean;
  /** HTTP status, or 0 when the endpoint could not be reached. */
  readonly status: number;
  /** Parsed JSON body, when there was one. */
  readonly body?: unknown;
  /** Connection error code (`ECONNREFUSED`, `ETIMEDOUT`), when unreachable. */
  readonly error?: string;
}

/**
 * Calls a health endpoint, for `tessera-server healthcheck` / `tessera-agent healthcheck`. Never throws.
 *
 * @example
 * ```ts
 * const r = await probeHealth({ host: 'localhost', port: 8080, path: '/ready' });
 * process.exitCode = r.ok ? 0 : 1;
 * ```
 */
export function probeHealth(opts: {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly timeoutMs?: number;
}): Promise<HealthProbeResult> {
  return new Promise((resolve) => {
    const req = request(
      { host: opts.host, port: opts.port, path: opts.path, method: 'GET', timeout: opts.timeoutMs ?? 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 65536) chunks.push(c);
        });
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          const status = res.statusCode ?? 0;
          resolve(body === undefined ? { ok: status === 200, status } : { ok: status === 200, status, body });
        });
        res.on('error', (err: NodeJS.ErrnoException) =>
          resolve({ ok: false, status: 0, error: err.code ?? 'error' }),
        );
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, status: 0, error: err.code ?? 'error' }),
    );
    req.end();
  });
}
