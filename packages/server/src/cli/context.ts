/**
 * What every `tessera-server` command receives: parsed flags, output helpers, and lazily built admin API
 * clients over the admin Unix socket.
 *
 * @module
 */
import { resolve } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import {
  AgentService,
  BundleService,
  EntryService,
  LocalAuthorityService,
  makeClient,
  SVIDService,
  TrustDomainService,
  type TypedClient,
} from '@tessera/common/api';
import type { FlagSpec, ParsedFlags } from './args.js';

/** Default admin socket of tessera-server (as the `socket_path` config default). */
export const DEFAULT_SOCKET_PATH = '/tmp/tessera-server/private/api.sock';

/** Where the CLI writes and what it reads from its environment. */
export interface CliIo {
  /** Writes to standard output. */
  readonly stdout: (text: string) => void;
  /** Writes to standard error. */
  readonly stderr: (text: string) => void;
  /** Environment variables (`TESSERA_SERVER_*` config overrides). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Working directory, to resolve relative paths. */
  readonly cwd: string;
}

/** The admin API clients a command may use. */
export interface AdminClients {
  readonly entry: TypedClient<typeof EntryService>;
  readonly agent: TypedClient<typeof AgentService>;
  readonly bundle: TypedClient<typeof BundleService>;
  readonly svid: TypedClient<typeof SVIDService>;
  readonly trustDomain: TypedClient<typeof TrustDomainService>;
  readonly localAuthority: TypedClient<typeof LocalAuthorityService>;
  /** Closes every channel. */
  close(): void;
}

/** Builds admin clients for a socket path (replaced in tests). */
export type ClientFactory = (socketPath: string) => AdminClients;

/**
 * The default {@link ClientFactory}: grpc-js clients over `unix://<absolute socket path>` without TLS (local
 * callers of the admin socket are admins).
 *
 * @example
 * ```ts
 * const c = socketClients('/tmp/tessera-server/private/api.sock');
 * const { count } = await c.entry.countEntries(CountEntriesRequest.fromPartial({}));
 * c.close();
 * ```
 */
export function socketClients(socketPath: string): AdminClients {
  const target = `unix://${resolve(socketPath)}`;
  const creds = credentials.createInsecure();
  // One channel for all services: grpc-js shares subchannels between clients with identical options.
  const entry = makeClient(EntryService, target, creds);
  const agent = makeClient(AgentService, target, creds);
  const bundle = makeClient(BundleService, target, creds);
  const svid = makeClient(SVIDService, target, creds);
  const trustDomain = makeClient(TrustDomainService, target, creds);
  const localAuthority = makeClient(LocalAuthorityService, target, creds);
  return {
    entry,
    agent,
    bundle,
    svid,
    trustDomain,
    localAuthority,
    close() {
      for (const c of [entry, agent, bundle, svid, trustDomain, localAuthority]) c.close();
    },
  };
}

/** Output format chosen with `--output`. */
export type OutputFormat = 'pretty' | 'json';

/** The context a command runs with. */
export interface CommandContext {
  /** Command words (`entry create`), for messages. */
  readonly name: string;
  /** Parsed flags of the command. */
  readonly flags: ParsedFlags;
  /** `--output` format. */
  readonly output: OutputFormat;
  /** Admin socket path (`--socket`). */
  readonly socketPath: string;
  /** I/O of the process. */
  readonly io: CliIo;
  /** Current time. */
  readonly now: () => Date;
  /** Admin clients, built on first use. */
  clients(): AdminClients;
  /** Writes a line (a newline is appended) to standard output. */
  print(text: string): void;
  /** Writes a value as indented JSON to standard output (bigints become strings). */
  printJson(value: unknown): void;
}

/** A `tessera-server` command. */
export interface Command {
  /** Command words, e.g. `['entry', 'create']`. */
  readonly words: readonly string[];
  /** One-line summary. */
  readonly summary: string;
  /** Flags besides the global `--socket` and `--output`. */
  readonly flags: readonly FlagSpec[];
  /** Whether the command talks to the admin socket (adds `--socket`). Default true. */
  readonly usesSocket?: boolean;
  /** Runs the command; resolves to the exit status. Usage errors are thrown as CliUsageError. */
  run(ctx: CommandContext): Promise<number>;
}

/** The global flags every command accepts. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'socket',
    aliases: ['socketPath', 'socket-path'],
    kind: 'string',
    description: `path of the admin socket (default ${DEFAULT_SOCKET_PATH})`,
    valueName: 'PATH',
  },
  {
    name: 'output',
    aliases: ['o'],
    kind: 'string',
    description: 'output format: pretty (default) or json',
    valueName: 'FORMAT',
  },
];

/**
 * Converts a value to JSON-safe data: bigints become decimal strings, Buffers base64, object keys snake_case
 * (the protobuf field names, as SPIRE's `-output json`).
 *
 * @example
 * ```ts
 * toJsonValue({ expiresAt: 5n }); // { expires_at: '5' }
 * ```
 */
export function toJsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = toJsonValue(v);
    }
    return out;
  }
  return value;
}
