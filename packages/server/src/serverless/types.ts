/**
 * Shared types of the serverless attestation subsystem: the clock, the logger, the denial error that carries
 * an HTTP status and a stable code, and the attributes an attestor extracts from a verified platform token.
 *
 * @module
 */

/** A source of the current time. */
export interface ServerlessClock {
  now(): Date;
}

/** The logging the subsystem does (pino's `Logger` fits). */
export interface ServerlessLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Stable codes of {@link ServerlessDenial}, sent as `code` in error bodies. */
export type DenialCode =
  | 'invalid_argument'
  | 'unknown_attestor'
  | 'no_matching_policy'
  | 'attestation_failed'
  | 'policy_denied'
  | 'replayed'
  | 'rate_limited'
  | 'too_large'
  | 'not_found'
  | 'method_not_allowed'
  | 'unsupported_media_type'
  | 'internal';

const STATUS: Record<DenialCode, number> = {
  invalid_argument: 400,
  unknown_attestor: 403,
  no_matching_policy: 403,
  attestation_failed: 403,
  policy_denied: 403,
  replayed: 403,
  rate_limited: 429,
  too_large: 413,
  not_found: 404,
  method_not_allowed: 405,
  unsupported_media_type: 415,
  internal: 500,
};

/**
 * A refused serverless request: a stable `code`, the HTTP status it maps to and a message that is safe to send
 * to the caller (it names the failed requirement, never cryptographic detail).
 */
export class ServerlessDenial extends Error {
  readonly code: DenialCode;
  readonly status: number;
  /** The policy the message refers to, when any. */
  readonly policy: string | undefined;
  /** Set once the denial is in the audit log, so front ends do not log it twice. */
  audited = false;

  constructor(code: DenialCode, message: string, policy?: string) {
    super(message);
    this.name = 'ServerlessDenial';
    this.code = code;
    this.status = STATUS[code];
    this.policy = policy;
  }
}

/** Attributes extracted from a verified token, keyed by attribute name (`project_id`, `principal_tags.team`). */
export type AttestedAttributes = ReadonlyMap<string, string>;

/** The result of one attestor over one piece of evidence. */
export interface AttestorResult {
  readonly attributes: AttestedAttributes;
  /** Keys under which the token is recorded in the replay cache (token digest, issuer + jti). */
  readonly replayKeys: readonly string[];
  /** When the token expires (replay keys are kept until then plus the leeway). */
  readonly expiresAt: Date;
}

/** A configured attestor of one policy. */
export interface Attestor {
  readonly type: string;
  /**
   * Verifies the evidence (signature, issuer, audience, lifetime, attestor-specific requirements).
   *
   * @throws {ServerlessDenial} attestation_failed or policy_denied with a caller-safe message
   */
  attest(evidence: string): Promise<AttestorResult>;
}
