/**
 * agent-health-metrics: `tessera-agent healthcheck` against the built agent (exit 0 when ready, 1 when not
 * ready or when the admin socket is missing), `/live` and `/ready` on the admin socket, and the `/metrics` text
 * after real Workload API traffic (calls by RPC and code, open streams, SVIDs issued, sync latency, cache sizes,
 * attestation results).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { SpiffeWorkloadAPIService, WorkloadApiClient } from '@tessera/spiffe/workloadapi';
import { AGENT_BIN, createEntries, createJoinToken, TesseraAgent, waitFor } from '../../harness/agent.js';
import { TesseraServer } from '../../harness/server.js';

const WORKLOAD_ID = 'spiffe://example.org/it/health-metrics';
const AUDIENCE = 'spiffe://example.org/it/backend';
const WL = 'SpiffeWorkloadAPI';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function healthcheck(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [AGENT_BIN, 'healthcheck', ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function adminGet(socketPath: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The samples of a Prometheus text document: `name{labels}` → value (labels as written, in order). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `malformed sample line: ${line}`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

function sample(s: Map<string, number>, key: string): number {
  const v = s.get(key);
  assert.notEqual(v, undefined, `no sample ${key} in:\n${[...s.keys()].join('\n')}`);
  return v as number;
}

describe('agent-health-metrics: healthcheck, /live, /ready and /metrics of the built agent', () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let client: WorkloadApiClient;
  let scratch: string;

  before(async () => {
    server = await TesseraServer.start();
    const t = await createJoinToken(server);
    await createEntries(server, [
      { parentId: t.agentId, spiffeId: WORKLOAD_ID, selectors: [`unix:uid:${process.getuid?.() ?? 0}`] },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: t.token });
    client = new WorkloadApiClient({ address: agent.address });
    scratch = await mkdtemp(join(tmpdir(), 'tessera-hc-'));
  });
  after(async () => {
    client?.close();
    await agent?.stop();
    await server?.stop();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  it('01 healthcheck exits 0 for a ready agent, by --admin-socket, by --config and with --shallow', async () => {
    for (const args of [
      ['--admin-socket', agent.adminSocketPath],
      ['--config', agent.configPath],
      ['--admin-socket', agent.adminSocketPath, '--shallow'],
    ]) {
      const r = await healthcheck(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Agent is healthy\.$/m);
    }
  });

  it('02 healthcheck exits 1 when the admin socket does not exist, naming it', async () => {
    const missing = join(scratch, 'nothing.sock');
    const r = await healthcheck(['--admin-socket', missing]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(`Agent is unhealthy: cannot reach "${missing.replaceAll('/', '\\/')}"`),
    );
  });

  it('03 healthcheck exits 1 when /ready answers 503, and 0 with --shallow while /live answers 200', async () => {
    // A stand-in admin socket for an agent that is alive but not ready (e.g. before its first sync).
    const sock = join(scratch, 'not-ready.sock');
    const seen: string[] = [];
    const fake = createServer((req, res) => {
      seen.push(req.url ?? '');
      if (req.url === '/live') res.writeHead(200).end('{"live":true}');
      else res.writeHead(503).end('{"ready":false}');
    });
    await new Promise<void>((r) => fake.listen(sock, r));
    try {
      const deep = await healthcheck(['--admin-socket', sock]);
      assert.equal(deep.code, 1);
      assert.match(deep.stderr, /Agent is unhealthy: status 503/);
      const shallow = await healthcheck(['--admin-socket', sock, '--shallow']);
      assert.equal(shallow.code, 0, shallow.stderr);
      assert.deepEqual(seen, ['/ready', '/live']);
    } finally {
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });

  it('04 /live and /ready answer JSON on the admin socket; other paths get 404', async () => {
    const live = await adminGet(agent.adminSocketPath, '/live');
    assert.equal(live.status, 200);
    assert.deepEqual(JSON.parse(live.body), { live: true });
    const ready = await adminGet(agent.adminSocketPath, '/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { ready: true });
    assert.equal((await adminGet(agent.adminSocketPath, '/nope')).status, 404);
  });

  it('05 /metrics counts Workload API calls by RPC and code, open streams, issued SVIDs, syncs and cache sizes', async () => {
    // Traffic: one X509-SVID fetch, one JWT-SVID, a call without the header, and a stream kept open.
    const ctx = await client.fetchX509Context();
    assert.equal(ctx.svids[0]?.id.toString(), WORKLOAD_ID);
    await client.fetchJwtSvid({ audience: AUDIENCE });
    const raw = new Client(agent.address, credentials.createInsecure());
    const d = SpiffeWorkloadAPIService.fetchJwtsvid;
    const noHeader = await new Promise<ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(
        d.path,
        d.requestSerialize,
        d.responseDeserialize,
        { audience: [AUDIENCE], spiffeId: '' },
        new Metadata(),
        (err) => resolve(err),
      ),
    );
    assert.ok(noHeader);
    const md = new Metadata();
    md.set('workload.spiffe.io', 'true');
    const x = SpiffeWorkloadAPIService.fetchX509Svid;
    const stream = raw.makeServerStreamRequest(x.path, x.requestSerialize, x.responseDeserialize, {}, md);
    stream.on('error', () => {});
    await new Promise((r) => stream.once('data', r));

    const open = await adminGet(agent.adminSocketPath, '/metrics');
    assert.equal(open.status, 200);
    assert.equal(open.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(open.body, /^# HELP tessera_agent_workload_api_calls_total /m);
    assert.match(open.body, /^# TYPE tessera_agent_workload_api_calls_total counter$/m);
    assert.match(open.body, /^# TYPE tessera_agent_sync_duration_seconds histogram$/m);
    const s1 = samples(open.body);
    assert.equal(
      sample(s1, `tessera_agent_workload_api_open_streams{service="${WL}",method="FetchX509SVID"}`),
      1,
    );
    assert.equal(
      sample(s1, `tessera_agent_workload_api_calls_total{service="${WL}",method="FetchJWTSVID",code="OK"}`),
      1,
    );
    assert.equal(
      sample(
        s1,
        `tessera_agent_workload_api_calls_total{service="${WL}",method="FetchJWTSVID",code="INVALID_ARGUMENT"}`,
      ),
      1,
    );
    assert.equal(
      sample(
        s1,
        `tessera_agent_workload_api_unary_call_duration_seconds_count{service="${WL}",method="FetchJWTSVID"}`,
      ),
      2,
    );
    assert.ok(sample(s1, 'tessera_agent_x509_svids_issued_total{reason="new"}') >= 1);
    assert.equal(sample(s1, 'tessera_agent_jwt_svids_issued_total'), 1);
    assert.equal(sample(s1, 'tessera_agent_node_attestations_total{kind="attest",result="success"}'), 1);
    assert.ok(sample(s1, 'tessera_agent_sync_duration_seconds_count{kind="entries",result="success"}') >= 1);
    assert.ok(sample(s1, 'tessera_agent_sync_duration_seconds_count{kind="bundles",result="success"}') >= 1);
    assert.equal(sample(s1, 'tessera_agent_workload_attestation_failures_total'), 0);
    assert.equal(sample(s1, 'tessera_agent_entries'), 1);
    assert.equal(sample(s1, 'tessera_agent_x509_svids'), 1);
    assert.equal(sample(s1, 'tessera_agent_jwt_svids'), 1);
    assert.equal(sample(s1, 'tessera_agent_ready'), 1);
    assert.ok(sample(s1, 'tessera_agent_subscriptions') >= 1);

    // The stream ends (client cancel): it is no longer open and counts as CANCELLED.
    stream.cancel();
    raw.close();
    const s2 = await waitFor(
      'the stream to be counted as closed',
      async () => {
        const s = samples((await adminGet(agent.adminSocketPath, '/metrics')).body);
        return s.get(`tessera_agent_workload_api_open_streams{service="${WL}",method="FetchX509SVID"}`) === 0
          ? s
          : undefined;
      },
      5000,
    );
    assert.ok(
      sample(
        s2,
        `tessera_agent_workload_api_calls_total{service="${WL}",method="FetchX509SVID",code="CANCELLED"}`,
      ) >= 1,
    );
  });

  it('06 healthcheck exits 1 once the agent has stopped', async () => {
    const exit = await agent.terminate();
    assert.equal(exit.code, 0);
    const r = await healthcheck(['--config', agent.configPath]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Agent is unhealthy: cannot reach/);
  });
});
