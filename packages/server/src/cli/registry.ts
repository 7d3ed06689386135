/** Every `tessera-server` admin command, in help order. @module */

import { agentBan } from './commands/agent/ban.js';
import { agentCount } from './commands/agent/count.js';
import { agentEvict } from './commands/agent/evict.js';
import { agentList } from './commands/agent/list.js';
import { agentPurge } from './commands/agent/purge.js';
import { agentShow } from './commands/agent/show.js';
import { bundleCount } from './commands/bundle/count.js';
import { bundleDelete } from './commands/bundle/delete.js';
import { bundleList } from './commands/bundle/list.js';
import { bundleSet } from './commands/bundle/set.js';
import { bundleShow } from './commands/bundle/show.js';
import { entryCount } from './commands/entry/count.js';
import { entryCreate } from './commands/entry/create.js';
import { entryDelete } from './commands/entry/delete.js';
import { entryShow } from './commands/entry/show.js';
import { entryUpdate } from './commands/entry/update.js';
import { federationCreate } from './commands/federation/create.js';
import { federationDelete } from './commands/federation/delete.js';
import { federationList } from './commands/federation/list.js';
import { federationRefresh } from './commands/federation/refresh.js';
import { federationShow } from './commands/federation/show.js';
import { federationUpdate } from './commands/federation/update.js';
import { healthcheck } from './commands/healthcheck.js';
import { jwtMint } from './commands/jwt/mint.js';
import { localAuthorityCommands } from './commands/localauthority/commands.js';
import { tokenGenerate } from './commands/token/generate.js';
import { validate } from './commands/validate.js';
import { x509Mint } from './commands/x509/mint.js';
import type { Command } from './context.js';

/** The admin commands. */
export const COMMANDS: readonly Command[] = [
  entryCreate,
  entryUpdate,
  entryDelete,
  entryShow,
  entryCount,
  agentList,
  agentShow,
  agentCount,
  agentBan,
  agentEvict,
  agentPurge,
  tokenGenerate,
  bundleShow,
  bundleList,
  bundleSet,
  bundleDelete,
  bundleCount,
  federationCreate,
  federationUpdate,
  federationDelete,
  federationList,
  federationShow,
  federationRefresh,
  x509Mint,
  jwtMint,
  ...localAuthorityCommands,
  healthcheck,
  validate,
];
