#!/usr/bin/env node
// `npm start` (after `npm run build`): the one-command demo.
//
// 1. starts tessera-server on embedded SQLite (data in <dir>/server, reused when re-run);
// 2. makes a join token on the spot (alias spiffe://tessera.demo/demo/node) and registers two entries for the
//    current uid, one per demo service, told apart by their hints (demo-server, demo-client), with 60 s SVIDs;
// 3. starts tessera-agent joined with the token (data in <dir>/agent; a re-run reuses its stored SVID);
// 4. runs the two demo services (packages/demo): they get their SVIDs from the agent and talk mTLS, printing
//    `demo: mTLS OK ...` and every rotation, until Ctrl-C stops everything (children, sockets) and exits 0.
//
// Options (flags or environment):
//   --dir DIR          TESSERA_DEMO_DIR        data directory (default ./.tessera/demo under the repository)
//   --port N           TESSERA_DEMO_PORT       tessera-server agent API port on 127.0.0.1 (default 8081)
//   --demo-port N      TESSERA_DEMO_HTTPS_PORT demo https server port on 127.0.0.1 (default 0: any free port)
//   --svid-ttl S       TESSERA_DEMO_SVID_TTL   X509-SVID lifetime of the demo entries in seconds (default 60)
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TRUST_DOMAIN = 'tessera.demo';
const NODE_ALIAS = `spiffe://${TRUST_DOMAIN}/demo/node`;
const SERVICES = {
  server: { id: `spiffe://${TRUST_DOMAIN}/demo/server`, hint: 'demo-server' },
  client: { id: `spiffe://${TRUST_DOMAIN}/demo/client`, hint: 'demo-client' },
};
const BIN = {
  server: join(ROOT, 'packages/server/dist/bin/tessera-server.js'),
  agent: join(ROOT, 'packages/agent/dist/bin/tessera-agent.js'),
  demoServer: join(ROOT, 'packages/demo/dist/server.js'),
  demoClient: join(ROOT, 'packages/demo/dist/client.js'),
};
const READY_TIMEOUT_MS = 30_000;
const DEMO_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 10_000;

function say(line) {
  process.stdout.write(`${line}\n`);
}

let lockTaken;

function fail(message) {
  process.stderr.write(`start: ${message}\n`);
  if (lockTaken !== undefined) rmSync(lockTaken, { force: true });
  process.exit(1);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        dir: { type: 'string' },
        port: { type: 'string' },
        'demo-port': { type: 'string' },
        'svid-ttl': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${err.message} (see the options at the top of scripts/start.mjs)`);
  }
  if (values.help) {
    const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
    say(
      text
        .slice(
          1,
          text.findIndex((l) => l.startsWith('import')),
        )
        .map((l) => l.replace(/^\/\/ ?/, ''))
        .join('\n'),
    );
    process.exit(0);
  }
  const env = process.env;
  const int = (name, raw, min, max) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      fail(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const dir = resolve(values.dir ?? env.TESSERA_DEMO_DIR ?? join(ROOT, '.tessera/demo'));
  return {
    dir,
    port: int('--port', values.port ?? env.TESSERA_DEMO_PORT ?? '8081', 1, 65535),
    demoPort: int('--demo-port', values['demo-port'] ?? env.TESSERA_DEMO_HTTPS_PORT ?? '0', 0, 65535),
    svidTtl: int('--svid-ttl', values['svid-ttl'] ?? env.TESSERA_DEMO_SVID_TTL ?? '60', 10, 86_400),
  };
}

/** Unix socket paths must stay under ~107 bytes: inside the data dir when short enough, else under /tmp. */
function socketDir(dir) {
  const inside = join(dir, 'sockets');
  if (Buffer.byteLength(join(inside, 'agent/private/admin.sock')) <= 100) return inside;
  const tag = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  return join('/tmp', `tessera-demo-${process.getuid?.() ?? 0}-${tag}`);
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** One demo per data directory: a pid file, checked against a live process running this script. */
function takeLock(file) {
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim());
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {}
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && cmdline.includes('start.mjs')) {
      fail(
        `another demo (pid ${pid}) is running with this data directory; stop it first (Ctrl-C in its terminal)`,
      );
    }
  }
  writeFileSync(file, `${process.pid}\n`);
  lockTaken = file;
}

function portFree(port) {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.once('error', (err) => resolvePort(err.code === 'EADDRINUSE' ? 'in use' : err.message));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () =>
      probe.close(() => resolvePort(undefined)),
    );
  });
}

function tail(file, lines = 25) {
  try {
    return readFileSync(file, 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => (l.length > 400 ? `${l.slice(0, 400)} …` : l))
      .join('\n');
  } catch {
    return '(no log)';
  }
}

/** Runs a CLI command to completion (bounded), returning its exit status and output. */
function cli(bin, args, timeout = 20_000) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error?.message || '') };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
const opts = options();
const missing = Object.entries(BIN).filter(([, p]) => !existsSync(p));
if (missing.length > 0) {
  fail(
    `not built yet: ${missing.map(([, p]) => relative(ROOT, p)).join(', ')}\n` +
      '  run `npm start` (it builds first) or `npm run build`; if the build succeeded and tessera-agent is still\n' +
      '  missing, the agent is not finished in this checkout (issue 4): the library demo still runs with\n' +
      '  `node packages/spiffe/examples/dist/https-mtls.js`.',
  );
}

const dirs = {
  root: opts.dir,
  server: join(opts.dir, 'server'),
  agent: join(opts.dir, 'agent'),
  logs: join(opts.dir, 'logs'),
  sockets: socketDir(opts.dir),
};
const sockets = {
  server: join(dirs.sockets, 'server/private/api.sock'),
  agent: join(dirs.sockets, 'agent/public/api.sock'),
  agentAdmin: join(dirs.sockets, 'agent/private/admin.sock'),
};
const lockFile = join(dirs.root, 'demo.pid');

const uid = process.getuid?.();
if (uid === undefined) fail('the demo needs a POSIX system (unix:uid workload attestation)');

/** Children by name, in start order; stopped in reverse order. */
const children = [];
let stopping = false;

function startChild(name, bin, args, { env = {}, logFile, onLine } = {}) {
  let out = 'ignore';
  let fd;
  if (logFile !== undefined) {
    fd = openSync(logFile, 'a', 0o600);
    out = fd;
  } else {
    out = 'pipe';
  }
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
    detached: true, // own process group: Ctrl-C reaches only this script, which stops children in order
  });
  if (fd !== undefined) closeSync(fd);
  const entry = { name, child, logFile, exited: false, code: null, signal: null };
  child.once('exit', (code, signal) => {
    entry.exited = true;
    entry.code = code;
    entry.signal = signal;
    if (!stopping) {
      process.stderr.write(`start: ${name} exited unexpectedly (${signal ?? `code ${code}`})\n`);
      if (logFile !== undefined)
        process.stderr.write(`--- last lines of ${logFile}\n${tail(logFile)}\n---\n`);
      void shutdown(1);
    }
  });
  if (logFile === undefined) {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        say(line);
        onLine?.(line);
      });
    }
  }
  children.push(entry);
  return entry;
}

function waitExit(entry, ms) {
  if (entry.exited) return Promise.resolve(true);
  return new Promise((r) => {
    const t = setTimeout(() => r(false), ms);
    entry.child.once('exit', () => {
      clearTimeout(t);
      r(true);
    });
  });
}

function killGroup(entry, signal) {
  try {
    process.kill(-entry.child.pid, signal);
  } catch {}
}

async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  say('start: stopping the demo services, the agent and the server');
  for (const entry of [...children].reverse()) {
    if (entry.exited) continue;
    killGroup(entry, 'SIGTERM');
    if (!(await waitExit(entry, STOP_TIMEOUT_MS))) {
      process.stderr.write(
        `start: ${entry.name} did not stop within ${STOP_TIMEOUT_MS / 1000}s, killing it\n`,
      );
      killGroup(entry, 'SIGKILL');
      await waitExit(entry, 2000);
    }
  }
  for (const s of Object.values(sockets)) rmSync(s, { force: true });
  if (dirs.sockets !== join(dirs.root, 'sockets')) rmSync(dirs.sockets, { recursive: true, force: true });
  rmSync(lockFile, { force: true });
  say(`start: stopped; state kept in ${dirs.root} (delete it to start from scratch)`);
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
process.on('exit', () => {
  for (const entry of children) if (!entry.exited) killGroup(entry, 'SIGKILL');
});

async function waitFor(what, check, entry) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (stopping) return;
    const r = check();
    if (r.ok) return;
    last = r.why ?? '';
    await sleep(300);
  }
  process.stderr.write(
    `start: ${what} not ready after ${READY_TIMEOUT_MS / 1000}s${last ? `: ${last}` : ''}\n`,
  );
  if (entry?.logFile !== undefined)
    process.stderr.write(`--- last lines of ${entry.logFile}\n${tail(entry.logFile)}\n---\n`);
  await shutdown(1);
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function main() {
  mkdirSync(dirs.root, { recursive: true, mode: 0o700 });
  chmodSync(dirs.root, 0o700);
  takeLock(lockFile);
  const busy = await portFree(opts.port);
  if (busy !== undefined) {
    fail(
      `port ${opts.port} on 127.0.0.1 is ${busy} (another tessera-server or demo?); free it or choose another\n` +
        `  port: npm start -- --port 18081   (or TESSERA_DEMO_PORT=18081 npm start)`,
    );
  }
  if (opts.demoPort !== 0) {
    const demoBusy = await portFree(opts.demoPort);
    if (demoBusy !== undefined)
      fail(`demo https port ${opts.demoPort} on 127.0.0.1 is ${demoBusy}; choose another with --demo-port`);
  }

  for (const d of [dirs.server, dirs.agent, dirs.logs]) mkdirSync(d, { recursive: true, mode: 0o700 });
  mkdirSync(dirs.sockets, { recursive: true, mode: 0o755 });

  // 1. tessera-server on embedded SQLite.
  const serverConfig = join(dirs.root, 'server.yaml');
  writeFileSync(
    serverConfig,
    [
      '# Written by scripts/start.mjs (the quick-start demo); rewritten on every run.',
      `trust_domain: ${TRUST_DOMAIN}`,
      'bind_address: 127.0.0.1',
      `bind_port: ${opts.port}`,
      `socket_path: ${JSON.stringify(sockets.server)}`,
      `data_dir: ${JSON.stringify(dirs.server)}`,
      'log_level: info',
      'log_format: text',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  say(
    `start: starting tessera-server (trust domain ${TRUST_DOMAIN}, data in ${relative(process.cwd(), dirs.server) || '.'})`,
  );
  const server = startChild('tessera-server', BIN.server, ['run', '--config', serverConfig], {
    logFile: join(dirs.logs, 'server.log'),
  });
  await waitFor(
    'tessera-server',
    () => {
      const r = cli(BIN.server, ['healthcheck', '--socket', sockets.server, '--verbose'], 8000);
      return { ok: r.status === 0, why: r.stderr.trim() };
    },
    server,
  );
  if (stopping) return;

  // 2. The bootstrap bundle, a join token and the demo entries.
  const bundle = cli(BIN.server, ['bundle', 'show', '--socket', sockets.server]);
  if (bundle.status !== 0 || !bundle.stdout.includes('BEGIN CERTIFICATE')) {
    process.stderr.write(`start: bundle show failed: ${bundle.stderr.trim()}\n`);
    return shutdown(1);
  }
  const bundlePath = join(dirs.root, 'bootstrap-bundle.pem');
  writeFileSync(bundlePath, bundle.stdout, { mode: 0o644 });

  const token = cli(BIN.server, [
    'token',
    'generate',
    '--socket',
    sockets.server,
    '--spiffe-id',
    NODE_ALIAS,
    '--ttl',
    '600',
    '--output',
    'json',
  ]);
  const tokenValue = parseJson(token.stdout)?.value;
  if (token.status !== 0 || typeof tokenValue !== 'string' || tokenValue === '') {
    process.stderr.write(`start: token generate failed: ${token.stderr.trim() || token.stdout.trim()}\n`);
    return shutdown(1);
  }

  for (const svc of Object.values(SERVICES)) {
    const shown = cli(BIN.server, [
      'entry',
      'show',
      '--socket',
      sockets.server,
      '--spiffe-id',
      svc.id,
      '--output',
      'json',
    ]);
    const existing = (parseJson(shown.stdout)?.entries ?? []).filter((e) => e?.hint === svc.hint);
    if (shown.status === 0 && existing.length > 0) continue;
    const created = cli(BIN.server, [
      'entry',
      'create',
      '--socket',
      sockets.server,
      '--parent-id',
      NODE_ALIAS,
      '--spiffe-id',
      svc.id,
      '--selector',
      `unix:uid:${uid}`,
      '--hint',
      svc.hint,
      '--x509-svid-ttl',
      String(opts.svidTtl),
    ]);
    if (created.status !== 0) {
      process.stderr.write(
        `start: entry create ${svc.id} failed: ${created.stderr.trim() || created.stdout.trim()}\n`,
      );
      return shutdown(1);
    }
  }
  say(
    `start: entries for uid ${uid}: ${SERVICES.server.id} (hint ${SERVICES.server.hint}), ${SERVICES.client.id} (hint ${SERVICES.client.hint})`,
  );

  // 3. tessera-agent, joined with the token (ignored when its stored SVID is still valid).
  const agentConfig = join(dirs.root, 'agent.yaml');
  writeFileSync(
    agentConfig,
    [
      '# Written by scripts/start.mjs (the quick-start demo); rewritten on every run. The join token is passed in',
      '# the environment (TESSERA_AGENT_JOIN_TOKEN), not stored here.',
      `trust_domain: ${TRUST_DOMAIN}`,
      'server_address: 127.0.0.1',
      `server_port: ${opts.port}`,
      `trust_bundle_path: ${JSON.stringify(bundlePath)}`,
      `socket_path: ${JSON.stringify(sockets.agent)}`,
      `admin_socket_path: ${JSON.stringify(sockets.agentAdmin)}`,
      `data_dir: ${JSON.stringify(dirs.agent)}`,
      'log_level: info',
      'log_format: text',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  say(`start: starting tessera-agent (data in ${relative(process.cwd(), dirs.agent) || '.'})`);
  const agent = startChild('tessera-agent', BIN.agent, ['run', '--config', agentConfig], {
    env: { TESSERA_AGENT_JOIN_TOKEN: tokenValue },
    logFile: join(dirs.logs, 'agent.log'),
  });
  await waitFor(
    'tessera-agent',
    () => ({ ok: existsSync(sockets.agent), why: `no socket at ${sockets.agent}` }),
    agent,
  );
  if (stopping) return;

  // 4. The demo services.
  const endpoint = { SPIFFE_ENDPOINT_SOCKET: `unix://${sockets.agent}` };
  let ok = false;
  const okTimer = setTimeout(() => {
    if (!ok && !stopping) {
      process.stderr.write(
        `start: no mTLS success after ${DEMO_TIMEOUT_MS / 1000}s; the logs are in ${dirs.logs} (still trying)\n`,
      );
    }
  }, DEMO_TIMEOUT_MS);
  okTimer.unref();
  let clientStarted = false;
  const common = (self, peer) => ['--hint', self.hint, '--self', self.id, '--peer', peer.id];
  startChild(
    'demo server',
    BIN.demoServer,
    [...common(SERVICES.server, SERVICES.client), '--port', String(opts.demoPort)],
    {
      env: endpoint,
      onLine: (line) => {
        const m = /^demo: server .* listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(line);
        if (m === null || clientStarted) return;
        clientStarted = true;
        startChild(
          'demo client',
          BIN.demoClient,
          [...common(SERVICES.client, SERVICES.server), '--port', m[1]],
          {
            env: endpoint,
            onLine: (l) => {
              if (ok || !l.startsWith('demo: mTLS OK')) return;
              ok = true;
              nextSteps();
            },
          },
        );
      },
    },
  );
}

function nextSteps() {
  const r = (p) => relative(process.cwd(), p) || '.';
  const srv = `node ${r(BIN.server)}`;
  const agt = `node ${r(BIN.agent)}`;
  say(`
start: the demo is running. SVIDs live ${opts.svidTtl}s and rotate at half-life; rotations show up below.
  Workload API (agent):   ${sockets.agent}
  server admin API:       ${sockets.server}
  server agent API:       127.0.0.1:${opts.port}
  logs:                   ${r(dirs.logs)}/server.log, ${r(dirs.logs)}/agent.log
Try, in another terminal:
  ${agt} api fetch x509 --socket ${sockets.agent}
  ${srv} entry create --socket ${sockets.server} --parent-id ${NODE_ALIAS} --spiffe-id spiffe://${TRUST_DOMAIN}/demo/mine --selector unix:uid:${uid}
  ${srv} bundle show --socket ${sockets.server}
Press Ctrl-C to stop.
`);
}

main().catch((err) => {
  process.stderr.write(`start: ${err instanceof Error ? err.message : String(err)}\n`);
  void shutdown(1);
});
