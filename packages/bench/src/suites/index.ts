import type { Suite } from '../harness.js';
import { agentSync10k, agentWorkload } from './agent.js';
import { jwtSvidValidate, spiffeIdParse, x509SvidVerify } from './library.js';
import { serverJwtMint, serverScale100k, serverSync1k, serverX509Issuance } from './server.js';

/** Every benchmark suite, in the order they run. */
export const suites: Suite[] = [
  spiffeIdParse,
  x509SvidVerify,
  jwtSvidValidate,
  serverX509Issuance,
  serverJwtMint,
  serverSync1k,
  serverScale100k,
  agentWorkload,
  agentSync10k,
];
