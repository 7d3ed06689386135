/**
 * Remote attestation client: for workloads that cannot reach a Workload API socket (serverless functions).
 * It presents platform attestations (identity tokens) to a Tessera server's serverless API over HTTPS
 * (`POST /v1/remote/x509-svid`, `/v1/remote/jwt-svid`, `/v1/remote/bundle`), keeps its private key (it sends a
 * CSR), and re-attests at half of each X509-SVID's lifetime. Used by `X509Source.create({ remote })` and
 * `JwtSource.create({ remote })`.
 *
 * @module
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { request } from 'node:https';
import { BundleSet, JwtBundle, X509Bundle } from '../bundle/index.js';
import { SpiffeError, WorkloadApiError } from '../errors.js';
import { SpiffeId } from '../spiffeid/index.js';
import { JwtSvid, type JwtSvidParams, X509Svid } from '../svid/index.js';
import { abortableSleep, type BackoffStrategy, linearBackoff } from './backoff.js';
import type { JwtBundlesWatcher, WatchOptions, X509ContextWatcher } from './client.js';
import type { X509Context } from './x509-context.js';

/** One platform proof sent to the server: the attestor type and its evidence (an identity token). */
export interface Attestation {
  /** Attestor type: `gcp_iit`, `aws_token` or `azure_msi`. */
  readonly type: string;
  /** The platform's identity token, minted for the server's audience (by default `spiffe://<trust domain>`). */
  readonly evidence: string;
}

/** Options of the remote mode of {@link X509Source} and {@link JwtSource}. */
export interface RemoteSourceOptions {
  /** Base URL of the serverless API, e.g. `https://spiffe.example.org:8444`. */
  readonly address: string;
  /** Produces fresh attestations; called before every request (tokens are accepted once). */
  readonly attestations: () => Promise<readonly Attestation[]> | readonly Attestation[];
  /** PEM CA certificates that authenticate the server (default: the system store). */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /**
   * SPIFFE ID the server certificate must carry (for servers serving their own SVID); the host name is then not
   * checked. Use with `ca` set to the trust bundle.
   */
  readonly serverId?: string;
  /** Timeout of one request in ms. Default 30,000. */
  readonly timeoutMs?: number;
  /** How often the JWT bundle is refreshed, in ms. Default 300,000. */
  readonly bundleRefreshMs?: number;
  /** Retry delays after failures. Default linear 1 s steps up to 30 s. */
  readonly backoff?: BackoffStrategy;
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else len = Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

/**
 * Builds a PKCS#10 request with an empty subject for a P-256 key (the server decides the SPIFFE ID).
 *
 * @internal
 */
export function buildP256Csr(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = tlv(
    0x30,
    Buffer.concat([
      Buffer.from([0x02, 0x01, 0x00]),
      Buffer.from([0x30, 0x00]),
      spki,
      Buffer.from([0xa0, 0x00]),
    ]),
  );
  const alg = tlv(0x30, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
  const sig = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return tlv(0x30, Buffer.concat([info, alg, tlv(0x03, Buffer.concat([Buffer.from([0]), sig]))]));
}

function invalidResponse(message: string, cause?: unknown): WorkloadApiError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new WorkloadApiError(
    'ERR_WORKLOADAPI_INVALID_RESPONSE',
    `remote: ${message}${detail}`,
    cause === undefined ? undefined : { cause },
  );
}

function isTerminal(err: SpiffeError): boolean {
  return err.code === 'ERR_WORKLOADAPI_PERMISSION_DENIED' || err.code === 'ERR_WORKLOADAPI_INVALID_ARGUMENT';
}

function stringField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v === '') throw invalidResponse(`response has no ${name}`);
  return v;
}

/**
 * A client of a Tessera server's serverless API with the watch/fetch shape of {@link WorkloadApiClient}, so
 * the sources can use either.
 *
 * @example
 * ```ts
 * const client = new RemoteAttestationClient({ address, attestations: () => [{ type: 'gcp_iit', evidence }] });
 * ```
 */
export class RemoteAttestationClient {
  readonly #opts: RemoteSourceOptions;
  readonly #base: URL;
  readonly #closed = new AbortController();

  /**
   * @throws {TypeError} when `address` is not an https URL or `attestations` is not a function
   */
  constructor(options: RemoteSourceOptions) {
    let base: URL;
    try {
      base = new URL(options.address);
    } catch {
      throw new TypeError(`remote: address ${JSON.stringify(options.address)} is not a URL`);
    }
    if (base.protocol !== 'https:')
      throw new TypeError(`remote: address ${JSON.stringify(options.address)} must be https`);
    if (typeof options.attestations !== 'function')
      throw new TypeError('remote: attestations must be a function');
    if (options.serverId !== undefined) SpiffeId.fromString(options.serverId);
    this.#opts = options;
    this.#base = base;
  }

  async #post(
    path: string,
    body: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    let attestations: readonly Attestation[];
    try {
      attestations = await this.#opts.attestations();
    } catch (err) {
      throw new WorkloadApiError(
        'ERR_WORKLOADAPI_UNAVAILABLE',
        `remote: attestations could not be produced: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const text = JSON.stringify({
      attestations: attestations.map((a) => ({ type: a.type, evidence: a.evidence })),
      ...body,
    });
    const url = new URL(path, this.#base);
    const serverId = this.#opts.serverId;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent: false,
          timeout: this.#opts.timeoutMs ?? 30_000,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
          ...(this.#opts.ca === undefined
            ? {}
            : { ca: this.#opts.ca as string | Buffer | (string | Buffer)[] }),
          ...(serverId === undefined
            ? {}
            : {
                checkServerIdentity: (_host: string, cert: { subjectaltname?: string }) => {
                  const uris = (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:'));
                  return uris.length === 1 && uris[0] === `URI:${serverId}`
                    ? undefined
                    : new Error(`remote: server certificate is not for ${JSON.stringify(serverId)}`);
                },
              }),
          ...(signal === undefined ? {} : { signal }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > 4 << 20) req.destroy(invalidResponse('response is too large'));
            else chunks.push(c);
          });
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              parsed = undefined;
            }
            const obj =
              typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
            const status = res.statusCode ?? 0;
            if (status === 200 && obj !== undefined) {
              resolve(obj);
              return;
            }
            const reason =
              obj !== undefined ? `${String(obj.code)}: ${String(obj.message)}` : `status ${status}`;
            if (status === 403)
              reject(
                new WorkloadApiError(
                  'ERR_WORKLOADAPI_PERMISSION_DENIED',
                  `remote: attestation denied (${reason})`,
                ),
              );
            else if (status === 400)
              reject(
                new WorkloadApiError(
                  'ERR_WORKLOADAPI_INVALID_ARGUMENT',
                  `remote: request refused (${reason})`,
                ),
              );
            else if (status === 200) reject(invalidResponse('response is not a JSON object'));
            else
              reject(
                new WorkloadApiError('ERR_WORKLOADAPI_UNAVAILABLE', `remote: server answered ${reason}`),
              );
          });
          res.on('error', (err) =>
            reject(
              new WorkloadApiError('ERR_WORKLOADAPI_UNAVAILABLE', `remote: ${err.message}`, { cause: err }),
            ),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', (err) => {
        reject(
          err instanceof SpiffeError
            ? err
            : new WorkloadApiError('ERR_WORKLOADAPI_UNAVAILABLE', `remote: ${err.message}`, { cause: err }),
        );
      });
      req.end(text);
    });
  }

  /**
   * Attests and fetches an X509-SVID for a freshly generated key (the key never leaves the process).
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_PERMISSION_DENIED when attestation is denied,
   *   ERR_WORKLOADAPI_INVALID_ARGUMENT on a refused request, ERR_WORKLOADAPI_UNAVAILABLE on transport failures,
   *   ERR_WORKLOADAPI_INVALID_RESPONSE on a malformed answer
   */
  async fetchX509Context(options: { signal?: AbortSignal } = {}): Promise<X509Context> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildP256Csr(privateKey, publicKey).toString('base64');
    const body = await this.#post('/v1/remote/x509-svid', { csr }, options.signal);
    try {
      const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const svid = X509Svid.parse(stringField(body, 'x509_svid'), keyPem);
      if (svid.id.toString() !== body.spiffe_id)
        throw invalidResponse(`spiffe_id ${JSON.stringify(body.spiffe_id)} does not match the certificate`);
      const bundles = new BundleSet();
      bundles.add(X509Bundle.parse(svid.id.trustDomain, stringField(body, 'bundle')));
      return { svids: [svid], bundles };
    } catch (err) {
      if (err instanceof WorkloadApiError) throw err;
      throw invalidResponse('invalid X509-SVID response', err);
    }
  }

  /**
   * Attests and fetches JWT-SVIDs (the server mints one per request).
   *
   * @throws {WorkloadApiError} as {@link fetchX509Context}; ERR_WORKLOADAPI_INVALID_RESPONSE when `subject` is set
   *   and differs from the attested identity
   */
  async fetchJwtSvids(params: JwtSvidParams, options: { signal?: AbortSignal } = {}): Promise<JwtSvid[]> {
    const audience = [params.audience, ...(params.extraAudiences ?? [])];
    const body = await this.#post('/v1/remote/jwt-svid', { audience }, options.signal);
    let svid: JwtSvid;
    try {
      svid = JwtSvid.parseInsecure(stringField(body, 'token'), audience);
    } catch (err) {
      throw invalidResponse('invalid JWT-SVID response', err);
    }
    if (svid.id.toString() !== body.spiffe_id)
      throw invalidResponse(`spiffe_id ${JSON.stringify(body.spiffe_id)} does not match the token`);
    if (params.subject !== undefined && !params.subject.equals(svid.id)) {
      throw invalidResponse(
        `attested identity ${JSON.stringify(svid.id.toString())} is not the requested subject`,
      );
    }
    return [svid];
  }

  /** Attests and fetches one JWT-SVID. @throws {WorkloadApiError} as {@link fetchJwtSvids} */
  async fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid> {
    const [svid] = await this.fetchJwtSvids(params);
    if (svid === undefined) throw invalidResponse('no JWT-SVID in response');
    return svid;
  }

  /** Attests and fetches the trust domain's JWT bundle. @throws {WorkloadApiError} as {@link fetchX509Context} */
  async fetchJwtBundles(options: { signal?: AbortSignal } = {}): Promise<BundleSet> {
    const body = await this.#post('/v1/remote/bundle', {}, options.signal);
    try {
      const set = new BundleSet();
      const td = SpiffeId.fromString(`spiffe://${stringField(body, 'trust_domain')}`).trustDomain;
      set.add(JwtBundle.parse(td, stringField(body, 'jwt_bundle')));
      return set;
    } catch (err) {
      if (err instanceof WorkloadApiError) throw err;
      throw invalidResponse('invalid bundle response', err);
    }
  }

  async #loop<T>(
    signal: AbortSignal | undefined,
    fetch: (signal: AbortSignal) => Promise<T>,
    deliver: (value: T) => void,
    onError: ((err: SpiffeError) => void) | undefined,
    nextDelay: (value: T) => number,
  ): Promise<void> {
    const stop = AbortSignal.any([this.#closed.signal, ...(signal === undefined ? [] : [signal])]);
    const backoff = (this.#opts.backoff ?? linearBackoff()).newBackoff();
    let delivered = false;
    while (!stop.aborted) {
      try {
        const value = await fetch(stop);
        if (stop.aborted) return;
        deliver(value);
        delivered = true;
        backoff.reset();
        await abortableSleep(nextDelay(value), stop);
      } catch (err) {
        if (stop.aborted) return;
        const e =
          err instanceof SpiffeError
            ? err
            : new WorkloadApiError('ERR_WORKLOADAPI_UNAVAILABLE', `remote: ${(err as Error).message}`);
        onError?.(e);
        // Before the first identity a denial is final (a misconfigured function should fail loudly); after it,
        // the last good state stays and attestation is retried.
        if (!delivered && isTerminal(e)) throw e;
        await abortableSleep(backoff.next(), stop);
      }
    }
  }

  /**
   * Keeps an X.509 context current: attests now, then again at half of each SVID's lifetime (retrying with
   * backoff on failure while the last SVID stays in use).
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_PERMISSION_DENIED / _INVALID_ARGUMENT when the first attestation is refused
   */
  watchX509Context(watcher: X509ContextWatcher, options: WatchOptions = {}): Promise<void> {
    return this.#loop(
      options.signal,
      (signal) => this.fetchX509Context({ signal }),
      (ctx) => watcher.onX509ContextUpdate(ctx),
      watcher.onX509ContextWatchError?.bind(watcher),
      (ctx) => {
        const leaf = ctx.svids[0]?.certificates[0];
        if (leaf === undefined) return 1000;
        const from = Date.parse(leaf.validFrom);
        const to = Date.parse(leaf.validTo);
        return Math.max(1000, from + (to - from) / 2 - Date.now());
      },
    );
  }

  /**
   * Keeps the JWT bundle current (refreshed every `bundleRefreshMs`).
   *
   * @throws {WorkloadApiError} as {@link watchX509Context}
   */
  watchJwtBundles(watcher: JwtBundlesWatcher, options: WatchOptions = {}): Promise<void> {
    return this.#loop(
      options.signal,
      (signal) => this.fetchJwtBundles({ signal }),
      (set) => watcher.onJwtBundlesUpdate(set),
      watcher.onJwtBundlesWatchError?.bind(watcher),
      () => this.#opts.bundleRefreshMs ?? 300_000,
    );
  }

  /** Stops every watch. Idempotent. */
  close(): void {
    this.#closed.abort();
  }
}

/**
 * The remote client of a source's options, refusing options that contradict `remote`.
 *
 * @throws {TypeError} when `client`, `address` or `clientOptions` are also set
 * @internal
 */
export function remoteSourceClient(options: {
  readonly remote: RemoteSourceOptions;
  readonly client?: unknown;
  readonly address?: string;
  readonly clientOptions?: unknown;
}): { client: RemoteAttestationClient; owned: true } {
  if (options.client !== undefined || options.address !== undefined || options.clientOptions !== undefined) {
    throw new TypeError('workloadapi: pass either remote or client/address/clientOptions, not both');
  }
  return { client: new RemoteAttestationClient(options.remote), owned: true };
}
