/**
 * Integration harness for the BUILT tessera-agent (packages/agent/dist/bin/tessera-agent.js): starts it as a
 * real process in its own process group, joined to a {@link TesseraServer} with a join token, with its data in a
 * temp directory and its sockets under a short `/tmp/tsa-*` directory (Unix socket paths are limited to 107
 * bytes; the directory is 0755 so workloads running under other uids can reach the public socket). Also small
 * admin helpers (join tokens, entries, agents) over the server's admin socket, a Workload API process runner
 * (optionally under another uid with `setpriv`), and an event waiter. Everything started is always killed.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  type Agent,
  AgentMask,
  BanAgentRequest,
  BatchCreateEntryRequest,
  BatchDeleteEntryRequest,
  CreateJoinTokenRequest,
  DeleteAgentRequest,
  ListAgentsRequest,
} from '@tessera/common/api';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { adminClients, currentBundle } from './api.js';
import { GroupProcess, type ProcessResult, runGroup, spawnGroup } from './process.js';
import { REPO_ROOT, type TesseraServer, tempDir } from './server.js';

/** The built agent binary. */
export const AGENT_BIN = join(REPO_ROOT, 'packages', 'agent', 'dist', 'bin', 'tessera-agent.js');

/**
 * Polls `check` until it returns a value other than `undefined` (or throws a non-retryable error), every
 * `intervalMs`, for at most `timeoutMs`; rejects with `what` and the last error at the time limit.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A short socket directory under /tmp (0755: other uids may traverse it), removed by the returned function. */
export async function shortSocketDir(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp('/tmp/tsa-');
  await chmod(path, 0o755);
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A join token made over the admin socket, and the agent SPIFFE ID it yields. */
export async function createJoinToken(
  server: TesseraServer,
  ttlSeconds = 600,
): Promise<{ token: string; agentId: string }> {
  const c = adminClients(server);
  try {
    const t = await c.agent.createJoinToken(CreateJoinTokenRequest.fromPartial({ ttl: ttlSeconds }));
    return { token: t.value, agentId: `spiffe://${server.trustDomain}/spire/agent/join_token/${t.value}` };
  } finally {
    c.close();
  }
}

/** A registration entry to create. */
export interface EntrySpec {
  readonly parentId: string;
  readonly spiffeId: string;
  /** Selectors as `type:value` (the value may contain colons, e.g. `unix:uid:1000`). */
  readonly selectors: readonly string[];
  readonly x509SvidTtl?: number;
  readonly jwtSvidTtl?: number;
  readonly hint?: string;
  readonly dnsNames?: readonly string[];
}

function toWireId(id: string): { trustDomain: string; path: string } {
  const s = SpiffeId.fromString(id);
  return { trustDomain: s.trustDomain.name, path: s.path };
}

/** Creates entries over the admin socket; resolves to their IDs (rejects when any is refused). */
export async function createEntries(server: TesseraServer, specs: readonly EntrySpec[]): Promise<string[]> {
  const c = adminClients(server);
  try {
    const res = await c.entry.batchCreateEntry(
      BatchCreateEntryRequest.fromPartial({
        entries: specs.map((s) => ({
          parentId: toWireId(s.parentId),
          spiffeId: toWireId(s.spiffeId),
          selectors: s.selectors.map((sel) => {
            const i = sel.indexOf(':');
            return { type: sel.slice(0, i), value: sel.slice(i + 1) };
          }),
          x509SvidTtl: s.x509SvidTtl ?? 0,
          jwtSvidTtl: s.jwtSvidTtl ?? 0,
          hint: s.hint ?? '',
          dnsNames: [...(s.dnsNames ?? [])],
        })),
      }),
    );
    return res.results.map((r, i) => {
      if ((r.status?.code ?? 0) !== 0 || r.entry === undefined) {
        throw new Error(`entry ${specs[i]?.spiffeId} refused: ${r.status?.code} ${r.status?.message}`);
      }
      return r.entry.id;
    });
  } finally {
    c.close();
  }
}

/** Deletes entries over the admin socket. */
export async function deleteEntries(server: TesseraServer, ids: readonly string[]): Promise<void> {
  const c = adminClients(server);
  try {
    await c.entry.batchDeleteEntry(BatchDeleteEntryRequest.fromPartial({ ids: [...ids] }));
  } finally {
    c.close();
  }
}

/** Every attested agent the server knows. */
export async function listAgents(server: TesseraServer): Promise<Agent[]> {
  const c = adminClients(server);
  try {
    const res = await c.agent.listAgents(
      ListAgentsRequest.fromPartial({
        outputMask: AgentMask.fromPartial({
          attestationType: true,
          x509svidSerialNumber: true,
          x509svidExpiresAt: true,
          banned: true,
          canReattest: true,
        }),
      }),
    );
    return res.agents;
  } finally {
    c.close();
  }
}

/** Bans an agent over the admin socket. */
export async function banAgent(server: TesseraServer, agentId: string): Promise<void> {
  const c = adminClients(server);
  try {
    await c.agent.banAgent(BanAgentRequest.fromPartial({ id: toWireId(agentId) }));
  } finally {
    c.close();
  }
}

/** Evicts (deletes) an agent over the admin socket. */
export async function evictAgent(server: TesseraServer, agentId: string): Promise<void> {
  const c = adminClients(server);
  try {
    await c.agent.deleteAgent(DeleteAgentRequest.fromPartial({ id: toWireId(agentId) }));
  } finally {
    c.close();
  }
}

/** Options of {@link TesseraAgent.start}. */
export interface AgentStartOptions {
  /** The server to join (its address, port, trust domain and bundle are used). */
  readonly server: TesseraServer;
  /** The join token (ignored by the agent while its stored SVID is valid). */
  readonly joinToken: string;
  /** Reuse this data directory (a restart); default: a new temp directory. */
  readonly dir?: string;
  /** Reuse this socket directory (a restart); default: a new short directory under /tmp. */
  readonly socketDir?: string;
  /** Extra configuration keys, merged over the defaults (snake_case, as in the file). */
  readonly config?: Readonly<Record<string, unknown>>;
  /**
   * What to wait for: `ready` (admin `/ready` answers 200: bundle and entries synced, the default) or `serving`
   * (the public Workload API socket accepts connections: for starts while the server is down).
   */
  readonly waitFor?: 'ready' | 'serving';
  /** How long to wait. Default 30 s. */
  readonly readyTimeoutMs?: number;
}

/** A running tessera-agent process. */
export class TesseraAgent extends GroupProcess {
  /** Data directory (config, bootstrap bundle, `data/`). */
  readonly dir: string;
  /** Socket directory (`public/api.sock`, `private/admin.sock`). */
  readonly socketDir: string;
  readonly socketPath: string;
  readonly adminSocketPath: string;
  readonly configPath: string;

  private constructor(dir: string, socketDir: string, configPath: string, child: ChildProcess) {
    super('tessera-agent', child);
    this.dir = dir;
    this.socketDir = socketDir;
    this.socketPath = join(socketDir, 'public', 'api.sock');
    this.adminSocketPath = join(socketDir, 'private', 'admin.sock');
    this.configPath = configPath;
  }

  /** Writes the bootstrap bundle and config, starts `tessera-agent run`, and waits as `opts.waitFor` says. */
  static async start(opts: AgentStartOptions): Promise<TesseraAgent> {
    const dir = opts.dir ?? (await tempDir('agent')).path;
    const socketDir = opts.socketDir ?? (await shortSocketDir()).path;
    const bundlePath = join(dir, 'bootstrap-bundle.pem');
    if (opts.dir === undefined) {
      await writeFile(bundlePath, (await currentBundle(opts.server)).marshal());
    }
    const config = {
      trust_domain: opts.server.trustDomain,
      server_address: '127.0.0.1',
      server_port: opts.server.port,
      trust_bundle_path: bundlePath,
      join_token: opts.joinToken,
      socket_path: join(socketDir, 'public', 'api.sock'),
      admin_socket_path: join(socketDir, 'private', 'admin.sock'),
      data_dir: join(dir, 'data'),
      log_level: 'debug',
      ...opts.config,
    };
    const configPath = join(dir, 'agent.json');
    await writeFile(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
    const child = spawnGroup(process.execPath, [AGENT_BIN, 'run', '--config', configPath], { cwd: dir });
    const agent = new TesseraAgent(dir, socketDir, configPath, child);
    try {
      const ms = opts.readyTimeoutMs ?? 30_000;
      if ((opts.waitFor ?? 'ready') === 'ready') await agent.waitReady(ms);
      else await agent.waitServing(ms);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  /** The Workload API address (`unix:///…`). */
  get address(): string {
    return `unix://${this.socketPath}`;
  }

  #checkAlive(what: string): void {
    if (this.exited) throw this.exitedError(` while waiting for ${what}`);
  }

  /** GETs `path` on the admin socket; resolves to the HTTP status (0 when unreachable). */
  adminGet(path: string): Promise<number> {
    return new Promise((resolve) => {
      const req = request({ socketPath: this.adminSocketPath, path, method: 'GET', timeout: 2000 }, (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
      req.end();
    });
  }

  /** Resolves when `/ready` answers 200; rejects on timeout or exit (with the logs). */
  async waitReady(timeoutMs: number): Promise<void> {
    await this.#poll('/ready', timeoutMs, async () =>
      (await this.adminGet('/ready')) === 200 ? true : undefined,
    );
  }

  /** Resolves when the public socket accepts connections; rejects on timeout or exit. */
  async waitServing(timeoutMs: number): Promise<void> {
    await this.#poll(
      'the public socket',
      timeoutMs,
      () =>
        new Promise<true | undefined>((resolve) => {
          const s = connect(this.socketPath);
          s.once('connect', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(undefined));
        }),
    );
  }

  async #poll(what: string, timeoutMs: number, check: () => Promise<true | undefined>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      this.#checkAlive(what);
      if ((await check()) === true) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    this.#checkAlive(what);
    throw new Error(`tessera-agent: no ${what} after ${timeoutMs} ms:\n${this.logTail()}`);
  }
}

/** Output of a finished Workload API process. */
export interface WorkloadRun extends ProcessResult {
  /** The last stdout line parsed as JSON (undefined when it is not JSON). */
  readonly json: unknown;
}

/**
 * Runs `node <script> ...args` as a workload (its own process group, killed after `timeoutMs`), optionally as
 * another user via `setpriv --reuid=<uid> --regid=<gid> --clear-groups`.
 */
export async function runWorkload(
  script: string,
  args: readonly string[],
  opts: { uid?: number; gid?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<WorkloadRun> {
  const argv =
    opts.uid === undefined
      ? [process.execPath, script, ...args]
      : [
          'setpriv',
          `--reuid=${opts.uid}`,
          `--regid=${opts.gid ?? opts.uid}`,
          '--clear-groups',
          process.execPath,
          script,
          ...args,
        ];
  const result = await runGroup(argv[0] as string, argv.slice(1), {
    cwd: '/',
    ...(opts.env === undefined ? {} : { env: opts.env }),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  const lastLine = result.stdout.trim().split('\n').at(-1) ?? '';
  let json: unknown;
  try {
    json = JSON.parse(lastLine);
  } catch {
    json = undefined;
  }
  return { ...result, json };
}

/**
 * A standalone Workload API client script (plain ESM, importing the BUILT library by absolute path so it runs
 * under any uid). `node <script> <address> x509` prints `{"ids":[…],"serials":[…],"hints":[…]}`; `jwt <aud>`
 * prints `{"id":…,"token":…}`; any Workload API failure prints `{"error":<code>,"message":…}` and exits 3.
 */
const WORKLOAD_SCRIPT = `
const wl = await import(${JSON.stringify(join(REPO_ROOT, 'packages/spiffe/dist/workloadapi/index.js'))});
const [address, action, arg] = process.argv.slice(2);
const client = new wl.WorkloadApiClient({ address });
const out = (v) => process.stdout.write(JSON.stringify(v) + '\\n');
try {
  if (action === 'x509') {
    const ctx = await client.fetchX509Context();
    out({
      ids: ctx.svids.map((s) => s.id.toString()),
      serials: ctx.svids.map((s) => s.certificates[0].serialNumber),
      hints: ctx.svids.map((s) => s.hint),
      uid: process.getuid(),
    });
  } else if (action === 'jwt') {
    const svid = await client.fetchJwtSvid({ audience: arg });
    out({ id: svid.id.toString(), token: svid.marshal(), uid: process.getuid() });
  } else {
    throw new Error('unknown action ' + action);
  }
} catch (err) {
  out({ error: err.code ?? 'unknown', message: String(err.message), uid: process.getuid() });
  process.exitCode = 3;
} finally {
  client.close();
}
`;

/** Writes the workload script into a new world-readable temp directory; resolves to its path. */
export async function writeWorkloadScript(): Promise<{ script: string; remove: () => Promise<void> }> {
  const d = await tempDir('workload');
  await chmod(d.path, 0o755);
  const script = join(d.path, 'client.mjs');
  await writeFile(script, WORKLOAD_SCRIPT, { mode: 0o644 });
  return { script, remove: d.remove };
}
