/** Server-side node attestors. @module */
export {
  createJoinTokenAttestor,
  JOIN_TOKEN_TYPE,
  type JoinTokenAttestorConfig,
  joinTokenAgentId,
} from './join-token/join-token.js';
export {
  type AttestResult,
  attestationFailed,
  attestationInvalid,
  type NodeAttestor,
} from './node-attestor.js';
export {
  createX509PopAttestor,
  sha1Fingerprint,
  X509POP_TYPE,
  type X509PopAttestorConfig,
} from './x509pop/x509pop.js';
