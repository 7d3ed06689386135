/**
 * The HTTP+JSON front end of the serverless service: `POST /v1/remote/x509-svid`, `POST /v1/remote/jwt-svid`
 * and `POST /v1/remote/bundle`. Rate limit per client address (checked before the body is read), body size
 * limit (413), strict JSON validation naming the field (400), denials as 403 `{"code","message"}`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientRateLimiter } from './rate-limit.js';
import type { RequestMeta, ServerlessService } from './service.js';
import { ServerlessDenial } from './types.js';

/** Paths of the HTTP API. */
export const HTTP_PATHS = {
  x509Svid: '/v1/remote/x509-svid',
  jwtSvid: '/v1/remote/jwt-svid',
  bundle: '/v1/remote/bundle',
} as const;

/** Options of {@link createHttpHandler}. */
export interface HttpHandlerOptions {
  readonly service: ServerlessService;
  readonly limiter: ClientRateLimiter;
  readonly maxBodyBytes: number;
}

function pem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > max) {
      reject(new ServerlessDenial('too_large', `request body is larger than ${max} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        reject(new ServerlessDenial('too_large', `request body is larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!done) reject(err);
    });
  });
}

function parseJsonObject(buf: Buffer, allowed: readonly string[]): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new ServerlessDenial('invalid_argument', 'body: must be a JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ServerlessDenial('invalid_argument', 'body: must be a JSON object');
  }
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k))
      throw new ServerlessDenial('invalid_argument', `${k.slice(0, 64)}: unknown field`);
  }
  return v as Record<string, unknown>;
}

function decodeCsr(v: unknown): Buffer | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw new ServerlessDenial(
      'invalid_argument',
      'csr: must be base64 (standard alphabet, padded) of a DER request',
    );
  }
  return Buffer.from(v, 'base64');
}

function method(path: string): string {
  return path.slice('/v1/remote/'.length);
}

/**
 * Creates the request listener of the HTTP API.
 *
 * @example
 * ```ts
 * const server = createServer(createHttpHandler({ service, limiter, maxBodyBytes: 65536 }));
 * ```
 */
export function createHttpHandler(
  opts: HttpHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { service, limiter, maxBodyBytes } = opts;
  return (req, res) => {
    const meta: RequestMeta = { clientAddress: req.socket.remoteAddress ?? 'unknown', transport: 'http' };
    const url = (req.url ?? '/').split('?')[0] ?? '/';
    void (async () => {
      const paths: readonly string[] = Object.values(HTTP_PATHS);
      if (!paths.includes(url))
        throw new ServerlessDenial('not_found', `no such endpoint ${JSON.stringify(url.slice(0, 128))}`);
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        throw new ServerlessDenial('method_not_allowed', `use POST for ${url}`);
      }
      if (!limiter.allow(meta.clientAddress))
        throw new ServerlessDenial('rate_limited', 'too many requests from this client');
      const ct = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (ct !== 'application/json')
        throw new ServerlessDenial('unsupported_media_type', 'content-type must be application/json');
      const body = await readBody(req, maxBodyBytes);
      switch (url) {
        case HTTP_PATHS.x509Svid: {
          const b = parseJsonObject(body, ['attestations', 'csr']);
          const csr = decodeCsr(b.csr);
          const g = await service.mintX509Svid(
            { attestations: b.attestations, ...(csr === undefined ? {} : { csr }) },
            meta,
          );
          send(res, 200, {
            spiffe_id: g.spiffeId.toString(),
            x509_svid: g.chain.map((d) => pem(d)).join(''),
            ...(g.privateKey === undefined
              ? {}
              : { x509_svid_key: g.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }),
            bundle: g.bundle.map((c) => c.toString()).join(''),
            expires_at: Math.floor(g.expiresAt.getTime() / 1000),
          });
          return;
        }
        case HTTP_PATHS.jwtSvid: {
          const b = parseJsonObject(body, ['attestations', 'audience']);
          const g = await service.mintJwtSvid({ attestations: b.attestations, audience: b.audience }, meta);
          send(res, 200, {
            spiffe_id: g.spiffeId.toString(),
            token: g.token,
            expires_at: Math.floor(g.expiresAt.getTime() / 1000),
          });
          return;
        }
        default: {
          const b = parseJsonObject(body, ['attestations']);
          const g = await service.fetchBundle({ attestations: b.attestations }, meta);
          send(res, 200, {
            trust_domain: g.bundle.trustDomain.name,
            x509_bundle: g.bundle.x509Bundle().marshal(),
            jwt_bundle: g.bundle.jwtBundle().marshal(),
          });
        }
      }
    })().catch((err: unknown) => {
      const d = err instanceof ServerlessDenial ? err : new ServerlessDenial('internal', 'internal error');
      // Denials raised by the service are already audited; the front end's own are audited here.
      service.auditDenial(method(url), meta, d);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (d.code === 'too_large') res.setHeader('connection', 'close');
      send(res, d.status, { code: d.code, message: d.message });
      if (d.code === 'too_large') req.destroy();
    });
  };
}
