/** Node attestation wire formats shared by the agent (evidence, challenge answers) and the server (checks). @module */
export {
  createX509PopChallenge,
  marshalX509PopPayload,
  parseX509PopPayload,
  signX509PopChallenge,
  verifyX509PopResponse,
  X509POP_MAX_CERTIFICATES,
  X509POP_NONCE_BYTES,
  X509POP_TYPE,
  type X509PopChallenge,
} from './x509pop.js';
