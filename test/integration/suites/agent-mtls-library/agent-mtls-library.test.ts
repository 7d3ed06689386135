/**
 * agent-mtls-library: two Node services, separate processes under different uids, get their SVIDs from the
 * real agent through the library's X509Source and authenticate each other with mTLS (mtlsServerOptions /
 * mtlsClientOptions + authorizeId); every request keeps succeeding across several SVID rotations.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { authorizeAny, createSpiffeHttpsAgent, mtlsClientOptions } from '@tessera/spiffe/tls';
import { X509Source } from '@tessera/spiffe/workloadapi';
import { createEntries, createJoinToken, TesseraAgent, waitFor } from '../../harness/agent.js';
import { REPO_ROOT, TesseraServer, tempDir } from '../../harness/server.js';

const SERVER_UID = process.getuid?.() ?? 0;
const CLIENT_UID = 65534;
const SERVER_ID = 'spiffe://example.org/it/mtls-server';
const CLIENT_ID = 'spiffe://example.org/it/mtls-client';
const TTL_SECONDS = 10;
const WANTED = 3;

const dist = (p: string) => JSON.stringify(join(REPO_ROOT, 'packages/spiffe/dist', p));
/** One script, two roles: `server <peerId>` (HTTPS, mTLS) or `client <peerId> <port>` (a request every 200 ms). */
const SERVICE = `
import { request } from 'node:https';
const { X509Source } = await import(${dist('workloadapi/index.js')});
const tls = await import(${dist('tls/index.js')});
const { SpiffeId } = await import(${dist('spiffeid/index.js')});
const [address, role, peer, port] = process.argv.slice(2);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\\n');
const source = await X509Source.create({ address });
const authorizer = tls.authorizeId(SpiffeId.fromString(peer));
if (role === 'server') {
  const server = tls.createSpiffeHttpsServer(tls.mtlsServerOptions(source, source, authorizer), {}, (req, res) => {
    res.end(JSON.stringify({
      client: tls.peerIdFromSocket(req.socket).toString(),
      clientCert: req.socket.getPeerCertificate().serialNumber,
    }));
  });
  server.listen(0, '127.0.0.1', () => out({ listening: server.address().port, id: source.getX509Svid().id.toString() }));
} else {
  const agent = tls.createSpiffeHttpsAgent(() => tls.mtlsClientOptions(source, source, authorizer), { keepAlive: false });
  const once = () => new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: Number(port), path: '/', agent }, (res) => {
      const serverCert = res.socket.getPeerCertificate().serialNumber;
      const server = tls.peerIdFromSocket(res.socket).toString();
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ ok: res.statusCode === 200, server, serverCert, ...JSON.parse(body) }));
    });
    req.on('error', (err) => resolve({ ok: false, error: String(err) }));
    req.end();
  });
  for (;;) {
    out(await once());
    await new Promise((r) => setTimeout(r, 200));
  }
}
`;

interface Service {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  stderr: string;
}

function startService(script: string, args: string[], uid?: number): Service {
  const argv =
    uid === undefined
      ? [process.execPath, script, ...args]
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, script, ...args];
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: '/',
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const svc: Service = { child, lines: [], stderr: '' };
  if (child.stdout !== null)
    createInterface({ input: child.stdout }).on('line', (l) =>
      svc.lines.push(JSON.parse(l) as Record<string, unknown>),
    );
  child.stderr?.on('data', (c: Buffer) => (svc.stderr += c.toString()));
  return svc;
}

function killService(svc: Service | undefined): void {
  if (svc?.child.pid === undefined || svc.child.exitCode !== null) return;
  try {
    process.kill(-svc.child.pid, 'SIGKILL');
  } catch {
    // gone
  }
}

describe('agent-mtls-library: two services authenticate each other with mTLS across rotations', {
  skip: SERVER_UID !== 0 && 'needs root to run the client service as another uid',
}, () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let service: Service | undefined;
  let client: Service | undefined;
  let port = 0;

  before(async () => {
    server = await TesseraServer.start({ config: { default_x509_svid_ttl: `${TTL_SECONDS}s` } });
    const t = await createJoinToken(server);
    await createEntries(server, [
      {
        parentId: t.agentId,
        spiffeId: SERVER_ID,
        selectors: [`unix:uid:${SERVER_UID}`],
        x509SvidTtl: TTL_SECONDS,
      },
      {
        parentId: t.agentId,
        spiffeId: CLIENT_ID,
        selectors: [`unix:uid:${CLIENT_UID}`],
        x509SvidTtl: TTL_SECONDS,
      },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: t.token, config: { log_level: 'info' } });
    dir = await tempDir('mtls');
    await chmod(dir.path, 0o755);
    await writeFile(join(dir.path, 'service.mjs'), SERVICE, { mode: 0o644 });
  });
  after(async () => {
    killService(client);
    killService(service);
    await agent?.stop();
    await server?.stop();
    await dir?.remove();
  });

  it('01 the server service starts with its SVID from the agent', async () => {
    service = startService(join(dir.path, 'service.mjs'), [agent.address, 'server', CLIENT_ID]);
    const first = await waitFor(
      'the server service to listen',
      () => {
        if (service?.child.exitCode !== null) throw new Error(`service exited: ${service?.stderr}`);
        return service.lines[0];
      },
      20_000,
    );
    assert.equal(first.id, SERVER_ID);
    port = first.listening as number;
    assert.ok(port > 0);
  });

  it(`02 the client service (uid ${CLIENT_UID}) keeps succeeding while both SVIDs rotate ${WANTED - 1}+ times`, async () => {
    client = startService(
      join(dir.path, 'service.mjs'),
      [agent.address, 'client', SERVER_ID, String(port)],
      CLIENT_UID,
    );
    const distinct = (key: string) => new Set(client?.lines.map((l) => l[key])).size;
    await waitFor(
      `${WANTED} server and client certificates`,
      () => {
        const failed = client?.lines.find((l) => l.ok !== true);
        if (failed !== undefined) return failed; // stop at the first failure and report it below
        if (client?.child.exitCode !== null) throw new Error(`client exited: ${client?.stderr}`);
        return distinct('serverCert') >= WANTED && distinct('clientCert') >= WANTED ? true : undefined;
      },
      60_000,
      200,
    );
    const lines = client.lines;
    for (const l of lines) {
      assert.equal(l.ok, true, JSON.stringify(l));
      assert.equal(l.server, SERVER_ID, 'the client verified the server SPIFFE ID');
      assert.equal(l.client, CLIENT_ID, 'the server verified the client SPIFFE ID');
    }
    process.stdout.write(
      `# agent-mtls-library: ${lines.length} mTLS requests, all OK, over ${distinct('serverCert')} server and ${distinct('clientCert')} client certificates\n`,
    );
  });

  it('03 a caller with another identity is refused by the server authorizer (authorizeId)', async () => {
    // This process runs as the server's uid, so the agent gives it the server's own SVID, not the client's.
    const source = await X509Source.create({ address: agent.address });
    try {
      assert.equal(source.getX509Svid().id.toString(), SERVER_ID);
      const httpsAgent = createSpiffeHttpsAgent(() => mtlsClientOptions(source, source, authorizeAny()), {
        keepAlive: false,
      });
      const result = await new Promise<string>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/', agent: httpsAgent }, (res) => {
          res.resume();
          resolve(`HTTP ${res.statusCode}`);
        });
        req.on('error', (err) => resolve(`error: ${err.message}`));
        req.end();
      });
      assert.match(result, /^error: /, result);
    } finally {
      source.close();
    }
  });
});
