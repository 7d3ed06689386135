/**
 * The helper itself: fetches or watches SVIDs and bundles over the Workload API (or, in remote-attestation
 * mode, from a Tessera server's serverless API), writes them to files and
 * notifies the program that uses them.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BundleSet } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import type { JwtSvidParams } from '@tessera/spiffe/svid';
import { JwtSvid } from '@tessera/spiffe/svid';
import {
  abortableSleep,
  type JwtBundlesWatcher,
  type Logger,
  type WatchOptions,
  WorkloadApiClient,
  type X509Context,
  type X509ContextWatcher,
} from '@tessera/spiffe/workloadapi';
import type { HelperConfig, JwtSvidOutput } from './config/config.js';
import { pickSvid, renderJwtBundles, renderX509Files, writeFileAtomic } from './files.js';
import { type ExitStatus, ManagedProcess, signalPidFile } from './process.js';
import { createRemoteClient } from './remote.js';

/**
 * What the helper needs of its identity provider: the Workload API client, or in remote-attestation mode the
 * serverless-API client (same shape).
 */
export interface HelperClient {
  /** Fetches the X.509 context once. */
  fetchX509Context(options?: { signal?: AbortSignal }): Promise<X509Context>;
  /** Fetches the JWT bundles once. */
  fetchJwtBundles(options?: { signal?: AbortSignal }): Promise<BundleSet>;
  /** Fetches JWT-SVIDs for an audience. */
  fetchJwtSvids(params: JwtSvidParams, options?: { signal?: AbortSignal }): Promise<JwtSvid[]>;
  /** Follows X.509 context updates until the signal aborts. */
  watchX509Context(watcher: X509ContextWatcher, options?: WatchOptions): Promise<void>;
  /** Follows JWT bundle updates until the signal aborts. */
  watchJwtBundles(watcher: JwtBundlesWatcher, options?: WatchOptions): Promise<void>;
  /** Ends every call and watch. */
  close(): void;
}

const noopLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** The program `tessera-helper exec` starts once the credentials are in place. */
export interface ExecTarget {
  /** Program. */
  readonly cmd: string;
  /** Arguments. */
  readonly args: readonly string[];
  /** Extra environment for it. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Options of {@link Helper}. */
export interface HelperOptions {
  /** Where to log; default nothing. Keys and tokens are never logged. */
  readonly logger?: Logger;
  /** Clock; default the system clock. */
  readonly now?: () => Date;
  /** Waits (JWT refresh, retry backoff); default a timer. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Exec mode: start this program instead of `cmd`, and only signal it (never restart it) on updates. */
  readonly exec?: ExecTarget;
  /** Shortest wait between JWT-SVID refreshes; default 1 s. */
  readonly minJwtRefreshMs?: number;
}

/**
 * When to refresh a JWT-SVID: at half of its remaining lifetime, as spiffe-helper, and never sooner than
 * `minMs`.
 *
 * @example
 * ```ts
 * jwtRefreshDelay(new Date('2030-01-01T00:10:00Z'), new Date('2030-01-01T00:00:00Z')); // 300000
 * ```
 */
export function jwtRefreshDelay(expiry: Date, now: Date, minMs = 1000): number {
  return Math.max(minMs, Math.floor((expiry.getTime() - now.getTime()) / 2));
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Keeps SVIDs, keys and bundles from the Workload API on disk for a program that reads files.
 *
 * One-shot ({@link runOnce}): fetch everything once, write it, signal the PID file's process, return.
 * Daemon ({@link start}): write everything, then start `cmd` (or the exec target), then follow X.509
 * context and JWT bundle updates and refresh JWT-SVIDs at half-life, rewriting the files and signalling
 * the program (`renew_signal`) or restarting it (no signal set) after each X.509 update.
 *
 * @example
 * ```ts
 * const helper = new Helper(loadHelperConfig('helper.conf'), { logger });
 * await helper.start();
 * // … later
 * await helper.stop();
 * ```
 */
export class Helper {
  readonly #config: HelperConfig;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #exec: ExecTarget | undefined;
  readonly #minJwtRefreshMs: number;
  readonly #stop = new AbortController();
  #client: HelperClient | undefined;
  #process: ManagedProcess | undefined;
  #health: Server | undefined;
  #queue: Promise<void> = Promise.resolve();
  #initialized = false;
  #fatal: SpiffeError | undefined;
  #jwtBundles: BundleSet | undefined;
  #jwtBundlesWaiters: (() => void)[] = [];
  /** Outputs whose latest write failed or has not happened yet. */
  readonly #pending = new Set<string>();
  #tasks: Promise<unknown>[] = [];
  #fatalListeners: ((err: SpiffeError) => void)[] = [];
  #execExit: Promise<ExitStatus> | undefined;

  constructor(config: HelperConfig, options: HelperOptions = {}) {
    this.#config = config;
    this.#log = options.logger ?? noopLogger;
    this.#now = options.now ?? (() => new Date());
    this.#sleep = options.sleep ?? abortableSleep;
    this.#exec = options.exec;
    this.#minJwtRefreshMs = options.minJwtRefreshMs ?? 1000;
    if (config.x509) this.#pending.add('x509');
    if (config.jwtBundleFile) this.#pending.add('jwt_bundle');
    for (const j of config.jwtSvids) this.#pending.add(`jwt_svid:${j.file}`);
  }

  /** Ready: every output has been written and its latest write succeeded. */
  get ready(): boolean {
    return this.#initialized && this.#pending.size === 0 && this.#fatal === undefined;
  }

  /** Live: no watch has failed for good. */
  get live(): boolean {
    return this.#fatal === undefined && !this.#stop.signal.aborted;
  }

  /** Address of the health listener, when enabled and started. */
  get healthAddress(): AddressInfo | undefined {
    const a = this.#health?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /** PID of the program started by `cmd` or exec mode, while it runs. */
  get childPid(): number | undefined {
    return this.#process?.pid;
  }

  /** In exec mode, resolves with the program's exit status once it has started and exited. */
  get execExit(): Promise<ExitStatus> | undefined {
    return this.#execExit;
  }

  /** Registers a callback for a terminal failure in daemon mode (a watch that cannot go on). */
  onFatal(fn: (err: SpiffeError) => void): void {
    this.#fatalListeners.push(fn);
  }

  #newClient(): HelperClient {
    if (this.#client !== undefined) return this.#client;
    const remote = this.#config.remoteAttestation;
    const address = this.#config.agentAddress;
    if (remote !== undefined) {
      this.#client = createRemoteClient(remote, { signal: this.#stop.signal });
    } else if (address !== undefined) {
      this.#client = new WorkloadApiClient({ address, logger: this.#log, now: this.#now });
    } else {
      throw new TypeError('helper: the configuration has neither agent_address nor remote_attestation');
    }
    return this.#client;
  }

  /**
   * One-shot mode: fetches the X.509 context, JWT bundles and JWT-SVIDs once, writes every configured file,
   * signals the PID file's process if configured, and returns.
   *
   * @throws {SpiffeError} WorkloadApiError codes when the Workload API fails; ERR_CONFIG_INVALID when the
   *   hinted SVID is missing; ERR_JWTSVID_* when a token does not validate against the JWT bundles.
   * @example
   * ```ts
   * await new Helper(config).runOnce();
   * ```
   */
  async runOnce(): Promise<void> {
    const client = this.#newClient();
    try {
      if (this.#config.x509) await this.#writeX509(await client.fetchX509Context());
      if (this.#config.jwtBundleFile || this.#config.jwtSvids.length > 0) {
        await this.#writeJwtBundles(await client.fetchJwtBundles());
      }
      for (const j of this.#config.jwtSvids) await this.#refreshJwtSvid(j);
      this.#initialized = true;
      if (this.#config.pidFileName && this.#config.renewSignal) {
        await this.#signalPidFile(this.#config.renewSignal);
      }
    } finally {
      client.close();
      this.#client = undefined;
    }
  }

  /**
   * Daemon mode: starts the health listener (if enabled) and the watches, resolves once every configured
   * file has been written and `cmd` (or the exec target) has started.
   *
   * @throws {Error} when the health listener cannot bind or the program cannot be started.
   * @example
   * ```ts
   * await helper.start();
   * ```
   */
  async start(): Promise<void> {
    const client = this.#newClient();
    const signal = this.#stop.signal;
    if (this.#config.healthChecks.listenerEnabled) await this.#startHealth();
    const initial: Promise<void>[] = [];
    if (this.#config.x509) {
      initial.push(
        new Promise<void>((resolve) => {
          this.#track(
            client.watchX509Context(
              {
                onX509ContextUpdate: (ctx) => {
                  this.#enqueue(async () => {
                    const ok = await this.#writeX509(ctx).then(
                      () => true,
                      (err: unknown) => {
                        this.#log.error('Unable to write X.509 files', { err: errMessage(err) });
                        return false;
                      },
                    );
                    if (!ok) return;
                    if (this.#initialized) await this.#notify('x509');
                    resolve();
                  });
                },
                onX509ContextWatchError: (err) =>
                  this.#log.warn('X.509 context watch failed', { err: err.message }),
              },
              { signal },
            ),
            'X.509 context watch',
          );
        }),
      );
    }
    const needJwtBundles = this.#config.jwtBundleFile !== undefined || this.#config.jwtSvids.length > 0;
    if (needJwtBundles) {
      initial.push(
        new Promise<void>((resolve) => {
          this.#track(
            client.watchJwtBundles(
              {
                onJwtBundlesUpdate: (set) => {
                  this.#enqueue(async () => {
                    await this.#writeJwtBundles(set).then(resolve, (err: unknown) =>
                      this.#log.error('Unable to write the JWT bundle file', { err: errMessage(err) }),
                    );
                  });
                },
                onJwtBundlesWatchError: (err) =>
                  this.#log.warn('JWT bundle watch failed', { err: err.message }),
              },
              { signal },
            ),
            'JWT bundle watch',
          );
        }),
      );
    }
    for (const j of this.#config.jwtSvids) {
      initial.push(
        new Promise<void>((resolve) => {
          this.#track(this.#jwtLoop(j, resolve), 'JWT-SVID refresh');
        }),
      );
    }
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    await Promise.race([Promise.all(initial), stopped]);
    if (signal.aborted) return;
    await this.#enqueue(async () => {
      this.#initialized = true;
      await this.#startProcess();
    });
    this.#log.info('Credentials in place', { cert_dir: this.#config.certDir });
  }

  /**
   * Stops watching, stops the program started by `cmd` (SIGTERM, then SIGKILL after 10 s; not the exec
   * target, which the caller owns) and the health listener. Idempotent.
   *
   * @example
   * ```ts
   * await helper.stop();
   * ```
   */
  async stop(): Promise<void> {
    if (!this.#stop.signal.aborted) this.#stop.abort();
    this.#client?.close();
    await Promise.allSettled(this.#tasks);
    await this.#queue;
    if (this.#process && !this.#exec) await this.#process.stop();
    if (this.#health) {
      const h = this.#health;
      this.#health = undefined;
      await new Promise<void>((resolve) => h.close(() => resolve()));
    }
  }

  #track(p: Promise<unknown>, what: string): void {
    this.#tasks.push(
      p.catch((err: unknown) => {
        if (this.#stop.signal.aborted) return;
        const e =
          err instanceof SpiffeError
            ? err
            : new SpiffeError('ERR_WORKLOADAPI_FAILED', `helper: ${what} failed: ${errMessage(err)}`);
        this.#fatal = e;
        this.#log.error(`${what} stopped`, { err: e.message });
        for (const fn of this.#fatalListeners) fn(e);
      }),
    );
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn).catch((err: unknown) => {
      this.#log.error('Update failed', { err: errMessage(err) });
    });
    this.#queue = next;
    return next;
  }

  async #writeX509(ctx: X509Context): Promise<void> {
    const x509 = this.#config.x509!;
    this.#pending.add('x509');
    const svid = pickSvid(ctx.svids, this.#config.hint);
    const files = renderX509Files(svid, ctx.bundles, this.#config);
    // Bundle first (new authorities are trusted before a certificate from them is presented), then key
    // and certificate.
    await writeFileAtomic(x509.bundleFile, files.bundle, this.#config.certFileMode);
    await writeFileAtomic(x509.keyFile, files.privateKey, this.#config.keyFileMode);
    await writeFileAtomic(x509.svidFile, files.certificates, this.#config.certFileMode);
    this.#pending.delete('x509');
    const leaf = svid.certificates[0]!;
    this.#log.info('X.509 certificates updated', {
      spiffe_id: svid.id.toString(),
      serial: leaf.serialNumber,
      expires_at: new Date(leaf.validTo).toISOString(),
    });
  }

  async #writeJwtBundles(set: BundleSet): Promise<void> {
    this.#jwtBundles = set;
    for (const w of this.#jwtBundlesWaiters.splice(0)) w();
    if (!this.#config.jwtBundleFile) return;
    this.#pending.add('jwt_bundle');
    await writeFileAtomic(this.#config.jwtBundleFile, renderJwtBundles(set), this.#config.jwtBundleFileMode);
    this.#pending.delete('jwt_bundle');
    this.#log.info('JWT bundle updated', { trust_domains: set.trustDomains().map((t) => t.name) });
  }

  /** Fetches, validates and writes one JWT-SVID; returns it. */
  async #refreshJwtSvid(out: JwtSvidOutput): Promise<JwtSvid> {
    const key = `jwt_svid:${out.file}`;
    this.#pending.add(key);
    const client = this.#newClient();
    const svids = await client.fetchJwtSvids(
      { audience: out.audience, extraAudiences: [...out.extraAudiences] },
      { signal: this.#stop.signal },
    );
    const chosen = pickSvid(svids, this.#config.hint);
    const bundles = this.#jwtBundles;
    if (bundles === undefined) throw new TypeError('helper: JWT bundles are not known yet');
    // Fail closed, as spiffe-helper: a token that does not validate against the bundles is not written.
    const svid = await JwtSvid.parseAndValidate(chosen.marshal(), bundles, [out.audience], {
      now: this.#now(),
    });
    await writeFileAtomic(out.file, svid.marshal(), this.#config.jwtSvidFileMode);
    this.#pending.delete(key);
    this.#log.info('JWT-SVID updated', {
      spiffe_id: svid.id.toString(),
      audience: out.audience,
      expires_at: svid.expiry.toISOString(),
    });
    return svid;
  }

  async #waitForJwtBundles(signal: AbortSignal): Promise<void> {
    if (this.#jwtBundles !== undefined || signal.aborted) return;
    await new Promise<void>((resolve) => {
      this.#jwtBundlesWaiters.push(resolve);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  async #jwtLoop(out: JwtSvidOutput, onFirst: () => void): Promise<void> {
    const signal = this.#stop.signal;
    let retryMs = 1000;
    await this.#waitForJwtBundles(signal);
    while (!signal.aborted) {
      let delay: number;
      try {
        let svid: JwtSvid | undefined;
        await this.#enqueue(async () => {
          svid = await this.#refreshJwtSvid(out);
          if (this.#initialized && this.#config.renewOnJwtSvidUpdate) await this.#notify('jwt');
        });
        if (svid === undefined) throw new Error('refresh failed');
        onFirst();
        retryMs = 1000;
        delay = jwtRefreshDelay(svid.expiry, this.#now(), this.#minJwtRefreshMs);
      } catch {
        if (signal.aborted) return;
        delay = retryMs;
        retryMs = Math.min(retryMs * 2, 60_000);
      }
      try {
        await this.#sleep(delay, signal);
      } catch {
        return;
      }
    }
  }

  async #startProcess(): Promise<void> {
    const target =
      this.#exec ?? (this.#config.cmd ? { cmd: this.#config.cmd, args: this.#config.cmdArgs } : undefined);
    if (target === undefined) return;
    this.#process = new ManagedProcess({
      cmd: target.cmd,
      args: target.args,
      ...(target.env ? { env: target.env } : {}),
    });
    await this.#process.start();
    if (this.#exec) this.#execExit = this.#process.wait();
    this.#log.info('Process started', { cmd: target.cmd, pid: this.#process.pid });
  }

  async #signalPidFile(sig: NodeJS.Signals): Promise<void> {
    const file = this.#config.pidFileName!;
    try {
      const pid = await signalPidFile(file, sig);
      this.#log.info('Signalled process', { pid, signal: sig, pid_file: file });
    } catch (err) {
      this.#log.error('Unable to signal the pid file process', { pid_file: file, err: errMessage(err) });
    }
  }

  /** Tells the program about new files: signal, or (X.509 updates of `cmd` without a signal) restart. */
  async #notify(what: 'x509' | 'jwt'): Promise<void> {
    const sig = this.#config.renewSignal;
    const proc = this.#process;
    if (proc) {
      if (this.#exec) {
        if (sig && proc.signal(sig)) this.#log.info('Signalled process', { pid: proc.pid, signal: sig });
      } else if (!proc.running) {
        if (what === 'x509') {
          await proc
            .start()
            .catch((err: unknown) => this.#log.error('Unable to start process', { err: errMessage(err) }));
        }
      } else if (sig) {
        proc.signal(sig);
        this.#log.info('Signalled process', { pid: proc.pid, signal: sig });
      } else if (what === 'x509') {
        this.#log.info('Restarting process', { pid: proc.pid });
        await proc
          .restart()
          .catch((err: unknown) => this.#log.error('Unable to restart process', { err: errMessage(err) }));
      }
    }
    if (this.#config.pidFileName && sig) await this.#signalPidFile(sig);
  }

  async #startHealth(): Promise<void> {
    const hc = this.#config.healthChecks;
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      let ok: boolean;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === hc.livenessPath) ok = this.live;
      else if (path === hc.readinessPath) ok = this.ready;
      else {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.stringify({ live: this.live, ready: this.ready, pending: [...this.#pending].sort() });
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(hc.bindPort, hc.bindAddress, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#health = server;
    const a = server.address();
    this.#log.info('Health listener started', {
      address: typeof a === 'object' && a ? a.address : hc.bindAddress,
      port: typeof a === 'object' && a ? a.port : hc.bindPort,
    });
  }
}
