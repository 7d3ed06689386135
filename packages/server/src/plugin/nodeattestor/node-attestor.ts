/**
 * The server side of node attestation: a plugin proves which machine an agent runs on from the agent's
 * payload (and, when it needs one, a challenge/response), and names the agent ID and node selectors.
 *
 * @module
 */
import { SpiffeError } from '@tessera/spiffe/errors';
import type { Selector } from '../../datastore/types.js';

/** What a successful attestation yields. */
export interface AttestResult {
  /** The agent's SPIFFE ID, `spiffe://<td>/spire/agent/<type>/<id>`. */
  readonly agentId: string;
  /** Node selectors, without the attestor's type prefix (type is the attestor's name). */
  readonly selectors: readonly Selector[];
  /** Whether the agent may attest again with the same evidence (SPIRE's `reattestable`). */
  readonly canReattest: boolean;
}

/** A server-side node attestor. */
export interface NodeAttestor {
  /** The attestation type, e.g. `join_token`, `x509pop`. */
  readonly type: string;
  /**
   * Attests an agent from its payload; `challenge` sends a challenge to the agent and resolves with its
   * response.
   *
   * @throws {SpiffeError} ERR_NODE_ATTESTATION_INVALID for a malformed payload or response,
   *   ERR_NODE_ATTESTATION_FAILED when the evidence does not prove the claim
   */
  attest(payload: Buffer, challenge: (c: Buffer) => Promise<Buffer>): Promise<AttestResult>;
}

/** A malformed payload or challenge response. */
export function attestationInvalid(type: string, message: string): SpiffeError {
  return new SpiffeError('ERR_NODE_ATTESTATION_INVALID', `nodeattestor(${type}): ${message}`);
}

/** Evidence that does not prove the claim. */
export function attestationFailed(type: string, message: string): SpiffeError {
  return new SpiffeError('ERR_NODE_ATTESTATION_FAILED', `nodeattestor(${type}): ${message}`);
}
