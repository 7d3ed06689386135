/**
 * Verification of platform identity tokens (JWS compact JWTs): algorithm allow-list (never `none` or HMAC),
 * signature against the issuer's keys, issuer, audience, and exp/nbf/iat with a small leeway. Denial messages
 * say which check failed but never why a signature did not verify.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import type { IssuerKeys } from './jwks.js';
import { ServerlessDenial } from './types.js';

/** Asymmetric algorithms accepted on platform tokens. */
export const ALLOWED_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
] as const;

/** Clock skew tolerated on exp, nbf and iat, in seconds. */
export const TOKEN_LEEWAY_SECONDS = 30;

/** Largest token accepted, in characters. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** What a token must satisfy. */
export interface TokenExpectations {
  /** Attestor type, used as the message prefix. */
  readonly type: string;
  readonly issuer: string;
  readonly audience: string;
  readonly keys: IssuerKeys;
  readonly now: Date;
}

/** A verified token: its claims and the keys it is recorded under in the replay cache. */
export interface VerifiedToken {
  readonly claims: JWTPayload;
  readonly replayKeys: readonly string[];
  readonly expiresAt: Date;
}

function fail(type: string, message: string): ServerlessDenial {
  return new ServerlessDenial('attestation_failed', `${type}: ${message}`);
}

function decodeSegment(type: string, seg: string | undefined): Record<string, unknown> {
  if (seg === undefined || !/^[A-Za-z0-9_-]+$/.test(seg)) throw fail(type, 'token is malformed');
  try {
    const v: unknown = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw fail(type, 'token is malformed');
  }
}

/**
 * Verifies a platform token.
 *
 * @throws {ServerlessDenial} attestation_failed naming the failed check
 */
export async function verifyToken(token: string, exp: TokenExpectations): Promise<VerifiedToken> {
  const { type } = exp;
  if (token.length > MAX_TOKEN_LENGTH)
    throw fail(type, `token is longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) throw fail(type, 'token is malformed');
  const header = decodeSegment(type, parts[0]);
  decodeSegment(type, parts[1]);
  const alg = header.alg;
  if (typeof alg !== 'string' || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) {
    throw fail(type, `token algorithm ${JSON.stringify(alg)} is not allowed`);
  }
  if (typeof header.kid !== 'string' || header.kid === '') throw fail(type, 'token has no key ID');
  if (header.crit !== undefined) throw fail(type, 'token has critical header parameters');
  const kid = header.kid;
  let claims: JWTPayload;
  try {
    const resolver = await exp.keys.resolver(kid).catch(() => {
      throw fail(type, `keys of issuer ${JSON.stringify(exp.issuer)} are unavailable`);
    });
    const r = await jwtVerify(token, resolver, {
      algorithms: [...ALLOWED_ALGORITHMS],
      issuer: exp.issuer,
      audience: exp.audience,
      clockTolerance: TOKEN_LEEWAY_SECONDS,
      currentDate: exp.now,
      requiredClaims: ['exp', 'iat'],
    });
    claims = r.payload;
  } catch (err) {
    if (err instanceof ServerlessDenial) throw err;
    if (err instanceof joseErrors.JWTExpired) throw fail(type, 'token has expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      switch (err.claim) {
        case 'iss':
          throw fail(type, 'token issuer is not the configured issuer');
        case 'aud':
          throw fail(type, `token audience does not include ${JSON.stringify(exp.audience)}`);
        case 'nbf':
          throw fail(type, 'token is not yet valid');
        default:
          throw fail(type, `token claim ${JSON.stringify(err.claim)} is missing or invalid`);
      }
    }
    if (err instanceof joseErrors.JOSEAlgNotAllowed)
      throw fail(type, `token algorithm ${JSON.stringify(alg)} is not allowed`);
    // Unknown key, wrong key type, bad signature, malformed JWS: one answer that does not help forgery.
    throw fail(type, 'token signature could not be verified');
  }
  const nowSec = Math.floor(exp.now.getTime() / 1000);
  if (typeof claims.iat !== 'number' || claims.iat > nowSec + TOKEN_LEEWAY_SECONDS) {
    throw fail(type, 'token is issued in the future');
  }
  if (typeof claims.exp !== 'number') throw fail(type, 'token has no expiry');
  // The signing input (header.payload) identifies the token: ECDSA signatures are malleable, so hashing the
  // whole token would let a second encoding of the same signature pass the replay cache.
  const digest = createHash('sha256').update(`${parts[0]}.${parts[1]}`).digest('base64url');
  const replayKeys = [`sig:${digest}`];
  if (typeof claims.jti === 'string' && claims.jti !== '')
    replayKeys.push(`jti:${exp.issuer}\u0000${claims.jti}`);
  return { claims, replayKeys, expiresAt: new Date(claims.exp * 1000) };
}
