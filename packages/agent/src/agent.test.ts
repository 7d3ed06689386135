import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { createLogger } from '@tessera/common/log';
import { type RunningAgent, startAgent } from './agent.js';
import { type AgentConfig, validateAgentConfig } from './config/index.js';
import { IdentityManager } from './manager/manager.js';
import { FakeAgentServer } from './manager/test-support/fake-server.js';
import { SvidStoreService } from './svidstore/index.js';

/** A logger whose JSON lines are kept, so tests can see what the agent logged. */
function capturingLogger() {
  const lines: { msg?: string; level?: string; step?: string }[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    destination: { write: (l: string) => void lines.push(JSON.parse(l) as { msg?: string }) },
  });
  return { logger, lines, saw: (msg: string) => lines.some((l) => l.msg === msg) };
}

/** Resolves when `cond()` holds, polling every 10 ms; rejects after `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Rejects when `p` takes longer than `ms` (a start that hangs fails the test instead of the run). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

describe('startAgent', () => {
  let server: FakeAgentServer;
  let dir: string;
  let n = 0;
  const running: RunningAgent[] = [];
  let base: Record<string, unknown>;

  before(async () => {
    server = new FakeAgentServer();
    await server.start();
    dir = await mkdtemp(join(tmpdir(), 'tessera-agent-start-'));
    await writeFile(join(dir, 'bundle.pem'), server.bundlePem());
  });
  after(async () => {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop(0);
  });

  /**
   * A fresh agent: its own data dir and sockets, no stored state, and its own join token (tokens are single-use)
   * unless `withToken` is false.
   */
  function freshConfig(over: Record<string, unknown> = {}, withToken = true): Record<string, unknown> {
    const d = join(dir, `a${++n}`);
    if (withToken) server.tokens.add(`tok-${n}`);
    base = {
      trust_domain: 'example.org',
      server_address: '127.0.0.1',
      server_port: server.port,
      trust_bundle_path: join(dir, 'bundle.pem'),
      data_dir: join(d, 'data'),
      socket_path: join(d, 'public', 'api.sock'),
      admin_socket_path: join(d, 'private', 'admin.sock'),
      log_level: 'error',
      ...(withToken ? { join_token: `tok-${n}` } : {}),
    };
    return { ...base, ...over };
  }

  function config(raw: Record<string, unknown>): AgentConfig {
    const r = validateAgentConfig(raw);
    if (!('config' in r)) assert.fail(JSON.stringify(r.errors));
    return r.config;
  }

  async function start(c: AgentConfig, logger = capturingLogger().logger): Promise<RunningAgent> {
    const a = await within(startAgent(c, { logger }), 10_000);
    running.push(a);
    return a;
  }

  it('stops the manager, the Workload API and the admin socket when the health port is in use', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const raw = freshConfig({
        health_checks: { listener_enabled: true, bind_address: '127.0.0.1', bind_port: port },
      });
      const log = capturingLogger();
      await assert.rejects(within(startAgent(config(raw), { logger: log.logger }), 10_000), (err: Error) => {
        assert.equal((err as { code?: string }).code, 'ERR_CONFIG_INVALID');
        assert.match(
          err.message,
          new RegExp(
            `^agent: cannot listen on health_checks.bind_address:bind_port "127.0.0.1:${port}": .*EADDRINUSE`,
          ),
        );
        return true;
      });
      // Everything that had started was stopped, last started first.
      assert.equal(existsSync(raw.socket_path as string), false, 'the Workload API socket is still there');
      assert.equal(existsSync(raw.admin_socket_path as string), false, 'the admin socket is still there');
      assert.ok(log.saw('Agent start failed'));
      assert.ok(log.saw('Agent stopped'));
      const steps = log.lines.filter((l) => l.msg === 'Stopping failed');
      assert.deepEqual(steps, []);
    } finally {
      blocker.close();
    }
  });

  it('fails the start when the agent is banned while the rest of it starts', async () => {
    // Deterministic: the ban arrives after the manager started and before the agent has finished starting (while
    // the SVID stores start), the window in which the manager's fatal callback used to be dropped.
    const raw = freshConfig({
      svid_stores: { disk: { directory: join(dir, 'stores') } },
    });
    const log = capturingLogger();
    const managerStart = IdentityManager.prototype.start;
    const storeStart = SvidStoreService.prototype.start;
    let manager: IdentityManager | undefined;
    IdentityManager.prototype.start = async function (this: IdentityManager, signal?: AbortSignal) {
      manager = this;
      return managerStart.call(this, signal);
    };
    SvidStoreService.prototype.start = async function (this: SvidStoreService) {
      await storeStart.call(this);
      const id = manager?.agentSvid?.id.toString() ?? '';
      const node = server.agents.get(id);
      assert.ok(node, 'the agent is not attested');
      node.banned = true;
      server.failWatchers(status.PERMISSION_DENIED, `authorization denied: agent "${id}" is banned`);
      await manager?.syncNow();
      await until(() => manager?.fatalError !== undefined);
    };
    let onFatal = 0;
    try {
      await assert.rejects(
        within(startAgent(config(raw), { logger: log.logger, onFatal: () => onFatal++ }), 10_000),
        (err: Error) => {
          assert.equal((err as { code?: string }).code, 'ERR_NODE_ATTESTATION_FAILED');
          assert.match(err.message, /banned/);
          return true;
        },
      );
    } finally {
      IdentityManager.prototype.start = managerStart;
      SvidStoreService.prototype.start = storeStart;
    }
    assert.equal(existsSync(raw.socket_path as string), false, 'a banned agent still serves workloads');
    assert.equal(existsSync(raw.admin_socket_path as string), false);
    assert.ok(log.saw('Agent stopped'));
  });

  const withoutToken = [
    { name: 'node_attestor: {join_token: {}}', over: { node_attestor: { join_token: {} } } },
    { name: 'no node_attestor (the token given to run only)', over: {} },
  ];
  for (const tc of withoutToken) {
    it(`restarts without a join token while its stored agent SVID is usable (${tc.name})`, async () => {
      const raw = freshConfig();
      const first = await start(config(raw));
      const id = first.manager.agentSvid?.id.toString();
      await first.stop(0);
      const attests = server.calls.attest;
      const { join_token: _, ...rest } = raw;
      const again = await start(config({ ...rest, ...tc.over }));
      assert.equal(again.manager.agentSvid?.id.toString(), id);
      assert.equal(server.calls.attest, attests, 'the agent attested again');
    });

    it(`fails at once with a config error naming join_token when it must attest without one (${tc.name})`, async () => {
      const raw = freshConfig(tc.over, false);
      const attests = server.calls.attest;
      const log = capturingLogger();
      await assert.rejects(within(startAgent(config(raw), { logger: log.logger }), 5000), (err: Error) => {
        assert.equal((err as { code?: string }).code, 'ERR_CONFIG_INVALID');
        assert.equal((err as { issues?: { path: string }[] }).issues?.[0]?.path, 'join_token');
        assert.match(err.message, /join_token: is required: this agent has no usable agent SVID in data_dir/);
        return true;
      });
      assert.equal(server.calls.attest, attests, 'the server was asked to attest without a token');
      assert.equal(existsSync(raw.socket_path as string), false);
      assert.ok(log.saw('Agent stopped'));
    });
  }
});
