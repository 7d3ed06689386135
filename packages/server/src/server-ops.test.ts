import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import {
  AgentService,
  BundleService,
  CountEntriesRequest,
  EntryService,
  GetEntryRequest,
  MintJWTSVIDRequest,
  NewJWTSVIDRequest,
  SVIDService,
} from '@tessera/common/api';
import { buildCsr } from '@tessera/common/x509';
import { runCli } from './cli/index.js';
import { READY_MAX_INDEX_AGE_MS } from './server.js';
import { type AgentIdentity, type LiveServer, startLiveServer } from './testing/live-server.js';

/** The value of the sample `name{labels}` in Prometheus text (labels in the metric's label order). */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** The gRPC status code of a call that must fail. */
async function failureCode(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: unknown; details?: unknown };
    assert.equal(typeof e.code, 'number', `not a gRPC failure: ${String(err)}`);
    return { code: e.code as number, details: String(e.details ?? '') };
  }
  assert.fail('expected the call to fail');
}

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    io: { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: process.cwd() },
  });
  return { code, stdout, stderr };
}

describe('tessera-server health, metrics and audit log', () => {
  let live: LiveServer;
  let healthPort: number;
  let metricsPort: number;
  const TD = 'example.org';

  before(async () => {
    // The live server binds both listeners on free ports of its own choosing (the ports named here are not used).
    live = await startLiveServer({
      config: {
        health_checks: { listener_enabled: true, bind_address: '127.0.0.1' },
        metrics: { bind_address: '127.0.0.1', bind_port: 9988 },
      },
    });
    assert.ok(live.server.healthPort !== undefined && live.server.metricsPort !== undefined);
    healthPort = live.server.healthPort;
    metricsPort = live.server.metricsPort;
  });
  after(async () => {
    await live.close();
  });

  it('answers /live and /ready with 200 on the health listener', async () => {
    const liveRes = await fetch(`http://127.0.0.1:${healthPort}/live`);
    assert.equal(liveRes.status, 200);
    assert.deepEqual(await liveRes.json(), { live: true });
    const readyRes = await fetch(`http://127.0.0.1:${healthPort}/ready`);
    assert.equal(readyRes.status, 200);
    assert.deepEqual(await readyRes.json(), { ready: true });
  });

  it('answers 404 for unknown paths and 405 for other methods, and serves no metrics there', async () => {
    assert.equal((await fetch(`http://127.0.0.1:${healthPort}/metrics`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${healthPort}/nope`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${healthPort}/live`, { method: 'POST' })).status, 405);
  });

  it('reports healthy through `healthcheck` on the admin socket', async () => {
    const r = await cli(['healthcheck', '--socket', live.socketPath]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Server is healthy.\n');
    const j = await cli(['healthcheck', '--socket', live.socketPath, '--output', 'json']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), { healthy: true });
  });

  it('reports unhealthy through `healthcheck` when nothing listens on the socket', async () => {
    const r = await cli(['healthcheck', '--socket', `${live.dir}/missing.sock`, '--verbose']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Server is unhealthy: /);
  });

  it('exposes RPC counts and latency, attestations by result, SVIDs issued, entries, agents and authority expiry', async () => {
    await live.createJoinToken('metrics-token');
    const agent = await live.attestJoinToken('metrics-token');
    const refused = await failureCode(live.attestJoinToken('no-such-token'));
    assert.notEqual(refused.code, status.OK);
    const entryId = await live.createEntry('/metrics/workload', agent.agentId);
    const svid = live.tcp(SVIDService, agent);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const batch = await svid.batchNewX509Svid({
      params: [
        { entryId, csr: buildCsr(privateKey) },
        { entryId: 'not-an-entry', csr: buildCsr(privateKey) },
      ],
    });
    assert.deepEqual(
      batch.results.map((r) => r.status?.code),
      [status.OK, status.PERMISSION_DENIED],
    );
    await svid.newJwtsvid(NewJWTSVIDRequest.fromPartial({ entryId, audience: ['a'] }));
    await live
      .admin(SVIDService)
      .mintJwtsvid(
        MintJWTSVIDRequest.fromPartial({ id: { trustDomain: TD, path: '/minted' }, audience: ['b'] }),
      );
    // An anonymous TLS caller is refused an admin RPC by the auth interceptor before any handler runs.
    const denied = await failureCode(
      live.tcp(EntryService).countEntries(CountEntriesRequest.fromPartial({})),
    );
    assert.equal(denied.code, status.PERMISSION_DENIED);

    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const m = (series: string) => sample(text, series);
    const rpc = (method: string, code: string) =>
      m(`tessera_server_rpc_total{method="${method}",code="${code}"}`);

    assert.equal(rpc('spire.api.server.agent.v1.Agent/CreateJoinToken', 'OK'), 1);
    assert.equal(rpc('spire.api.server.agent.v1.Agent/AttestAgent', 'OK'), 1);
    assert.equal(rpc('spire.api.server.agent.v1.Agent/AttestAgent', status[refused.code] as string), 1);
    assert.equal(rpc('spire.api.server.svid.v1.SVID/BatchNewX509SVID', 'OK'), 1);
    assert.equal(rpc('spire.api.server.svid.v1.SVID/NewJWTSVID', 'OK'), 1);
    assert.equal(rpc('spire.api.server.entry.v1.Entry/CountEntries', 'PERMISSION_DENIED'), 1);
    assert.equal(
      m('tessera_server_rpc_duration_seconds_count{method="spire.api.server.svid.v1.SVID/BatchNewX509SVID"}'),
      1,
    );
    assert.equal(
      m(
        'tessera_server_rpc_duration_seconds_bucket{method="spire.api.server.svid.v1.SVID/BatchNewX509SVID",le="+Inf"}',
      ),
      1,
    );
    assert.ok(
      (m(
        'tessera_server_rpc_duration_seconds_sum{method="spire.api.server.svid.v1.SVID/BatchNewX509SVID"}',
      ) ?? -1) > 0,
    );
    assert.equal(m('tessera_server_node_attestations_total{attestor="join_token",result="OK"}'), 1);
    assert.equal(
      m(`tessera_server_node_attestations_total{attestor="join_token",result="${status[refused.code]}"}`),
      1,
    );
    assert.equal(m('tessera_server_svids_issued_total{type="x509",source="agent"}'), 1);
    // Only the SVID actually issued of the batch counts.
    assert.equal(m('tessera_server_svids_issued_total{type="x509",source="workload"}'), 1);
    assert.equal(m('tessera_server_svids_issued_total{type="jwt",source="workload"}'), 1);
    assert.equal(m('tessera_server_svids_issued_total{type="jwt",source="mint"}'), 1);
    assert.equal(m('tessera_server_entries'), 1);
    assert.equal(m('tessera_server_agents'), 1);
    assert.ok((m('tessera_server_connections') ?? 0) >= 1);
    for (const kind of ['x509', 'jwt'] as const) {
      const active = live.server.ca.showAuthorities(kind).active;
      assert.ok(active);
      assert.equal(
        m(
          `tessera_server_authority_expiry_timestamp_seconds{kind="${kind}",status="active",authority_id="${active.authorityId}"}`,
        ),
        Math.floor(active.notAfter.getTime() / 1000),
      );
    }
    assert.match(text, /^# TYPE tessera_server_rpc_duration_seconds histogram$/m);
    assert.match(text, /^# HELP tessera_server_rpc_total /m);
  });

  it('writes one audit line per admin call with caller, method and result, and no token or key', async () => {
    const from = live.logLines.length;
    const secretToken = 'audit-secret-0123456789abcdef';
    await live.createJoinToken(secretToken);
    const entry = live.admin(EntryService);
    await entry.countEntries(CountEntriesRequest.fromPartial({}));
    const missing = await failureCode(entry.getEntry(GetEntryRequest.fromPartial({ id: 'no-such-entry' })));
    assert.equal(missing.code, status.NOT_FOUND);
    await live.admin(SVIDService).mintX509Svid({
      csr: buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, {
        uris: [`spiffe://${TD}/audit/minted`],
      }),
      ttl: 0,
    });
    const denied = await failureCode(
      live.tcp(EntryService).countEntries(CountEntriesRequest.fromPartial({})),
    );
    assert.equal(denied.code, status.PERMISSION_DENIED);

    const lines = live.logLines.slice(from);
    const audits = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.audit === true);
    assert.deepEqual(
      audits.map((a) => ({
        subsystem: a.subsystem,
        msg: a.msg,
        method: a.method,
        caller_id: a.caller_id,
        caller_address: a.caller_address,
        status: a.status,
      })),
      [
        ['/spire.api.server.agent.v1.Agent/CreateJoinToken', 'local', 'local', 'OK'],
        ['/spire.api.server.entry.v1.Entry/CountEntries', 'local', 'local', 'OK'],
        ['/spire.api.server.entry.v1.Entry/GetEntry', 'local', 'local', 'NOT_FOUND'],
        ['/spire.api.server.svid.v1.SVID/MintX509SVID', 'local', 'local', 'OK'],
        ['/spire.api.server.entry.v1.Entry/CountEntries', 'anonymous', '127.0.0.1', 'PERMISSION_DENIED'],
      ].map(([method, caller_id, caller_address, st]) => ({
        subsystem: 'audit',
        msg: 'API accessed',
        method,
        caller_id,
        caller_address,
        status: st,
      })),
    );
    assert.match(String(audits[2]?.status_message), /not found/i);
    for (const l of live.logLines) {
      assert.ok(!l.includes(secretToken), `a log line contains the join token: ${l}`);
      assert.ok(!l.includes('PRIVATE KEY'), `a log line contains a private key: ${l}`);
    }
  });

  it('writes no audit line for agent calls', async () => {
    await live.createJoinToken('agent-only-token');
    const agent = await live.attestJoinToken('agent-only-token');
    const entryId = await live.createEntry('/audit/agent-call', agent.agentId);
    const from = live.logLines.length;
    await live
      .tcp(SVIDService, agent)
      .newJwtsvid(NewJWTSVIDRequest.fromPartial({ entryId, audience: ['x'] }));
    const audits = live.logLines
      .slice(from)
      .filter((l) => (JSON.parse(l) as { audit?: unknown }).audit === true);
    assert.deepEqual(audits, []);
  });

  it('stops serving health and fails `healthcheck` once closed', async () => {
    await live.server.close();
    await assert.rejects(fetch(`http://127.0.0.1:${healthPort}/live`), TypeError);
    const r = await cli(['healthcheck', '--socket', live.socketPath]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Server is unhealthy: unable to get the bundle\n');
  });
});

describe('tessera-server rate limits end to end', () => {
  it('answers ResourceExhausted to the attestation over the per-address limit', async () => {
    // The limiters' clock is frozen: no token comes back during the test, so the limit is exact.
    const live = await startLiveServer({
      config: { rate_limit: { attestation: 2, signing: 1000 } },
      rateLimitNowMs: () => 1_000_000,
    });
    try {
      // Three attempts from one address: the limit (2 per second, burst 2) lets two reach the attestor.
      const results = await Promise.all(
        ['t1', 't2', 't3'].map((t) => failureCode(live.attestJoinToken(`missing-${t}`))),
      );
      const exhausted = results.filter((r) => r.code === status.RESOURCE_EXHAUSTED);
      assert.equal(exhausted.length, 1, JSON.stringify(results));
      assert.match(exhausted[0]?.details ?? '', /rate limit exceeded: too many attestations/);
      assert.equal(
        results.filter((r) => r.code === status.PERMISSION_DENIED).length,
        2,
        JSON.stringify(results),
      );
    } finally {
      await live.close();
    }
  });

  it('answers ResourceExhausted to the signing request over the per-agent limit', async () => {
    const live = await startLiveServer({
      config: { rate_limit: { attestation: 1000, signing: 3 } },
      rateLimitNowMs: () => 1_000_000,
    });
    try {
      await live.createJoinToken('signing-token');
      const agent = await live.attestJoinToken('signing-token');
      const entryId = await live.createEntry('/limited', agent.agentId);
      const svid = live.tcp(SVIDService, agent);
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const csr = buildCsr(privateKey);
      // A batch of 3 takes the whole bucket (3 per second, burst 3); the next SVIDs are refused.
      const ok = await svid.batchNewX509Svid({ params: [1, 2, 3].map(() => ({ entryId, csr })) });
      const [over, jwtOver] = await Promise.all([
        failureCode(svid.batchNewX509Svid({ params: [{ entryId, csr }] })),
        failureCode(svid.newJwtsvid(NewJWTSVIDRequest.fromPartial({ entryId, audience: ['a'] }))),
      ]);
      assert.deepEqual(
        ok.results.map((r) => r.status?.code),
        [status.OK, status.OK, status.OK],
      );
      for (const f of [over, jwtOver]) {
        assert.equal(f.code, status.RESOURCE_EXHAUSTED);
        assert.match(f.details, /rate limit exceeded: too many SVIDs signed/);
      }
    } finally {
      await live.close();
    }
  });
});

describe('tessera-server issuance_workers', () => {
  for (const workers of [0, 2]) {
    it(`signs a batch of X509-SVIDs with issuance_workers: ${workers}`, async () => {
      const live = await startLiveServer({ config: { issuance_workers: workers } });
      try {
        assert.equal(live.server.ca.issuanceWorkers, workers);
        await live.createJoinToken('workers-token');
        const agent = await live.attestJoinToken('workers-token');
        const entryId = await live.createEntry('/workers', agent.agentId);
        const svid = live.tcp(SVIDService, agent);
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const csr = buildCsr(privateKey);
        const r = await svid.batchNewX509Svid({ params: [1, 2, 3].map(() => ({ entryId, csr })) });
        assert.deepEqual(
          r.results.map((x) => x.status?.code),
          [status.OK, status.OK, status.OK],
        );
      } finally {
        await live.close();
      }
    });
  }
});

describe('tessera-server /ready follows the entry index', () => {
  it('is ready while the index keeps up, and unready once the datastore is gone for longer than the limit', async () => {
    // The server's clock stands still but for `skewMs`, moved forward to jump past the limit at once: how long
    // the steps take on a loaded machine does not count against the limit.
    const startMs = Date.now();
    let skewMs = 0;
    const live = await startLiveServer({
      config: { health_checks: { listener_enabled: true, bind_address: '127.0.0.1' } },
      now: () => new Date(startMs + skewMs),
    });
    const ready = async () => {
      const res = await fetch(`http://127.0.0.1:${live.server.healthPort}/ready`);
      return { status: res.status, body: (await res.json()) as unknown };
    };
    try {
      assert.ok(live.server.index.lastRefreshAt !== undefined, 'the index has loaded');
      assert.deepEqual(await ready(), { status: 200, body: { ready: true } });

      // Positive control: a jump of the clock alone recovers with the next successful refresh.
      skewMs += READY_MAX_INDEX_AGE_MS * 2;
      await live.server.index.refresh();
      assert.deepEqual(await ready(), { status: 200, body: { ready: true } });

      // The datastore goes away: once a refresh has failed (and none is left in flight), the index stops
      // advancing, and past the limit the server is no longer ready.
      await live.server.datastore.close();
      await assert.rejects(live.server.index.refresh());
      const last = live.server.index.lastRefreshAt;
      assert.equal(live.server.ready(), true, 'still within the limit');
      skewMs += READY_MAX_INDEX_AGE_MS + 1;
      assert.deepEqual(await ready(), { status: 503, body: { ready: false } });
      assert.equal(live.server.ready(), false);
      assert.equal(live.server.index.lastRefreshAt, last, 'no refresh succeeded since');
    } finally {
      await live.close();
    }
  });
});

describe('tessera-server two-phase agent SVID renewal', () => {
  /** Renews the agent's SVID with RenewAgent over its current SVID; returns the new identity. */
  async function renew(live: LiveServer, agent: AgentIdentity): Promise<AgentIdentity> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const res = await live.tcp(AgentService, agent).renewAgent({ params: { csr: buildCsr(privateKey) } });
    const chain = res.svid?.certChain ?? [];
    assert.ok(chain.length > 0, 'RenewAgent returned an SVID');
    return { chain, key: privateKey, agentId: agent.agentId };
  }
  const serialOf = (id: AgentIdentity) =>
    BigInt(`0x${new X509Certificate(id.chain[0] as Buffer).serialNumber}`).toString();
  const getBundle = (live: LiveServer, id: AgentIdentity) =>
    live.tcp(BundleService, id).getBundle({ outputMask: undefined });

  it('accepts the current and the new serial until the new one is used, then refuses the old one', async () => {
    const live = await startLiveServer();
    try {
      await live.createJoinToken('renew-token');
      const old = await live.attestJoinToken('renew-token');
      const renewed = await renew(live, old);
      assert.notEqual(serialOf(renewed), serialOf(old));
      const before = await live.server.datastore.fetchAttestedNode(old.agentId);
      assert.equal(before?.certSerial, serialOf(old));
      assert.equal(before?.newCertSerial, serialOf(renewed));

      // Phase one: the old SVID still works and promotes nothing.
      await getBundle(live, old);
      assert.equal(
        (await live.server.datastore.fetchAttestedNode(old.agentId))?.newCertSerial,
        serialOf(renewed),
      );

      // Phase two: the first calls with the new SVID (two at once share one promotion) promote it.
      await Promise.all([getBundle(live, renewed), getBundle(live, renewed)]);
      const after = await live.server.datastore.fetchAttestedNode(old.agentId);
      assert.equal(after?.certSerial, serialOf(renewed));
      assert.equal(after?.newCertSerial, undefined);
      assert.equal(after?.newCertNotAfter, undefined);
      assert.equal(
        after?.certNotAfter.getTime(),
        new Date(new X509Certificate(renewed.chain[0] as Buffer).validTo).getTime(),
      );

      // From now on the old SVID is refused, the new one accepted.
      const refused = await failureCode(getBundle(live, old));
      assert.equal(refused.code, status.PERMISSION_DENIED);
      assert.match(refused.details, /presented an SVID that is not its current one/);
      await getBundle(live, renewed);

      // A second renewal starts over from the promoted SVID.
      const third = await renew(live, renewed);
      await getBundle(live, renewed);
      await getBundle(live, third);
      assert.equal((await failureCode(getBundle(live, renewed))).code, status.PERMISSION_DENIED);
    } finally {
      await live.close();
    }
  });

  it('refuses the first call with the new SVID when the promotion cannot be written', async () => {
    const live = await startLiveServer();
    try {
      await live.createJoinToken('renew-down-token');
      const old = await live.attestJoinToken('renew-down-token');
      const renewed = await renew(live, old);
      await live.server.datastore.close();
      const f = await failureCode(getBundle(live, renewed));
      assert.equal(f.code, status.UNAVAILABLE);
      assert.match(f.details, /^authorization failed: could not activate the renewed agent SVID$/);
    } finally {
      await live.close();
    }
  });
});
