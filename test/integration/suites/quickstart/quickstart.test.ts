/**
 * The quick start (`npm start`, scripts/start.mjs) on the built tree, as a real process tree: success line,
 * printed commands, clean SIGINT shutdown without leftovers, reuse of the data directory, busy port.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, PortTakenError, portTakenIn, retryOnTakenPort } from '../../harness/ports.js';

const OK_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tessera')
      return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('quickstart: repository root not found');
    dir = up;
  }
}

const ROOT = repoRoot();
const START = join(ROOT, 'scripts/start.mjs');
const SERVER_BIN = join(ROOT, 'packages/server/dist/bin/tessera-server.js');
const AGENT_SOURCE = join(ROOT, 'packages/agent/src/bin/tessera-agent.ts');

/** PIDs of live processes (other than this one) whose command line or environment mentions `marker`. */
function processesMentioning(marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    for (const file of ['cmdline', 'environ']) {
      try {
        if (readFileSync(`/proc/${name}/${file}`, 'utf8').includes(marker)) {
          out.push(Number(name));
          break;
        }
      } catch {
        // gone, or not ours to read
      }
    }
  }
  return out;
}

interface Run {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves when start.mjs has exited and its output has been read to the end. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLine(pred: (l: string) => boolean, ms: number): Promise<string>;
}

function startDemo(dir: string, port: number): Run {
  const child = spawn(process.execPath, [START, '--dir', dir, '--port', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  for (const s of [child.stdout, child.stderr]) {
    if (s === null) continue;
    createInterface({ input: s }).on('line', (l) => {
      lines.push(l);
      for (const w of waiters) w();
    });
  }
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('close', (code, signal) => r({ code, signal })),
  );
  return {
    child,
    lines,
    exit,
    waitForLine(pred, ms) {
      return new Promise((resolvePromise, reject) => {
        const check = () => {
          const hit = lines.find(pred);
          if (hit !== undefined) {
            clearTimeout(timer);
            resolvePromise(hit);
          }
        };
        const timer = setTimeout(
          () =>
            reject(new Error(`quickstart: no matching line within ${ms} ms; output:\n${lines.join('\n')}`)),
          ms,
        );
        waiters.push(check);
        void exit.then(() => {
          check();
          clearTimeout(timer);
          reject(new Error(`quickstart: start.mjs exited first; output:\n${lines.join('\n')}`));
        });
        check();
      });
    },
  };
}

async function stop(run: Run): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  run.child.kill('SIGINT');
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error('quickstart: start.mjs did not exit after SIGINT')),
      STOP_TIMEOUT_MS,
    ).unref(),
  );
  return Promise.race([run.exit, timeout]);
}

const OK_LINE = (l: string) =>
  l.startsWith('demo: mTLS OK') &&
  l.includes('spiffe://tessera.demo/demo/client') &&
  l.includes('spiffe://tessera.demo/demo/server');

/**
 * Starts the demo on a server port picked free (start.mjs's --port must be a real port: the agent is given it)
 * and waits for the mTLS OK line. Another process may take the port before the server binds it: start.mjs then
 * exits, saying the port is in use (its own check) or showing the server's EADDRINUSE (in the server log tail
 * it prints), and the demo is started again on a newly picked port.
 */
function startDemoOnFreePort(dir: string, runs: Run[]): Promise<Run> {
  return retryOnTakenPort(async () => {
    const port = await freePort();
    const run = startDemo(dir, port);
    runs.push(run);
    try {
      await run.waitForLine(OK_LINE, OK_TIMEOUT_MS);
      return run;
    } catch (err) {
      const output = run.lines.join('\n');
      if (output.includes(`start: port ${port} on 127.0.0.1 is in use`) || portTakenIn(output, port)) {
        await run.exit;
        throw new PortTakenError(port, err);
      }
      throw err;
    }
  });
}

const agentInCheckout = existsSync(AGENT_SOURCE);

describe('the quick start (scripts/start.mjs)', {
  skip: agentInCheckout ? false : 'tessera-agent is not in this checkout',
}, () => {
  let base = '';
  let dir = '';
  const runs: Run[] = [];

  before(() => {
    base = mkdtempSync(join(tmpdir(), 'tessera-qs-'));
    dir = join(base, 'demo');
  });

  after(() => {
    for (const r of runs) {
      if (r.child.exitCode === null && r.child.pid !== undefined) {
        try {
          process.kill(-r.child.pid, 'SIGKILL');
        } catch {}
      }
    }
    for (const pid of processesMentioning(base)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    rmSync(base, { recursive: true, force: true });
  });

  it('reaches "demo: mTLS OK" naming both SPIFFE IDs and prints the sockets and the commands to try', {
    timeout: OK_TIMEOUT_MS + STOP_TIMEOUT_MS + 20_000,
  }, async () => {
    const run = await startDemoOnFreePort(dir, runs);
    const bundleCmd = await run.waitForLine(
      (l) => /tessera-server\.js bundle show --socket /.test(l),
      10_000,
    );
    await run.waitForLine((l) => /tessera-agent\.js api fetch x509 --socket /.test(l), 1000);
    await run.waitForLine(
      (l) => /tessera-server\.js entry create --socket .* --selector unix:uid:\d+$/.test(l),
      1000,
    );
    const agentSocket = (await run.waitForLine((l) => l.includes('Workload API (agent):'), 1000))
      .split(':')
      .slice(1)
      .join(':')
      .trim();
    assert.ok(existsSync(agentSocket), `agent socket ${agentSocket} exists`);

    // The printed command works as printed (relative to the repository root).
    const words = bundleCmd.trim().split(/\s+/);
    assert.equal(words[0], 'node');
    const shown = spawnSync(process.execPath, words.slice(1), {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /^-----BEGIN CERTIFICATE-----/);

    // Positive control for the leftover check: start.mjs, server, agent and both demo services are found.
    const running = processesMentioning(base);
    assert.ok(running.length >= 5, `expected at least 5 processes, found ${running.length}`);

    const { code, signal } = await stop(run);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, run.lines.join('\n'));
    assert.deepEqual(processesMentioning(base), []);
    assert.equal(existsSync(agentSocket), false, 'agent socket removed');
    assert.equal(existsSync(join(dir, 'demo.pid')), false, 'pid file removed');
    assert.ok(run.lines.some((l) => l.startsWith('start: stopped')));
  });

  it('reuses the data directory on a second run without attesting the agent again', {
    timeout: OK_TIMEOUT_MS + STOP_TIMEOUT_MS + 20_000,
  }, async () => {
    assert.ok(existsSync(join(dir, 'server')), 'first run left its state');
    const run = await startDemoOnFreePort(dir, runs);
    const serverSocket = (await run.waitForLine((l) => l.includes('server admin API:'), 10_000))
      .split(':')
      .slice(1)
      .join(':')
      .trim();
    const agents = spawnSync(
      process.execPath,
      [SERVER_BIN, 'agent', 'list', '--socket', serverSocket, '--output', 'json'],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    assert.equal(agents.status, 0, agents.stderr);
    const list = JSON.parse(agents.stdout) as { agents?: unknown[] };
    assert.equal(list.agents?.length, 1, agents.stdout);
    const { code, signal } = await stop(run);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, run.lines.join('\n'));
    assert.deepEqual(processesMentioning(base), []);
  });

  it('refuses to start with a clear message when the server port is taken', { timeout: 30_000 }, async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const addr = blocker.address();
    assert.ok(addr !== null && typeof addr !== 'string');
    try {
      const r = spawnSync(
        process.execPath,
        [START, '--dir', join(base, 'busy'), '--port', String(addr.port)],
        {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 20_000,
        },
      );
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`^start: port ${addr.port} on 127\\.0\\.0\\.1 is in use`));
      assert.deepEqual(processesMentioning(join(base, 'busy')), []);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});
