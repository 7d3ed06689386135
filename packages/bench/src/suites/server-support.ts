/**
 * Shared plumbing of the server and agent benchmarks: temp dirs, free ports, the BUILT tessera-server binary
 * spawned as a real process (readiness = its "Server started" log line), admin clients over its Unix socket,
 * join-token attestation and mTLS clients of the agent API, and child-process cleanup on every exit path.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type ChannelCredentials, credentials } from '@grpc/grpc-js';
import {
  AgentService,
  type AttestAgentResponse,
  BundleService,
  type Entry,
  EntryService,
  makeClient,
  type ServiceDefinitionLike,
  type TypedClient,
} from '@tessera/common/api';
import { buildCsr } from '@tessera/common/x509';
import { freePort } from '@tessera/testing';

/** The trust domain every benchmark uses. */
export const BENCH_TD = 'bench.example';

const require = createRequire(import.meta.url);

/** Absolute path of a built binary of a workspace package (`@tessera/server` → dist/bin/tessera-server.js). */
export function builtBin(pkg: '@tessera/server' | '@tessera/agent', bin: string): string {
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'bin', `${bin}.js`);
}

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** Creates a temp dir removed by {@link removeTempDir} or, at the latest, when the bench process exits. */
export function makeTempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `tessera-bench-${prefix}-`));
  tempDirs.add(d);
  return d;
}

/** Removes a temp dir made by {@link makeTempDir}. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`bench: no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** A spawned child that is killed on exit of the bench. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Milliseconds from spawn() to the ready predicate matching a stdout line. */
  readonly readyMs: number;
  /** Collected stderr (for failure messages). */
  stderr(): string;
  /** Calls `fn` with every later stdout line; returns the unsubscribe function. */
  onLine(fn: (line: string) => void): () => void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Spawns `node <args>` and resolves once a stdout line satisfies `ready`. Rejects (and kills the child) when
 * it exits first or `timeoutMs` passes.
 */
export function spawnNode(
  args: readonly string[],
  ready: (line: string) => boolean,
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Child> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  children.add(child);
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (err.length < 20_000) err += d;
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
  });
  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  const listeners = new Set<(line: string) => void>();
  const onLine = (fn: (line: string) => void) => {
    listeners.add(fn);
    return () => listeners.delete(fn);
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      void stop(0);
      reject(new Error(`bench: ${args.join(' ')} not ready after ${opts.timeoutMs ?? 30_000} ms: ${err}`));
    }, opts.timeoutMs ?? 30_000);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (done) {
          for (const fn of listeners) fn(line);
        } else if (ready(line)) {
          done = true;
          clearTimeout(timer);
          const readyMs = performance.now() - t0;
          resolve({ process: child, pid: child.pid as number, readyMs, stderr: () => err, stop, onLine });
        }
        nl = buf.indexOf('\n');
      }
    });
    child.once('exit', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`bench: ${args.join(' ')} exited (${code ?? signal}) before ready: ${err}`));
    });
  });
}

/** Whether a pino JSON line carries `msg`. */
export function logLine(msg: string): (line: string) => boolean {
  return (line) => {
    if (!line.includes(msg)) return false;
    try {
      return (JSON.parse(line) as { msg?: unknown }).msg === msg;
    } catch {
      return false;
    }
  };
}

/** A tessera-server process and clients of it. */
export interface BenchServer {
  readonly child: Child;
  readonly dir: string;
  readonly tcpPort: number;
  readonly socketPath: string;
  /** The trust bundle's X.509 authorities as PEM. */
  readonly bundlePem: string;
  /** An admin client over the admin socket (closed by stop()). */
  admin<S extends ServiceDefinitionLike>(svc: S): TypedClient<S>;
  /** An agent-API client over mTLS (or TLS only without an identity); closed by stop(). */
  tcp<S extends ServiceDefinitionLike>(svc: S, id?: AgentIdentity): TypedClient<S>;
  /** Stops the server and closes the clients (the dir stays: the caller owns it). */
  stop(): Promise<void>;
}

/** An attested agent's SVID and key. */
export interface AgentIdentity {
  readonly agentId: string;
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
}

/** Writes a server config (JSON) into `dir` and returns its path. */
export function writeServerConfig(
  dir: string,
  tcpPort: number,
  extra: Record<string, unknown> = {},
): { configPath: string; socketPath: string } {
  const socketPath = join(dir, 'private', 'api.sock');
  const configPath = join(dir, 'server.json');
  const config = {
    trust_domain: BENCH_TD,
    bind_address: '127.0.0.1',
    bind_port: tcpPort,
    socket_path: socketPath,
    data_dir: join(dir, 'data'),
    key_manager: { type: 'disk' },
    rate_limit: { attestation: 0, signing: 0 },
    log_level: 'info',
    log_format: 'json',
    ...extra,
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { configPath, socketPath };
}

/**
 * Starts the built tessera-server on a config in `dir` (written unless `configPath` is given). Set
 * TESSERA_BENCH_CPU_PROF=<dir> to run it under --cpu-prof.
 */
export async function startBenchServer(
  dir: string,
  opts: { extraConfig?: Record<string, unknown>; timeoutMs?: number } = {},
): Promise<BenchServer> {
  const tcpPort = await freePort();
  const { configPath, socketPath } = writeServerConfig(dir, tcpPort, opts.extraConfig);
  const prof = process.env.TESSERA_BENCH_CPU_PROF;
  const nodeArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const child = await spawnNode(
    [...nodeArgs, builtBin('@tessera/server', 'tessera-server'), 'run', '--config', configPath],
    logLine('Server started'),
    { timeoutMs: opts.timeoutMs ?? 60_000 },
  );
  const clients: { close(): void }[] = [];
  const admin = <S extends ServiceDefinitionLike>(svc: S): TypedClient<S> => {
    const c = makeClient(svc, `unix://${socketPath}`, credentials.createInsecure());
    clients.push(c);
    return c;
  };
  let bundlePem: string;
  try {
    const b = await admin(BundleService).getBundle({ outputMask: undefined });
    bundlePem = b.x509Authorities.map((a) => new X509Certificate(a.asn1).toString()).join('');
  } catch (err) {
    await child.stop();
    throw err;
  }
  const tlsCreds = (id?: AgentIdentity): ChannelCredentials =>
    credentials.createSsl(
      Buffer.from(bundlePem),
      id === undefined ? null : Buffer.from(id.key.export({ format: 'pem', type: 'pkcs8' })),
      id === undefined ? null : Buffer.from(id.chain.map((d) => new X509Certificate(d).toString()).join('')),
      { checkServerIdentity: () => undefined },
    );
  return {
    child,
    dir,
    tcpPort,
    socketPath,
    bundlePem,
    admin,
    tcp<S extends ServiceDefinitionLike>(svc: S, id?: AgentIdentity): TypedClient<S> {
      const c = makeClient(svc, `127.0.0.1:${tcpPort}`, tlsCreds(id), {
        'grpc.ssl_target_name_override': 'localhost',
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
      });
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      await child.stop();
    },
  };
}

/** Creates a join token on the server and attests a new agent with it over TLS. */
export async function attestAgent(server: BenchServer, token: string): Promise<AgentIdentity> {
  await server.admin(AgentService).createJoinToken({ ttl: 600, token, agentId: undefined });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const call = server.tcp(AgentService).attestAgent();
  return new Promise((resolve, reject) => {
    call.on('data', (res: AttestAgentResponse) => {
      const svid = res.result?.svid;
      if (svid === undefined) return;
      resolve({
        agentId: `spiffe://${svid.id?.trustDomain}${svid.id?.path}`,
        chain: svid.certChain,
        key: privateKey,
      });
      call.end();
    });
    call.on('error', reject);
    call.write({
      params: {
        data: { type: 'join_token', payload: Buffer.from(token) },
        params: { csr: buildCsr(privateKey) },
      },
    });
  });
}

/** An entry to create through the admin API. */
export interface EntrySpec {
  readonly spiffePath: string;
  readonly parentId: string;
  readonly selectors: readonly { type: string; value: string }[];
  readonly x509SvidTtl?: number;
  readonly hint?: string;
}

function toApiEntry(e: EntrySpec): Entry {
  return {
    id: '',
    spiffeId: { trustDomain: BENCH_TD, path: e.spiffePath },
    parentId: { trustDomain: BENCH_TD, path: new URL(e.parentId).pathname },
    selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtl: e.x509SvidTtl ?? 0,
    federatesWith: [],
    admin: false,
    downstream: false,
    expiresAt: 0n,
    dnsNames: [],
    revisionNumber: 0n,
    storeSvid: false,
    jwtSvidTtl: 0,
    hint: e.hint ?? '',
    createdAt: 0n,
  };
}

/** Creates entries through the admin API in batches of 500; returns their IDs in order. */
export async function createEntries(server: BenchServer, specs: readonly EntrySpec[]): Promise<string[]> {
  const client = server.admin(EntryService);
  const ids: string[] = [];
  for (let i = 0; i < specs.length; i += 500) {
    const res = await client.batchCreateEntry({
      entries: specs.slice(i, i + 500).map(toApiEntry),
      outputMask: undefined,
    });
    for (const r of res.results) {
      if (r.status?.code !== 0 || r.entry === undefined) {
        throw new Error(`bench: entry creation failed: ${r.status?.message ?? 'no status'}`);
      }
      ids.push(r.entry.id);
    }
  }
  return ids;
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Runs `fn` (which returns how many units it did) keeping `concurrency` calls in flight for about `ms` after
 * `warmMs`; returns units/s over [warm-up end, last completion], prorating calls that straddle the start.
 */
export async function concurrentRate(
  fn: () => Promise<number>,
  opts: { ms: number; warmMs: number; concurrency: number },
): Promise<number> {
  const warmEnd = performance.now() + opts.warmMs;
  const measureEnd = warmEnd + opts.ms;
  let units = 0;
  let last = warmEnd;
  const worker = async () => {
    for (;;) {
      const t = performance.now();
      if (t >= measureEnd) return;
      const n = await fn();
      const done = performance.now();
      if (done > warmEnd) {
        units += t >= warmEnd ? n : (n * (done - warmEnd)) / (done - t);
        last = Math.max(last, done);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return (units * 1000) / (last - warmEnd);
}
