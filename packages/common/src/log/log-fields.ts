/** Names of structured log fields, shared so that every subsystem writes the same keys. @module */

/** Field names used in log lines. */
export const LogFields = Object.freeze({
  /** Trust domain name. */
  trustDomain: 'trust_domain',
  /** A SPIFFE ID (string form). */
  spiffeId: 'spiffe_id',
  /** A registration entry ID. */
  entryId: 'entry_id',
  /** A process ID (of a workload or the caller). */
  pid: 'pid',
  /** The caller of an RPC (its SPIFFE ID, or `local` on the admin socket). */
  callerId: 'caller_id',
  /** The full gRPC method name. */
  method: 'method',
  /** An agent's SPIFFE ID. */
  agentId: 'agent_id',
  /** The subsystem of a child logger (`ca`, `datastore`, `workload_api`). */
  subsystem: 'subsystem',
  /** An error, serialized by pino's error serializer. */
  err: 'err',
  /** The outcome of an audited call (`success`, `error`). */
  status: 'status',
  /** A gRPC status code name. */
  code: 'code',
  /** A duration in milliseconds. */
  durationMs: 'duration_ms',
} as const);

/** A field name from {@link LogFields}. */
export type LogField = (typeof LogFields)[keyof typeof LogFields];
