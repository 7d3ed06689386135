import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FakeAgentServer } from '../manager/test-support/fake-server.js';

const BIN = fileURLToPath(new URL('./tessera-agent.js', import.meta.url));

interface Run {
  /** Exit code, or undefined when the process had to be killed after `timeoutMs`. */
  readonly code: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs the built binary; kills it (and reports no exit code) when it is still running after `timeoutMs`. */
function runBin(args: readonly string[], timeoutMs = 10_000): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('TESSERA_AGENT_')) env[k] = v;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: killed ? undefined : (code ?? undefined), stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('tessera-agent (the built binary)', () => {
  let server: FakeAgentServer;
  let dir: string;
  let n = 0;

  before(async () => {
    server = new FakeAgentServer();
    await server.start();
    dir = await mkdtemp(join(tmpdir(), 'tessera-agent-bin-'));
    await writeFile(join(dir, 'bundle.pem'), server.bundlePem());
  });
  after(async () => {
    server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes a config for a fresh agent (own data dir, sockets and single-use join token) and returns its path. */
  async function agentConfig(
    over: Record<string, unknown>,
    withToken = true,
  ): Promise<{ path: string; raw: Record<string, unknown> }> {
    const d = join(dir, `a${++n}`);
    await mkdir(d);
    if (withToken) server.tokens.add(`tok-${n}`);
    const raw = {
      trust_domain: 'example.org',
      server_address: '127.0.0.1',
      server_port: server.port,
      trust_bundle_path: join(dir, 'bundle.pem'),
      data_dir: join(d, 'data'),
      socket_path: join(d, 'public', 'api.sock'),
      admin_socket_path: join(d, 'private', 'admin.sock'),
      log_level: 'error',
      ...(withToken ? { join_token: `tok-${n}` } : {}),
      ...over,
    };
    const path = join(d, 'agent.json');
    await writeFile(path, JSON.stringify(raw));
    return { path, raw };
  }

  describe('run, when the start fails after attestation', () => {
    it('exits 1 with the coded error when socket_path is under a regular file', async () => {
      const file = join(dir, 'not-a-dir');
      await writeFile(file, 'x');
      const { path } = await agentConfig({ socket_path: join(file, 'api.sock') });
      const r = await runBin(['run', '--config', path]);
      assert.equal(r.code, 1, `still running after ${r.ms} ms; stderr: ${r.stderr}`);
      assert.match(
        r.stderr,
        /tessera-agent: the agent did not start \(ERR_CONFIG_INVALID\): agent: cannot create the directory of socket_path ".*not-a-dir\/api\.sock": EEXIST/,
      );
    });

    it('exits 1 and removes the Workload API socket when the health port is in use', async () => {
      const blocker: Server = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
      const port = (blocker.address() as { port: number }).port;
      try {
        const { path, raw } = await agentConfig({
          health_checks: { listener_enabled: true, bind_address: '127.0.0.1', bind_port: port },
        });
        const r = await runBin(['run', '--config', path]);
        assert.equal(r.code, 1, `still running after ${r.ms} ms; stderr: ${r.stderr}`);
        assert.match(
          r.stderr,
          new RegExp(
            `the agent did not start \\(ERR_CONFIG_INVALID\\): agent: cannot listen on health_checks.bind_address:bind_port "127.0.0.1:${port}"`,
          ),
        );
        assert.equal(existsSync(raw.socket_path as string), false);
        assert.equal(existsSync(raw.admin_socket_path as string), false);
      } finally {
        blocker.close();
      }
    });
  });

  for (const over of [{ node_attestor: { join_token: {} } }, {}]) {
    it(`run exits 1 naming join_token when it must attest and no token is given (${JSON.stringify(over)})`, async () => {
      const { path } = await agentConfig(over, false);
      const v = await runBin(['validate', '--config', path]);
      assert.equal(v.code, 0, v.stderr);
      const r = await runBin(['run', '--config', path]);
      assert.equal(r.code, 1, `still running after ${r.ms} ms; stderr: ${r.stderr}`);
      assert.match(r.stderr, /\(ERR_CONFIG_INVALID\): config: 1 problem:\n\s+join_token: is required/);
    });
  }

  describe('healthcheck --config', () => {
    it('needs only admin_socket_path from the file (the join token may be given to run only)', async () => {
      const d = join(dir, 'hc');
      await mkdir(join(d, 'private'), { recursive: true, mode: 0o700 });
      const socket = join(d, 'private', 'admin.sock');
      const admin = createHttpServer((req, res) => {
        res.writeHead(req.url === '/ready' ? 200 : 404).end('{"ready":true}');
      });
      await new Promise<void>((r) => admin.listen(socket, () => r()));
      try {
        // No join token, no node_attestor, no trust bundle, and a key this version does not know.
        const path = join(d, 'agent.yaml');
        await writeFile(
          path,
          `trust_domain: example.org\nserver_address: 127.0.0.1\nadmin_socket_path: ${socket}\nfuture_key: 1\n`,
        );
        const r = await runBin(['healthcheck', '--config', path]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, 'Agent is healthy.\n');
      } finally {
        admin.close();
      }
    });

    it('still refuses an invalid admin_socket_path, naming it', async () => {
      const path = join(dir, 'hc-bad.yaml');
      await writeFile(path, `admin_socket_path: /tmp/${'a'.repeat(120)}/admin.sock\n`);
      const r = await runBin(['healthcheck', '--config', path]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /admin_socket_path: /);
    });
  });
});
