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
} from './node-attestor.js';
