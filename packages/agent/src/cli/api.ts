/**
 * `tessera-agent api …`: a Workload API client for operators (SPIRE's `spire-agent api`), built on
 * `@tessera/spiffe`'s WorkloadApiClient against the agent's public socket.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleSet } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import type { X509Svid } from '@tessera/spiffe/svid';
import { WorkloadApiClient, type X509Context } from '@tessera/spiffe/workloadapi';

/** Where the CLI writes. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Stops `api watch` (default: SIGINT/SIGTERM). */
  readonly signal?: AbortSignal;
  /** Clock for elapsed-time output; default `performance.now`. */
  readonly elapsedMs?: () => number;
}

/** A usage error (exit code 2). */
export class UsageError extends Error {}

/** The default public socket of the agent. */
export const DEFAULT_SOCKET = '/tmp/tessera-agent/public/api.sock';

type FlagSpec = Record<string, { kind: 'string' | 'bool'; multiple?: boolean }>;
type Flags = Record<string, string[] | true>;

/** Parses `--name value`, `--name=value` and boolean flags; rejects unknown flags and positionals. */
export function parseFlags(argv: readonly string[], spec: FlagSpec): Flags {
  const out: Flags = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') || arg === '--') throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const s = spec[name];
    if (s === undefined) throw new UsageError(`unknown flag "--${name}"`);
    if (s.kind === 'bool') {
      if (eq !== -1) throw new UsageError(`flag "--${name}" takes no value`);
      out[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new UsageError(`flag "--${name}" needs a value`);
    const prev = out[name];
    if (Array.isArray(prev)) {
      if (!s.multiple) throw new UsageError(`flag "--${name}" given twice`);
      prev.push(value);
    } else out[name] = [value];
  }
  return out;
}

function one(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return Array.isArray(v) ? v[0] : undefined;
}

const COMMON: FlagSpec = {
  socket: { kind: 'string' },
  output: { kind: 'string' },
  timeout: { kind: 'string' },
};

/** Longest `--timeout`: the largest delay a Node timer holds (2^31-1 ms). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Common {
  readonly client: WorkloadApiClient;
  readonly json: boolean;
  readonly signal: AbortSignal;
}

function socketAddress(socket: string): string {
  if (socket.startsWith('unix:') || socket.startsWith('tcp:')) return socket;
  if (!socket.startsWith('/'))
    throw new UsageError(`--socket must be an absolute path or a URI, got "${socket}"`);
  return `unix://${socket}`;
}

function common(flags: Flags): Common {
  const output = one(flags, 'output') ?? 'text';
  if (output !== 'text' && output !== 'json')
    throw new UsageError(`--output must be "text" or "json", got "${output}"`);
  const timeoutText = one(flags, 'timeout') ?? '5s';
  const m = /^(\d+)(ms|s|m)?$/.exec(timeoutText);
  if (m === null)
    throw new UsageError(`--timeout must be a duration like "5s" or "500ms", got "${timeoutText}"`);
  const unit = m[2] ?? 's';
  const ms = Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : 60_000);
  if (ms <= 0) throw new UsageError('--timeout must be positive');
  // Node timers hold at most 2^31-1 ms: beyond that a timer fires after 1 ms, or AbortSignal.timeout throws.
  if (ms > MAX_TIMEOUT_MS)
    throw new UsageError(
      `--timeout must be at most ${MAX_TIMEOUT_MS}ms (about 24.8 days), got "${timeoutText}"`,
    );
  return {
    client: new WorkloadApiClient({ address: socketAddress(one(flags, 'socket') ?? DEFAULT_SOCKET) }),
    json: output === 'json',
    signal: AbortSignal.timeout(ms),
  };
}

function b64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64');
}

function svidJson(svid: X509Svid, bundles: BundleSet): Record<string, unknown> {
  const der = svid.marshalDer();
  const own = bundles.getX509Bundle(svid.id.trustDomain);
  return {
    spiffe_id: svid.id.toString(),
    x509_svid: b64(der.certificates),
    x509_svid_key: b64(der.privateKey),
    bundle: own === undefined ? '' : b64(own.marshalDer()),
    hint: svid.hint,
    expires_at: Math.floor(new Date(svid.certificates[0]!.validTo).getTime() / 1000),
  };
}

function x509ContextJson(ctx: X509Context): Record<string, unknown> {
  const own = new Set(ctx.svids.map((s) => s.id.trustDomain.name));
  const federated: Record<string, string> = {};
  for (const b of ctx.bundles.x509Bundles()) {
    if (!own.has(b.trustDomain.name)) federated[b.trustDomain.idString()] = b64(b.marshalDer());
  }
  return { svids: ctx.svids.map((s) => svidJson(s, ctx.bundles)), federated_bundles: federated };
}

function x509ContextText(ctx: X509Context, elapsed: number): string {
  const lines = [
    `Received ${ctx.svids.length} svid${ctx.svids.length === 1 ? '' : 's'} after ${elapsed.toFixed(3)}ms`,
  ];
  for (const svid of ctx.svids) {
    const leaf = svid.certificates[0]!;
    lines.push('', `SPIFFE ID:\t\t${svid.id.toString()}`);
    if (svid.hint !== '') lines.push(`Hint:\t\t\t${svid.hint}`);
    lines.push(`SVID Valid After:\t${leaf.validFrom}`, `SVID Valid Until:\t${leaf.validTo}`);
    svid.certificates.slice(1).forEach((c, i) => {
      lines.push(
        `Intermediate #${i + 1} Valid After:\t${c.validFrom}`,
        `Intermediate #${i + 1} Valid Until:\t${c.validTo}`,
      );
    });
    const own = ctx.bundles.getX509Bundle(svid.id.trustDomain);
    own?.x509Authorities().forEach((c, i) => {
      lines.push(`CA #${i + 1} Valid After:\t${c.validFrom}`, `CA #${i + 1} Valid Until:\t${c.validTo}`);
    });
  }
  const own = new Set(ctx.svids.map((s) => s.id.trustDomain.name));
  for (const b of ctx.bundles.x509Bundles()) {
    if (own.has(b.trustDomain.name)) continue;
    lines.push('', `[federated] Trust domain:\t${b.trustDomain.name}`);
    b.x509Authorities().forEach((c, i) => {
      lines.push(
        `[federated] CA #${i + 1} Valid After:\t${c.validFrom}`,
        `[federated] CA #${i + 1} Valid Until:\t${c.validTo}`,
      );
    });
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the X.509 context like `spire-agent api fetch x509 -write`: `svid.N.pem` (chain), `svid.N.key`
 * (PKCS#8, mode 0600), `bundle.N.pem` (the SVID's trust domain bundle) and `federated_bundle.N.M.pem`.
 */
async function writeX509Context(dir: string, ctx: X509Context): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (name: string, data: string, mode: number): Promise<void> => {
    const path = join(dir, name);
    // A new file (never an existing one, nor a symlink planted at the path) with its final mode before any byte
    // is written, renamed over the target: a key is never readable with wider permissions, even for a moment.
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, data, { mode, flag: 'wx' });
      await chmod(tmp, mode); // the umask may have narrowed it
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    written.push(path);
  };
  const ownTds = new Set(ctx.svids.map((s) => s.id.trustDomain.name));
  const federated = ctx.bundles.x509Bundles().filter((b) => !ownTds.has(b.trustDomain.name));
  for (const [i, svid] of ctx.svids.entries()) {
    const pem = svid.marshal();
    await put(`svid.${i}.key`, pem.privateKey, 0o600);
    await put(`svid.${i}.pem`, pem.certificates, 0o644);
    const own = ctx.bundles.getX509Bundle(svid.id.trustDomain);
    if (own !== undefined) await put(`bundle.${i}.pem`, own.marshal(), 0o644);
    for (const [j, b] of federated.entries()) await put(`federated_bundle.${i}.${j}.pem`, b.marshal(), 0o644);
  }
  return written;
}

async function fetchX509(argv: readonly string[], io: CliIo): Promise<number> {
  const flags = parseFlags(argv, { ...COMMON, write: { kind: 'string' } });
  const c = common(flags);
  const start = (io.elapsedMs ?? (() => performance.now()))();
  try {
    const ctx = await c.client.fetchX509Context({ signal: c.signal });
    const elapsed = (io.elapsedMs ?? (() => performance.now()))() - start;
    const dir = one(flags, 'write');
    const written = dir === undefined ? [] : await writeX509Context(dir, ctx);
    if (c.json) io.stdout(`${JSON.stringify(x509ContextJson(ctx))}\n`);
    else {
      io.stdout(x509ContextText(ctx, elapsed));
      for (const p of written) io.stdout(`Writing ${p}\n`);
    }
    return 0;
  } finally {
    c.client.close();
  }
}

function jwksOf(bundles: BundleSet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const b of bundles.jwtBundles()) out[b.trustDomain.idString()] = JSON.parse(b.marshal()) as unknown;
  return out;
}

async function fetchJwt(argv: readonly string[], io: CliIo): Promise<number> {
  const flags = parseFlags(argv, {
    ...COMMON,
    audience: { kind: 'string', multiple: true },
    'spiffe-id': { kind: 'string' },
  });
  const audience = flags.audience;
  if (!Array.isArray(audience) || audience.some((a) => a === ''))
    throw new UsageError('--audience is required');
  const idText = one(flags, 'spiffe-id');
  let subject: SpiffeId | undefined;
  if (idText !== undefined) {
    try {
      subject = SpiffeId.fromString(idText);
    } catch (err) {
      throw new UsageError(`--spiffe-id: ${(err as Error).message}`);
    }
  }
  const c = common(flags);
  try {
    const [first, ...extra] = audience as [string, ...string[]];
    const svids = await c.client.fetchJwtSvids(
      { audience: first, extraAudiences: extra, ...(subject !== undefined ? { subject } : {}) },
      { signal: c.signal },
    );
    const bundles = await c.client.fetchJwtBundles({ signal: c.signal });
    if (c.json) {
      io.stdout(
        `${JSON.stringify({
          svids: svids.map((s) => ({ spiffe_id: s.id.toString(), svid: s.marshal(), hint: s.hint })),
          bundles: jwksOf(bundles),
        })}\n`,
      );
    } else {
      for (const s of svids) io.stdout(`token(${s.id.toString()}):\n\t${s.marshal()}\n\n`);
      for (const b of bundles.jwtBundles())
        io.stdout(`bundle(${b.trustDomain.idString()}):\n\t${b.marshal()}\n\n`);
    }
    return 0;
  } finally {
    c.client.close();
  }
}

async function fetchBundles(argv: readonly string[], io: CliIo): Promise<number> {
  const c = common(parseFlags(argv, COMMON));
  try {
    const x509 = await c.client.fetchX509Bundles({ signal: c.signal });
    const jwt = await c.client.fetchJwtBundles({ signal: c.signal });
    if (c.json) {
      const x: Record<string, string> = {};
      for (const b of x509.x509Bundles()) x[b.trustDomain.idString()] = b.marshal();
      io.stdout(`${JSON.stringify({ x509_bundles: x, jwt_bundles: jwksOf(jwt) })}\n`);
    } else {
      for (const b of x509.x509Bundles()) {
        io.stdout(`X.509 bundle(${b.trustDomain.idString()}):\n${b.marshal()}\n`);
      }
      for (const b of jwt.jwtBundles())
        io.stdout(`JWT bundle(${b.trustDomain.idString()}):\n\t${b.marshal()}\n\n`);
    }
    return 0;
  } finally {
    c.client.close();
  }
}

async function validateJwt(argv: readonly string[], io: CliIo): Promise<number> {
  const flags = parseFlags(argv, { ...COMMON, audience: { kind: 'string' }, svid: { kind: 'string' } });
  const audience = one(flags, 'audience');
  const token = one(flags, 'svid');
  if (audience === undefined || audience === '') throw new UsageError('--audience is required');
  if (token === undefined || token === '') throw new UsageError('--svid is required');
  const c = common(flags);
  try {
    const svid = await c.client.validateJwtSvid(token, audience, { signal: c.signal });
    if (c.json) {
      io.stdout(`${JSON.stringify({ spiffe_id: svid.id.toString(), claims: svid.claims })}\n`);
    } else {
      io.stdout(
        `SVID is valid.\nSPIFFE ID : ${svid.id.toString()}\nClaims    : ${JSON.stringify(svid.claims)}\n`,
      );
    }
    return 0;
  } finally {
    c.client.close();
  }
}

async function watch(argv: readonly string[], io: CliIo): Promise<number> {
  const flags = parseFlags(argv, { socket: COMMON.socket!, output: COMMON.output! });
  const output = one(flags, 'output') ?? 'text';
  if (output !== 'text' && output !== 'json')
    throw new UsageError(`--output must be "text" or "json", got "${output}"`);
  const client = new WorkloadApiClient({ address: socketAddress(one(flags, 'socket') ?? DEFAULT_SOCKET) });
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  io.signal?.addEventListener('abort', stop, { once: true });
  const useProcessSignals = io.signal === undefined;
  if (useProcessSignals) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  const now = io.elapsedMs ?? (() => performance.now());
  let last = now();
  try {
    await client.watchX509Context(
      {
        onX509ContextUpdate(ctx) {
          const t = now();
          if (output === 'json') io.stdout(`${JSON.stringify(x509ContextJson(ctx))}\n`);
          else io.stdout(x509ContextText(ctx, t - last));
          last = t;
        },
        onX509ContextWatchError(err) {
          io.stderr(`error: ${err.message}\n`);
        },
      },
      { signal: ac.signal },
    );
    return 0;
  } finally {
    if (useProcessSignals) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    client.close();
  }
}

export const API_USAGE = `usage: tessera-agent api <command> [flags]

commands:
  fetch x509 [--write DIR]                     fetch the caller's X509-SVIDs and bundles
  fetch jwt --audience A [--audience B] [--spiffe-id ID]
                                               fetch JWT-SVIDs and the JWT bundles
  fetch bundles                                fetch the X.509 and JWT bundles
  validate jwt --audience A --svid TOKEN       validate a JWT-SVID through the agent
  watch                                        print every X.509 context update until interrupted

flags (every command):
  --socket PATH|URI   the agent's public socket (default ${DEFAULT_SOCKET})
  --output text|json  output format (default text)
  --timeout DURATION  give up after this long (default 5s, at most 2147483647ms; not for watch)
`;

/** Runs `api <verb> …`; returns the exit code. */
export async function runApi(argv: readonly string[], io: CliIo): Promise<number> {
  const [a, b, ...rest] = argv;
  if (a === undefined || a === '--help' || a === '-h' || a === 'help') {
    io.stdout(API_USAGE);
    return a === undefined ? 2 : 0;
  }
  try {
    if (a === 'fetch' && b === 'x509') return await fetchX509(rest, io);
    if (a === 'fetch' && b === 'jwt') return await fetchJwt(rest, io);
    if (a === 'fetch' && b === 'bundles') return await fetchBundles(rest, io);
    if (a === 'validate' && b === 'jwt') return await validateJwt(rest, io);
    if (a === 'watch') return await watch(b === undefined ? [] : [b, ...rest], io);
    throw new UsageError(`unknown command "api ${[a, b].filter((x) => x !== undefined).join(' ')}"`);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${API_USAGE}`);
      return 2;
    }
    if (err instanceof SpiffeError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    const e = err as { name?: string; message?: string };
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError') {
      io.stderr('error: timed out waiting for the agent\n');
      return 1;
    }
    io.stderr(`error: ${e?.message ?? String(err)}\n`);
    return 1;
  }
}
