/**
 * The `join_token` node attestor: the agent presents a single-use, expiring token created by an operator.
 *
 * @module
 */
import { SpiffeId, type TrustDomain, validatePathSegment } from '@tessera/spiffe/spiffeid';
import type { Datastore } from '../../../datastore/datastore.js';
import {
  type AttestResult,
  attestationFailed,
  attestationInvalid,
  type NodeAttestor,
} from '../node-attestor.js';

/** The attestation type. */
export const JOIN_TOKEN_TYPE = 'join_token';

/** Configuration of {@link createJoinTokenAttestor}. */
export interface JoinTokenAttestorConfig {
  readonly trustDomain: TrustDomain;
  readonly datastore: Pick<Datastore, 'consumeJoinToken'>;
  readonly now?: () => Date;
}

/** The agent ID a join token attests to: `spiffe://<td>/spire/agent/join_token/<token>`. */
export function joinTokenAgentId(td: TrustDomain, token: string): SpiffeId {
  return SpiffeId.fromSegments(td, 'spire', 'agent', JOIN_TOKEN_TYPE, token);
}

/**
 * Creates the join_token attestor. The token is consumed atomically: of concurrent attempts with one token,
 * exactly one succeeds; expired and unknown tokens fail alike.
 *
 * @example
 * ```ts
 * const attestor = createJoinTokenAttestor({ trustDomain: td, datastore });
 * const { agentId } = await attestor.attest(Buffer.from(token), noChallenge);
 * ```
 */
export function createJoinTokenAttestor(config: JoinTokenAttestorConfig): NodeAttestor {
  const now = config.now ?? (() => new Date());
  return {
    type: JOIN_TOKEN_TYPE,
    async attest(payload: Buffer): Promise<AttestResult> {
      const token = payload.toString('utf8');
      if (token === '') throw attestationInvalid(JOIN_TOKEN_TYPE, 'missing token');
      try {
        validatePathSegment(token);
      } catch {
        throw attestationInvalid(JOIN_TOKEN_TYPE, 'token is not a valid path segment');
      }
      const consumed = await config.datastore.consumeJoinToken(token, now());
      if (consumed === undefined) {
        throw attestationFailed(
          JOIN_TOKEN_TYPE,
          'join token does not exist, has expired or has already been used',
        );
      }
      return {
        agentId: joinTokenAgentId(config.trustDomain, token).toString(),
        selectors: [],
        canReattest: false,
      };
    },
  };
}
