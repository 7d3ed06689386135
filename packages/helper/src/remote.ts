/**
 * Remote-attestation mode: the helper gets its SVIDs from a Tessera server's serverless API instead of a
 * Workload API socket, presenting platform identity tokens it reads fresh before every request.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '@tessera/spiffe/errors';
import { type Attestation, RemoteAttestationClient } from '@tessera/spiffe/workloadapi';
import type { RemoteAttestationConfig, RemoteAttestationInput } from './config/config.js';

/** Largest token the helper reads (platform tokens are a few KiB; the server refuses more than 16 KiB). */
export const MAX_TOKEN_BYTES = 64 * 1024;

/** Options of {@link readAttestations}. */
export interface ReadAttestationsOptions {
  /** Environment for `token_env`; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Time limit of a `token_command`, in ms. Default 30,000. */
  readonly commandTimeoutMs?: number;
  /** Aborts a running `token_command`. */
  readonly signal?: AbortSignal;
}

function tokenError(index: number, message: string, cause?: unknown): ConfigError {
  return new ConfigError(
    'ERR_CONFIG_INVALID',
    `helper: remote_attestation.attestations[${index}]: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function runCommand(command: string, index: number, options: ReadAttestationsOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      '/bin/sh',
      ['-c', command],
      {
        encoding: 'utf8',
        timeout: options.commandTimeoutMs ?? 30_000,
        maxBuffer: MAX_TOKEN_BYTES,
        windowsHide: true,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (err, stdout, stderr) => {
        if (err) {
          // Standard output may hold a token: never put it in the message. Standard error says why.
          const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown; signal?: unknown };
          const why =
            e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
              ? `printed more than ${MAX_TOKEN_BYTES} bytes`
              : e.killed || typeof e.signal === 'string'
                ? `was stopped (${typeof e.signal === 'string' ? e.signal : 'timeout'})`
                : typeof e.code === 'number'
                  ? `exited with code ${e.code}`
                  : `could not run (${String(e.code ?? e.message)})`;
          const detail = stderr.trim().split('\n')[0]?.slice(0, 200) ?? '';
          reject(tokenError(index, `token_command ${why}${detail ? `: ${detail}` : ''}`, err));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

async function readToken(
  input: RemoteAttestationInput,
  index: number,
  options: ReadAttestationsOptions,
): Promise<string> {
  const where = input.token;
  let text: string;
  switch (where.kind) {
    case 'file': {
      try {
        const buf = await readFile(where.path);
        if (buf.length > MAX_TOKEN_BYTES) {
          throw tokenError(
            index,
            `token_file ${JSON.stringify(where.path)} is larger than ${MAX_TOKEN_BYTES} bytes`,
          );
        }
        text = buf.toString('utf8');
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw tokenError(index, `cannot read token_file ${JSON.stringify(where.path)} (${code})`, err);
      }
      break;
    }
    case 'env': {
      const env = options.env ?? process.env;
      text = env[where.name] ?? '';
      break;
    }
    case 'command':
      text = await runCommand(where.command, index, options);
      break;
  }
  const token = text.trim();
  if (token === '') {
    const source =
      where.kind === 'file'
        ? `token_file ${JSON.stringify(where.path)}`
        : where.kind === 'env'
          ? `token_env ${where.name}`
          : 'token_command';
    throw tokenError(index, `${source} gave no token`);
  }
  if (/\s/.test(token))
    throw tokenError(
      index,
      `${where.kind === 'command' ? 'token_command' : `token_${where.kind}`} gave more than one word (a token has no spaces)`,
    );
  return token;
}

/**
 * Reads every configured attestation's token now (files re-read, commands run again), in order.
 *
 * @param inputs - The configured attestations.
 * @param options - Environment, command time limit, abort signal.
 * @returns The attestations to present, with their evidence.
 * @throws {ConfigError} ERR_CONFIG_INVALID naming the attestation when a token cannot be read, is empty or
 *   contains spaces, or its command fails; the token itself is never in the message.
 * @example
 * ```ts
 * const attestations = await readAttestations([{ type: 'gcp_iit', token: { kind: 'file', path: '/var/run/token' } }]);
 * ```
 */
export async function readAttestations(
  inputs: readonly RemoteAttestationInput[],
  options: ReadAttestationsOptions = {},
): Promise<Attestation[]> {
  const out: Attestation[] = [];
  for (const [i, input] of inputs.entries()) {
    out.push({ type: input.type, evidence: await readToken(input, i, options) });
  }
  return out;
}

/** Options of {@link createRemoteClient}. */
export interface CreateRemoteClientOptions extends ReadAttestationsOptions {
  /** Timeout of one request in ms (default the client's, 30 s). */
  readonly timeoutMs?: number;
}

/**
 * Creates the serverless-API client of the helper's remote-attestation mode: it presents the configured
 * attestations, read fresh before every request (the server accepts each token once).
 *
 * @param config - The validated `remote_attestation` settings.
 * @param options - Token reading and request options.
 * @throws {TypeError} when the settings did not come from validation (not an https address).
 * @example
 * ```ts
 * const client = createRemoteClient(config.remoteAttestation!);
 * const ctx = await client.fetchX509Context();
 * ```
 */
export function createRemoteClient(
  config: RemoteAttestationConfig,
  options: CreateRemoteClientOptions = {},
): RemoteAttestationClient {
  return new RemoteAttestationClient({
    address: config.serverAddress,
    attestations: () => readAttestations(config.attestations, options),
    ...(config.caPem === undefined ? {} : { ca: config.caPem }),
    ...(config.serverSpiffeId === undefined ? {} : { serverId: config.serverSpiffeId }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}
