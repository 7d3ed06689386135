/**
 * The serverless attestation service: turns a list of platform attestations into an X509-SVID, a JWT-SVID or the
 * trust bundle when every required attestor of at least one policy is satisfied. Transport-neutral (the HTTPS
 * and gRPC front ends call it); every grant and denial is audit-logged without tokens.
 *
 * @module
 */
import { generateKeyPairSync, type KeyObject, type X509Certificate } from 'node:crypto';
import { parseCsr } from '@tessera/common/x509';
import type { SpiffeBundle } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import type { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import type { CaManager } from '../ca/ca-manager.js';
import type { AttestorFactory } from './attestors/attestor.js';
import { ATTESTOR_FACTORIES, type ServerlessPolicy } from './policy.js';
import type { PolicySource } from './policy-file.js';
import { ReplayCache } from './replay.js';
import {
  type AttestedAttributes,
  type AttestorResult,
  type ServerlessClock,
  ServerlessDenial,
  type ServerlessLogger,
} from './types.js';

/** One platform proof: the attestor type and its evidence (a token). */
export interface AttestationInput {
  readonly type: string;
  readonly evidence: string;
}

/** Who is calling, for rate limits and the audit log. */
export interface RequestMeta {
  readonly clientAddress: string;
  readonly transport: 'http' | 'grpc';
}

/** The CA operations the service uses. */
export type ServerlessCa = Pick<CaManager, 'signX509Svid' | 'mintJwtSvid' | 'bundle'>;

/** Configuration of {@link createServerlessService}. */
export interface ServerlessServiceConfig {
  readonly ca: ServerlessCa;
  readonly trustDomain: TrustDomain;
  /** The policies: a fixed list or a live source (a watched {@link PolicyFile}). */
  readonly policies: PolicySource | readonly ServerlessPolicy[];
  readonly logger: ServerlessLogger;
  readonly clock?: ServerlessClock;
  /** Lifetime of issued X509-SVIDs. Default 3600. */
  readonly x509SvidTtlSeconds?: number;
  /** Lifetime of issued JWT-SVIDs. Default 300. */
  readonly jwtSvidTtlSeconds?: number;
  /** Replay cache (default: a new one on the clock). */
  readonly replayCache?: ReplayCache;
  /** Known attestor types (default the built-ins), for the unknown-type denial. */
  readonly factories?: ReadonlyMap<string, AttestorFactory>;
}

/** A granted X509-SVID. */
export interface X509SvidGrant {
  readonly spiffeId: SpiffeId;
  /** DER certificates, leaf first. */
  readonly chain: readonly Buffer[];
  /** The generated private key, only when no CSR was sent. */
  readonly privateKey: KeyObject | undefined;
  /** The trust domain's X.509 authorities. */
  readonly bundle: readonly X509Certificate[];
  readonly expiresAt: Date;
  readonly policy: string;
}

/** A granted JWT-SVID. */
export interface JwtSvidGrant {
  readonly spiffeId: SpiffeId;
  readonly token: string;
  readonly expiresAt: Date;
  readonly policy: string;
}

/** The trust domain's bundle, for an attested caller. */
export interface BundleGrant {
  readonly spiffeId: SpiffeId;
  readonly bundle: SpiffeBundle;
  readonly policy: string;
}

/** The serverless attestation service. */
export interface ServerlessService {
  readonly trustDomain: TrustDomain;
  /**
   * Attests and issues an X509-SVID (for the CSR's key, or a generated one).
   *
   * @throws {ServerlessDenial} with the HTTP status and code of the refusal
   */
  mintX509Svid(req: { attestations: unknown; csr?: Uint8Array }, meta: RequestMeta): Promise<X509SvidGrant>;
  /**
   * Attests and mints a JWT-SVID for the audiences.
   *
   * @throws {ServerlessDenial} with the HTTP status and code of the refusal
   */
  mintJwtSvid(req: { attestations: unknown; audience: unknown }, meta: RequestMeta): Promise<JwtSvidGrant>;
  /**
   * Attests and returns the trust bundle (X.509 and JWT authorities).
   *
   * @throws {ServerlessDenial} with the HTTP status and code of the refusal
   */
  fetchBundle(req: { attestations: unknown }, meta: RequestMeta): Promise<BundleGrant>;
  /** Records a denial decided by a front end (rate limit, size, malformed body) in the audit log. */
  auditDenial(method: string, meta: RequestMeta, denial: ServerlessDenial): void;
}

const MAX_ATTESTATIONS = 8;
const MAX_AUDIENCES = 16;

function invalid(message: string): ServerlessDenial {
  return new ServerlessDenial('invalid_argument', message);
}

/** Validates the attestation list (shape only). */
export function validateAttestations(
  raw: unknown,
  factories: ReadonlyMap<string, AttestorFactory>,
): AttestationInput[] {
  if (!Array.isArray(raw) || raw.length === 0) throw invalid('attestations: must be a non-empty list');
  if (raw.length > MAX_ATTESTATIONS) throw invalid(`attestations: at most ${MAX_ATTESTATIONS} are accepted`);
  const out: AttestationInput[] = [];
  const seen = new Set<string>();
  raw.forEach((a: unknown, i) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a))
      throw invalid(`attestations[${i}]: must be an object`);
    const { type, evidence, ...rest } = a as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw invalid(`attestations[${i}].${extra[0]}: unknown field`);
    if (typeof type !== 'string' || type === '')
      throw invalid(`attestations[${i}].type: must be a non-empty string`);
    if (typeof evidence !== 'string' || evidence === '') {
      throw invalid(`attestations[${i}].evidence: must be a non-empty string`);
    }
    if (seen.has(type)) throw invalid(`attestations[${i}].type: ${JSON.stringify(type)} is given twice`);
    seen.add(type);
    out.push({ type, evidence });
  });
  for (const a of out) {
    if (!factories.has(a.type)) {
      throw new ServerlessDenial(
        'unknown_attestor',
        `attestation type ${JSON.stringify(a.type.slice(0, 64))} is not supported`,
      );
    }
  }
  return out;
}

/**
 * Creates the serverless attestation service.
 *
 * @example
 * ```ts
 * const svc = createServerlessService({ ca, trustDomain, policies, logger });
 * const grant = await svc.mintJwtSvid({ attestations, audience: ['api'] }, { clientAddress: ip, transport: 'http' });
 * ```
 */
export function createServerlessService(config: ServerlessServiceConfig): ServerlessService {
  const clock = config.clock ?? { now: () => new Date() };
  const factories = config.factories ?? ATTESTOR_FACTORIES;
  const replay = config.replayCache ?? new ReplayCache({ clock });
  const x509Ttl = config.x509SvidTtlSeconds ?? 3600;
  const jwtTtl = config.jwtSvidTtlSeconds ?? 300;
  const log = config.logger;
  const policies = (): readonly ServerlessPolicy[] =>
    'current' in config.policies ? config.policies.current() : config.policies;

  async function tryPolicy(
    policy: ServerlessPolicy,
    byType: ReadonlyMap<string, AttestationInput>,
  ): Promise<{ id: SpiffeId; tokens: AttestorResult[] }> {
    const attrs = new Map<string, AttestedAttributes>();
    const tokens: AttestorResult[] = [];
    for (const att of policy.attestors) {
      const input = byType.get(att.type);
      if (input === undefined)
        throw new ServerlessDenial('no_matching_policy', `${att.type} attestation missing`, policy.name);
      try {
        const r = await att.attest(input.evidence);
        attrs.set(att.type, r.attributes);
        tokens.push(r);
      } catch (err) {
        if (err instanceof ServerlessDenial) {
          throw new ServerlessDenial(
            err.code,
            `policy ${JSON.stringify(policy.name)}: ${err.message}`,
            policy.name,
          );
        }
        throw err;
      }
    }
    return { id: policy.spiffeId(attrs), tokens };
  }

  async function attest(
    rawAttestations: unknown,
  ): Promise<{ id: SpiffeId; policy: string; types: string[] }> {
    const list = validateAttestations(rawAttestations, factories);
    const byType = new Map(list.map((a) => [a.type, a]));
    const candidates = policies().filter((p) => p.attestors.every((a) => byType.has(a.type)));
    if (candidates.length === 0) {
      throw new ServerlessDenial(
        'no_matching_policy',
        `no policy can be satisfied with attestations of type ${list.map((a) => a.type).join(', ')}`,
      );
    }
    const denials: ServerlessDenial[] = [];
    for (const policy of candidates) {
      let result: { id: SpiffeId; tokens: AttestorResult[] };
      try {
        result = await tryPolicy(policy, byType);
      } catch (err) {
        if (err instanceof ServerlessDenial) {
          denials.push(err);
          continue;
        }
        throw err;
      }
      // Checked and recorded in one synchronous step: of concurrent requests with the same token one wins.
      if (!replay.consume(result.tokens)) {
        throw new ServerlessDenial(
          'replayed',
          `policy ${JSON.stringify(policy.name)}: token was already used`,
          policy.name,
        );
      }
      return { id: result.id, policy: policy.name, types: list.map((a) => a.type) };
    }
    const first = denials[0] ?? new ServerlessDenial('no_matching_policy', 'no policy matched');
    if (denials.length === 1) throw first;
    throw new ServerlessDenial(first.code, denials.map((d) => d.message).join('; '), first.policy);
  }

  function audit(
    method: string,
    meta: RequestMeta,
    outcome:
      | { granted: true; id: SpiffeId; policy: string; expiresAt?: Date }
      | { granted: false; denial: ServerlessDenial },
  ): void {
    const base = {
      audit: true,
      subsystem: 'serverless',
      method,
      client_address: meta.clientAddress,
      transport: meta.transport,
    };
    if (outcome.granted) {
      log.info(
        {
          ...base,
          decision: 'grant',
          policy: outcome.policy,
          spiffe_id: outcome.id.toString(),
          ...(outcome.expiresAt === undefined ? {} : { expires_at: outcome.expiresAt.toISOString() }),
        },
        'Serverless attestation granted',
      );
    } else {
      const d = outcome.denial;
      log.warn(
        {
          ...base,
          decision: 'deny',
          code: d.code,
          status: d.status,
          reason: d.message,
          ...(d.policy === undefined ? {} : { policy: d.policy }),
        },
        'Serverless attestation denied',
      );
    }
  }

  async function guarded<T extends { spiffeId: SpiffeId; policy: string }>(
    method: string,
    meta: RequestMeta,
    fn: () => Promise<T>,
    expiry: (t: T) => Date | undefined,
  ): Promise<T> {
    try {
      const r = await fn();
      const e = expiry(r);
      audit(method, meta, {
        granted: true,
        id: r.spiffeId,
        policy: r.policy,
        ...(e === undefined ? {} : { expiresAt: e }),
      });
      return r;
    } catch (err) {
      const denial =
        err instanceof ServerlessDenial ? err : new ServerlessDenial('internal', 'internal error');
      if (!(err instanceof ServerlessDenial)) log.error({ err, method }, 'Serverless request failed');
      if (!denial.audited) audit(method, meta, { granted: false, denial });
      denial.audited = true;
      throw denial;
    }
  }

  return {
    trustDomain: config.trustDomain,
    mintX509Svid(req, meta) {
      return guarded(
        'x509-svid',
        meta,
        async () => {
          let publicKey: KeyObject | Uint8Array;
          let privateKey: KeyObject | undefined;
          if (req.csr !== undefined) {
            try {
              publicKey = parseCsr(req.csr).spkiDer;
            } catch (err) {
              throw invalid(`csr: ${err instanceof SpiffeError ? err.message : 'malformed request'}`);
            }
          } else {
            const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
            publicKey = pair.publicKey;
            privateKey = pair.privateKey;
          }
          const a = await attest(req.attestations);
          const signed = config.ca.signX509Svid({ spiffeId: a.id, publicKey, ttlSeconds: x509Ttl });
          return {
            spiffeId: a.id,
            chain: signed.chain,
            privateKey,
            bundle: config.ca.bundle().x509Bundle().x509Authorities(),
            expiresAt: signed.notAfter,
            policy: a.policy,
          };
        },
        (g) => g.expiresAt,
      );
    },
    mintJwtSvid(req, meta) {
      return guarded(
        'jwt-svid',
        meta,
        async () => {
          const aud = req.audience;
          if (!Array.isArray(aud) || aud.length === 0) throw invalid('audience: must be a non-empty list');
          if (aud.length > MAX_AUDIENCES) throw invalid(`audience: at most ${MAX_AUDIENCES} are accepted`);
          aud.forEach((s: unknown, i) => {
            if (typeof s !== 'string' || s === '' || s.length > 2048) {
              throw invalid(`audience[${i}]: must be a non-empty string of at most 2048 characters`);
            }
          });
          const a = await attest(req.attestations);
          const m = config.ca.mintJwtSvid({ spiffeId: a.id, audience: aud as string[], ttlSeconds: jwtTtl });
          return { spiffeId: a.id, token: m.token, expiresAt: m.expiresAt, policy: a.policy };
        },
        (g) => g.expiresAt,
      );
    },
    fetchBundle(req, meta) {
      return guarded(
        'bundle',
        meta,
        async () => {
          const a = await attest(req.attestations);
          return { spiffeId: a.id, bundle: config.ca.bundle(), policy: a.policy };
        },
        () => undefined,
      );
    },
    auditDenial(method, meta, denial) {
      if (denial.audited) return;
      denial.audited = true;
      audit(method, meta, { granted: false, denial });
    },
  };
}
