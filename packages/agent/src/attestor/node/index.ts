/**
 * Agent-side node attestors (join_token, x509pop).
 *
 * @module
 */
export {
  type AgentNodeAttestor,
  createJoinTokenAttestor,
  createX509PopAttestor,
  type X509PopAttestorFiles,
  x509PopPayload,
  x509PopResponse,
} from './node-attestor.js';
