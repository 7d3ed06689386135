/**
 * Wiring of the serverless subsystem from the server configuration's `serverless` section: the watched policy
 * file, the JWKS registry, the replay cache, the service and its listener.
 *
 * @module
 */
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { CaManager } from '../ca/ca-manager.js';
import { startServerlessEndpoint } from './endpoint.js';
import { JwksRegistry } from './jwks.js';
import { PolicyFile } from './policy-file.js';
import { createServerlessService } from './service.js';
import type { ServerlessClock, ServerlessLogger } from './types.js';

/** The `serverless` section of the server configuration, as validated. */
export interface ServerlessSettings {
  readonly bindAddress: string;
  readonly bindPort: number;
  readonly tlsCertFile?: string | undefined;
  readonly tlsKeyFile?: string | undefined;
  readonly policyFile: string;
  readonly rateLimit: number;
  readonly maxBodyBytes: number;
}

/** What {@link startServerless} needs from the server. */
export interface StartServerlessOptions {
  readonly settings: ServerlessSettings;
  readonly ca: Pick<CaManager, 'signX509Svid' | 'mintJwtSvid' | 'bundle' | 'signServerSvid'>;
  readonly trustDomain: TrustDomain;
  readonly logger: ServerlessLogger;
  readonly clock?: ServerlessClock;
  readonly x509SvidTtlSeconds: number;
  readonly jwtSvidTtlSeconds: number;
  /** Overrides the configured port (tests use 0). */
  readonly bindPort?: number;
}

/** The running subsystem. */
export interface RunningServerless {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Loads the policies and starts the serverless listener.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the policy file or the certificate files are unusable
 * @example
 * ```ts
 * if (config.serverless) await startServerless({ settings: config.serverless, ca, trustDomain, logger, ... });
 * ```
 */
export async function startServerless(opts: StartServerlessOptions): Promise<RunningServerless> {
  const clock = opts.clock ?? { now: () => new Date() };
  const s = opts.settings;
  const jwks = new JwksRegistry({ clock });
  const policies = await PolicyFile.load({
    path: s.policyFile,
    trustDomain: opts.trustDomain,
    jwks,
    clock,
    logger: opts.logger,
  });
  const service = createServerlessService({
    ca: opts.ca,
    trustDomain: opts.trustDomain,
    policies,
    logger: opts.logger,
    clock,
    x509SvidTtlSeconds: opts.x509SvidTtlSeconds,
    jwtSvidTtlSeconds: opts.jwtSvidTtlSeconds,
  });
  try {
    const ep = await startServerlessEndpoint({
      service,
      bindAddress: s.bindAddress,
      bindPort: opts.bindPort ?? s.bindPort,
      tls:
        s.tlsCertFile !== undefined && s.tlsKeyFile !== undefined
          ? { certFile: s.tlsCertFile, keyFile: s.tlsKeyFile }
          : { serverSvid: opts.ca, ttlSeconds: Math.min(3600, opts.x509SvidTtlSeconds) },
      rateLimit: s.rateLimit,
      maxBodyBytes: s.maxBodyBytes,
      logger: opts.logger,
      clock,
    });
    return {
      port: ep.port,
      async close() {
        policies.close();
        await ep.close();
      },
    };
  } catch (err) {
    policies.close();
    throw err;
  }
}
