import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509SvidSync } from '@tessera/spiffe/svid';
import { TestCa } from '@tessera/testing';
import { createJoinTokenAttestor, createX509PopAttestor } from '../attestor/node/node-attestor.js';
import { ServerClient } from '../client/client.js';
import {
  IdentityManager,
  type IdentityManagerConfig,
  type ManagerLogger,
  type ManagerServerClient,
} from './manager.js';
import type { IdentitySnapshot } from './provider.js';
import { AGENT_STATE_FILE, AgentStorage, type StoredAgentState, SVID_CACHE_FILE } from './storage.js';
import { FakeAgentServer, newFakeJwtKey } from './test-support/fake-server.js';

const TD = TrustDomain.fromString('example.org');
const UID = { type: 'unix', value: 'uid:1000' };
const GID = { type: 'unix', value: 'gid:1000' };

interface Ctx {
  server: FakeAgentServer;
  dir: string;
  bundlePath: string;
  managers: IdentityManager[];
  t: number;
}

let ctx: Ctx;

function manager(over: Partial<IdentityManagerConfig> = {}, token = 'tok-1'): IdentityManager {
  const m = new IdentityManager({
    trustDomain: TD,
    serverAddress: '127.0.0.1',
    serverPort: ctx.server.port,
    trustBootstrap: { type: 'bundle_path', path: ctx.bundlePath },
    attestor: createJoinTokenAttestor(token),
    storage: new AgentStorage(join(ctx.dir, 'data')),
    tickMs: 0,
    now: () => new Date(ctx.t),
    random: () => 0,
    ...over,
  });
  ctx.managers.push(m);
  return m;
}

function serial(snap: IdentitySnapshot, i = 0): string {
  const s = snap.svids[i];
  assert.ok(s, `no svid ${i}`);
  return new X509Certificate(s.chainDer.subarray(0, readLen(s.chainDer))).serialNumber;
}

/** Length of the first DER element (the leaf) of concatenated DER. */
function readLen(der: Buffer): number {
  const b1 = der[1] as number;
  if (b1 < 0x80) return 2 + b1;
  const n = b1 & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (der[2 + i] as number);
  return 2 + n + len;
}

function nextUpdate(
  m: IdentityManager,
  pred: (s: IdentitySnapshot) => boolean,
  ms = 3000,
): Promise<IdentitySnapshot> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.close();
      reject(new Error('no matching update in time'));
    }, ms);
    const sub = m.subscribe([UID, GID], (s) => {
      if (pred(s)) {
        clearTimeout(timer);
        sub.close();
        resolve(s);
      }
    });
    if (pred(sub.current())) {
      clearTimeout(timer);
      sub.close();
      resolve(sub.current());
    }
  });
}

/** A logger that keeps `level message` lines (with the error's message, if any). */
/**
 * A client factory whose BatchNewX509SVID fails as told: the whole batch (Unavailable) while `down()` is true, and
 * an entry with the status code `entryCode(entryId)` returns (undefined: signed as the server signs it).
 */
function failingSigner(fail: {
  readonly down?: () => boolean;
  readonly entryCode?: (entryId: string) => number | undefined;
}): NonNullable<IdentityManagerConfig['clientFactory']> {
  return (c) => {
    const client = new ServerClient(c);
    const sign = client.batchNewX509Svid.bind(client);
    client.batchNewX509Svid = async (params) => {
      if (fail.down?.() === true) throw Object.assign(new Error('unavailable'), { code: status.UNAVAILABLE });
      const results = await sign(params);
      return results.map((r, i) => {
        const code = fail.entryCode?.(params[i]?.entryId ?? '');
        return code === undefined ? r : { status: { code, message: 'signing failed' }, svid: undefined };
      });
    };
    return client;
  };
}

function capturingLogger(): ManagerLogger & { readonly lines: string[] } {
  const lines: string[] = [];
  const log =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void => {
      const err = fields.err instanceof Error ? `: ${fields.err.message}` : '';
      lines.push(`${level} ${msg}${err}`);
    };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** Agent storage whose next `failures` agent state writes fail as on a full disk. */
class FlakyStorage extends AgentStorage {
  failures = 0;
  override saveAgentState(s: StoredAgentState): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      return Promise.reject(
        Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
      );
    }
    return super.saveAgentState(s);
  }
}

/** A server client whose every attestation fails as when the server cannot be reached. */
const unreachableClient = (): ManagerServerClient =>
  ({
    attestAgent: () =>
      Promise.reject(
        Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
          code: status.UNAVAILABLE,
          details: 'No connection established',
        }),
      ),
    close: () => {},
  }) as unknown as ManagerServerClient;

/** An x509pop attestor whose node certificate (valid for a year) chains to a CA the fake server trusts. */
function x509PopAttestor(node: string): ReturnType<typeof createX509PopAttestor> {
  const popCa = TestCa.create({ trustDomain: 'nodes.example' });
  const leaf = popCa.issueX509Svid({
    uris: [],
    dnsNames: [node],
    now: new Date(ctx.t),
    notAfter: new Date(ctx.t + 365 * 24 * 3600_000),
  });
  writeFileSync(join(ctx.dir, `${node}.crt`), leaf.certificates[0]?.toString() ?? '');
  writeFileSync(join(ctx.dir, `${node}.key`), leaf.keyPem, { mode: 0o600 });
  ctx.server.x509PopCa = popCa;
  return createX509PopAttestor({
    privateKeyPath: join(ctx.dir, `${node}.key`),
    certificatePath: join(ctx.dir, `${node}.crt`),
  });
}

describe('IdentityManager', () => {
  beforeEach(async () => {
    const server = new FakeAgentServer();
    server.tokens.add('tok-1');
    await server.start();
    const dir = mkdtempSync(join(tmpdir(), 'agent-mgr-'));
    const bundlePath = join(dir, 'bundle.pem');
    writeFileSync(bundlePath, server.bundlePem());
    ctx = { server, dir, bundlePath, managers: [], t: Date.now() };
    server.now = () => new Date(ctx.t);
    server.setEntries([
      { id: 'e1', spiffeId: 'spiffe://example.org/web', selectors: [UID] },
      {
        id: 'e2',
        spiffeId: 'spiffe://example.org/db',
        selectors: [UID, { type: 'unix', value: 'gid:2000' }],
      },
    ]);
  });
  afterEach(async () => {
    for (const m of ctx.managers) await m.stop();
    ctx.server.stop();
    rmSync(ctx.dir, { recursive: true, force: true });
  });
  after(() => {});

  it('attests with a join token, stores its state 0600 in a 0700 directory, and serves matching SVIDs', async () => {
    const m = manager();
    await m.start();
    assert.equal(ctx.server.calls.attest, 1);
    assert.equal(m.agentSvid?.id.toString(), 'spiffe://example.org/spire/agent/join_token/tok-1');
    assert.ok(m.ready());
    const data = join(ctx.dir, 'data');
    assert.equal(statSync(data).mode & 0o777, 0o700);
    await new Promise((r) => setTimeout(r, 250)); // debounced cache write
    for (const f of [AGENT_STATE_FILE, SVID_CACHE_FILE])
      assert.equal(statSync(join(data, f)).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(join(data, AGENT_STATE_FILE), 'utf8'), /tok-1"/);

    // Subset semantics: e1 needs {uid}, e2 needs {uid, gid:2000}; the workload has {uid, gid:1000}.
    const sub = m.subscribe([UID, GID], () => {});
    const snap = sub.current();
    assert.deepEqual(
      snap.svids.map((s) => s.spiffeId),
      ['spiffe://example.org/web'],
    );
    const svid = snap.svids[0];
    assert.ok(svid);
    const chain = [new X509Certificate(svid.chainDer.subarray(0, readLen(svid.chainDer)))];
    assert.equal(
      verifyX509SvidSync(chain, snap.bundle, { now: new Date(ctx.t) }).id.toString(),
      svid.spiffeId,
    );
    sub.close();
    assert.deepEqual(m.subscribe([{ type: 'unix', value: 'uid:0' }], () => {}).current().svids, []);
  });

  it('restarts from its stored state without attesting again', async () => {
    const m1 = manager();
    await m1.start();
    const first = serial(m1.subscribe([UID], () => {}).current());
    await m1.stop();
    const m2 = manager({}, 'unused-token');
    await m2.start();
    assert.equal(ctx.server.calls.attest, 1);
    assert.equal(serial(m2.subscribe([UID], () => {}).current()), first);
  });

  it('serves its persisted SVIDs after a restart while the server is down', async () => {
    const m1 = manager();
    await m1.start();
    const first = serial(m1.subscribe([UID], () => {}).current());
    await m1.stop();
    ctx.server.stop();
    const m2 = manager();
    await m2.start();
    assert.ok(m2.ready());
    assert.equal(serial(m2.subscribe([UID], () => {}).current()), first);
  });

  it('rotates an X509-SVID at half-life and pushes it to open subscriptions', async () => {
    const m = manager();
    await m.start();
    const seen: string[] = [];
    const sub = m.subscribe([UID], (s) => seen.push(serial(s)));
    const before = serial(sub.current());
    ctx.t += 20 * 60_000;
    await m.tick();
    assert.deepEqual(seen, []);
    ctx.t += 11 * 60_000; // past half of the 1h TTL
    await m.tick();
    assert.equal(seen.length, 1);
    assert.notEqual(seen[0], before);
    assert.equal(serial(sub.current()), seen[0]);
  });

  it('counts half-life from issuance, not from a backdated notBefore (short TTLs do not rotate every tick)', async () => {
    // As the real server: notBefore 10 s in the past, 10 s TTL; half-life is ~5 s after issuance, not "now".
    ctx.server.x509TtlMs = 10_000;
    ctx.server.x509BackdateMs = 10_000;
    const m = manager();
    await m.start();
    const seen: string[] = [];
    const sub = m.subscribe([UID], (s) => seen.push(serial(s)));
    ctx.t += 1000;
    await m.tick();
    ctx.t += 3000;
    await m.tick();
    assert.deepEqual(seen, [], 'no rotation before half of the remaining lifetime');
    ctx.t += 1500;
    await m.tick();
    assert.equal(seen.length, 1, 'rotated once past half of the remaining lifetime');
    sub.close();
  });

  it('delivers a newly created entry to a watching workload through the entry watch', async () => {
    const m = manager();
    await m.start();
    const got = nextUpdate(m, (s) => s.svids.some((x) => x.spiffeId === 'spiffe://example.org/new'));
    ctx.server.setEntries([
      ...ctx.server.entries,
      { id: 'e3', spiffeId: 'spiffe://example.org/new', selectors: [GID], createdAt: 10n },
    ]);
    const snap = await got;
    assert.deepEqual(
      snap.svids.map((s) => s.spiffeId),
      ['spiffe://example.org/web', 'spiffe://example.org/new'],
    );
  });

  it('keeps at most x509_svid_cache_max_size SVIDs and issues others on subscription', async () => {
    const m = manager({ x509SvidCacheMaxSize: 1 });
    await m.start();
    assert.equal(m.stats().x509Svids, 1);
    const got = nextUpdate(m, (s) => s.svids.length === 1);
    const sub = m.subscribe([UID, { type: 'unix', value: 'gid:2000' }], () => {});
    await got;
    await m.tick();
    assert.equal(sub.current().svids.length, 2);
    sub.close();
  });

  it('marks the snapshot pending while an entry of the workload waits for its first SVID', async () => {
    const m = manager({ x509SvidCacheMaxSize: 1 });
    await m.start();
    const updates: IdentitySnapshot[] = [];
    const sub = m.subscribe([UID, { type: 'unix', value: 'gid:2000' }], (s) => updates.push(s));
    const first = sub.current();
    assert.equal(first.svids.length, 1, 'the pre-issued SVID is served at once');
    assert.equal(first.pending, true, 'the other entry has no SVID yet');
    await m.tick();
    const done = sub.current();
    assert.equal(done.svids.length, 2);
    assert.equal(done.pending, undefined);
    assert.ok(updates.length >= 1, 'the issued SVID was pushed');
    sub.close();
  });

  it('keeps everything as it is on a resync of unchanged entries, revision 0 included', async () => {
    ctx.server.setEntries([
      { id: 'e1', spiffeId: 'spiffe://example.org/web', selectors: [UID], revision: 0n },
      { id: 'e2', spiffeId: 'spiffe://example.org/db', selectors: [UID, GID], revision: 0n },
    ]);
    const m = manager();
    await m.start();
    const updates: IdentitySnapshot[] = [];
    const sub = m.subscribe([UID, GID], (s) => updates.push(s));
    const before = sub.current();
    await m.syncNow();
    await m.syncNow();
    assert.equal(updates.length, 0, 'no update for an unchanged resync');
    assert.equal(sub.current(), before, 'the same snapshot object');
    // An entry whose content changes (without a new revision) is picked up.
    ctx.server.setEntries([
      { id: 'e1', spiffeId: 'spiffe://example.org/web', selectors: [UID], revision: 0n, hint: 'changed' },
      { id: 'e2', spiffeId: 'spiffe://example.org/db', selectors: [UID, GID], revision: 0n },
    ]);
    await m.syncNow();
    await m.tick();
    assert.ok(updates.length >= 1);
    assert.ok(sub.current().svids.some((s) => s.hint === 'changed'));
    sub.close();
  });

  it('resyncs periodically with IDs and revisions only, and fetches the entries again only when one changed', async () => {
    const m = manager({ resyncMs: 60_000, pollMs: 5000 });
    await m.start();
    const sub = m.subscribe([UID, GID], () => {});
    const full = () => ctx.server.calls.entries - ctx.server.calls.entryRevisions;
    const fullBefore = full();
    ctx.t += 61_000;
    await m.tick();
    assert.equal(ctx.server.calls.entryRevisions, 1, 'one revisions-only call');
    assert.equal(full(), fullBefore, 'no full fetch when nothing changed');
    // A change the watch did not announce: a new revision, seen by the next resync, which then fetches all.
    ctx.server.setEntries(
      [
        { id: 'e1', spiffeId: 'spiffe://example.org/web', selectors: [UID], revision: 2n, hint: 'v2' },
        { id: 'e2', spiffeId: 'spiffe://example.org/db', selectors: [UID, GID] },
      ],
      true,
    );
    ctx.t += 61_000;
    await m.tick();
    await m.tick();
    assert.equal(ctx.server.calls.entryRevisions, 2);
    assert.equal(full(), fullBefore + 1, 'one full fetch after the revision changed');
    assert.ok(sub.current().svids.some((s) => s.hint === 'v2'));
    sub.close();
  });

  it('reuses a JWT-SVID until its half-life', async () => {
    const m = manager();
    await m.start();
    const a = await m.fetchJwtSvids([UID], ['aud-b', 'aud-a']);
    const b = await m.fetchJwtSvids([UID], ['aud-a', 'aud-b']);
    assert.equal(ctx.server.calls.jwt, 1);
    assert.equal(a[0]?.token, b[0]?.token);
    ctx.t += 151_000;
    const c = await m.fetchJwtSvids([UID], ['aud-a', 'aud-b']);
    assert.equal(ctx.server.calls.jwt, 2);
    assert.notEqual(c[0]?.token, a[0]?.token);
    assert.deepEqual(await m.fetchJwtSvids([{ type: 'unix', value: 'uid:0' }], ['x']), []);
  });

  it('evicts the least recently used JWT-SVID beyond jwt_svid_cache_max_size, a cache hit counting as a use', async () => {
    const m = manager({ jwtSvidCacheMaxSize: 2 });
    await m.start();
    const fetch = async (aud: string) => (await m.fetchJwtSvids([UID], [aud]))[0]?.token;
    const a = await fetch('a');
    await fetch('b');
    assert.equal(await fetch('a'), a, 'a hit');
    await fetch('c'); // evicts b, used longer ago than a
    assert.equal(ctx.server.calls.jwt, 3);
    assert.equal(m.stats().jwtSvids, 2);
    assert.equal(await fetch('a'), a, 'a is still cached');
    assert.equal(ctx.server.calls.jwt, 3);
    await fetch('b');
    assert.equal(ctx.server.calls.jwt, 4, 'b was evicted and minted again');
  });

  it('drops cached JWT-SVIDs signed by a JWT key the server taints or removes, and keeps the others', async () => {
    const kidOf = (token: string | undefined) =>
      (JSON.parse(Buffer.from(token?.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
    const m = manager();
    await m.start();
    const first = (await m.fetchJwtSvids([UID], ['aud']))[0]?.token;
    assert.equal(kidOf(first), 'jwt-key-1');
    // A bundle change that leaves the JWT key alone keeps the cached token.
    ctx.server.extraAuthorities.push({
      cert: TestCa.create({ trustDomain: 'example.org' }).certificate,
      tainted: false,
    });
    await m.syncNow();
    assert.equal((await m.fetchJwtSvids([UID], ['aud']))[0]?.token, first);
    assert.equal(ctx.server.calls.jwt, 1);
    // The key is rotated and tainted: the cached token is dropped and a new one minted with the new key.
    ctx.server.jwtKeys.push(newFakeJwtKey('jwt-key-2'));
    (ctx.server.jwtKeys[0] as { tainted: boolean }).tainted = true;
    await m.syncNow();
    const second = (await m.fetchJwtSvids([UID], ['aud']))[0]?.token;
    assert.equal(ctx.server.calls.jwt, 2);
    assert.equal(kidOf(second), 'jwt-key-2');
    assert.equal((await m.fetchJwtSvids([UID], ['aud']))[0]?.token, second, 'the new token is cached');
    // The signing key is removed from the bundle (not tainted first): dropped as well.
    ctx.server.jwtKeys = [newFakeJwtKey('jwt-key-3')];
    await m.syncNow();
    const third = (await m.fetchJwtSvids([UID], ['aud']))[0]?.token;
    assert.equal(ctx.server.calls.jwt, 3);
    assert.equal(kidOf(third), 'jwt-key-3');
  });

  it('reissues SVIDs signed by an authority the server marks tainted', async () => {
    const m = manager();
    await m.start();
    const sub = m.subscribe([UID], () => {});
    const before = serial(sub.current());
    const old = ctx.server.ca;
    ctx.server.ca = (await import('@tessera/testing')).TestCa.create({ trustDomain: 'example.org' });
    ctx.server.extraAuthorities.push({ cert: old.certificate, tainted: true });
    // The agent still connects: the server SVID was issued by the old root, which stays in the bundle.
    await m.syncNow();
    assert.notEqual(serial(sub.current()), before);
    const leaf = sub.current().svids[0];
    assert.ok(leaf);
  });

  it('stops, deletes its state and reports when the server bans it', async () => {
    let fatal: Error | undefined;
    const m = manager({ onFatal: (e) => (fatal = e) });
    await m.start();
    const sub = m.subscribe([UID], () => {});
    assert.equal(sub.current().svids.length, 1);
    const id = m.agentSvid?.id.toString() as string;
    (ctx.server.agents.get(id) as { banned: boolean }).banned = true;
    await m.syncNow();
    assert.ok(fatal);
    assert.equal((fatal as { code?: string }).code, 'ERR_NODE_ATTESTATION_FAILED');
    assert.match(fatal.message, /banned/);
    assert.equal(sub.current().svids.length, 0);
    assert.equal(m.ready(), false);
    assert.throws(() => statSync(join(ctx.dir, 'data', AGENT_STATE_FILE)), { code: 'ENOENT' });
  });

  it('acts at once when the server ends its entry watch with "no longer attested" after a ban', async () => {
    let onFatal: (e: Error) => void = () => {};
    const fatal = new Promise<Error>((resolve) => {
      onFatal = resolve;
    });
    const m = manager({ onFatal }); // tickMs 0: only the watch can drive the manager here
    await m.start();
    const id = m.agentSvid?.id.toString() ?? '';
    (ctx.server.agents.get(id) as { banned: boolean }).banned = true;
    ctx.server.failWatchers(status.PERMISSION_DENIED, 'agent is no longer attested');
    let timer: NodeJS.Timeout | undefined;
    const err = await Promise.race([
      fatal,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), 3000);
      }),
    ]);
    clearTimeout(timer);
    assert.ok(err, 'the manager did not stop after its watch was refused');
    assert.match(err.message, /banned/);
    assert.equal(m.ready(), false);
  });

  it('stops when evicted, since a join token cannot attest again', async () => {
    let fatal: Error | undefined;
    const m = manager({ onFatal: (e) => (fatal = e) });
    await m.start();
    ctx.server.agents.clear();
    await m.syncNow();
    assert.ok(fatal);
    assert.match(fatal.message, /evicted.*join_token.*new join token/);
  });

  it('refuses to start when the server rejects the join token', async () => {
    const m = manager({}, 'wrong');
    await assert.rejects(m.start(), {
      code: 'ERR_NODE_ATTESTATION_FAILED',
      message: /node attestation failed: failed to attest: join token does not exist/,
    });
  });

  it('does not trust a server whose certificate does not chain to the bootstrap bundle', async () => {
    const other = new FakeAgentServer();
    writeFileSync(ctx.bundlePath, other.bundlePem());
    const m = manager();
    const ac = new AbortController();
    const p = m.start(ac.signal);
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(p, { code: 'ERR_NODE_ATTESTATION_FAILED' });
    assert.equal(ctx.server.calls.attest, 0);
  });

  it('trusts the first server with insecure_bootstrap and pins its bundle', async () => {
    const m = manager({ trustBootstrap: { type: 'insecure' } });
    await m.start();
    assert.equal(ctx.server.calls.attest, 1);
    assert.ok(
      m
        .bundles()
        .own.x509Authorities()
        .some((c) => c.raw.equals(ctx.server.ca.rootDer())),
    );
    assert.equal(m.subscribe([UID], () => {}).current().svids.length, 1);
  });

  it('re-attests with x509pop when the server evicts it, keeps its agent ID and keeps serving', async () => {
    const popCa = TestCa.create({ trustDomain: 'nodes.example' });
    const inter = popCa.createIntermediate();
    const leaf = inter.issueX509Svid({ uris: [], dnsNames: ['node1'], now: new Date(ctx.t) });
    writeFileSync(join(ctx.dir, 'node.crt'), leaf.certificates[0]?.toString() ?? '');
    writeFileSync(join(ctx.dir, 'inter.crt'), inter.certificate.toString());
    writeFileSync(join(ctx.dir, 'node.key'), leaf.keyPem, { mode: 0o600 });
    ctx.server.x509PopCa = popCa;
    let fatal: Error | undefined;
    const m = manager({
      attestor: createX509PopAttestor({
        privateKeyPath: join(ctx.dir, 'node.key'),
        certificatePath: join(ctx.dir, 'node.crt'),
        intermediatesPath: join(ctx.dir, 'inter.crt'),
      }),
      onFatal: (e) => (fatal = e),
    });
    await m.start();
    const fp = createHash('sha1').update(leaf.leaf.raw).digest('hex');
    const agentId = `spiffe://example.org/spire/agent/x509pop/${fp}`;
    assert.equal(m.agentSvid?.id.toString(), agentId);
    const firstAgentSerial = m.agentSvid?.certificates[0]?.serialNumber;
    const sub = m.subscribe([UID], () => {});
    assert.equal(sub.current().svids.length, 1);

    ctx.server.agents.clear(); // evicted: every call is now refused as "not attested"
    ctx.server.setEntries([
      ...ctx.server.entries,
      { id: 'e3', spiffeId: 'spiffe://example.org/after-eviction', selectors: [UID], createdAt: 10n },
    ]);
    await m.syncNow();
    assert.equal(fatal, undefined, 'an x509pop agent must not stop when evicted');
    assert.equal(ctx.server.calls.attest, 2);
    assert.equal(m.agentSvid?.id.toString(), agentId);
    assert.notEqual(m.agentSvid?.certificates[0]?.serialNumber, firstAgentSerial);
    assert.ok(ctx.server.agents.has(agentId));
    assert.ok(m.ready());
    // The new agent SVID is accepted by the server: the entry created after the eviction reaches the workload.
    await m.tick();
    assert.deepEqual(
      sub.current().svids.map((s) => s.spiffeId),
      ['spiffe://example.org/web', 'spiffe://example.org/after-eviction'],
    );
    sub.close();
    // The re-attested SVID was persisted: a restart reuses it without attesting a third time.
    await m.stop();
    const m2 = manager({ attestor: createJoinTokenAttestor('unused') });
    await m2.start();
    assert.equal(ctx.server.calls.attest, 2);
    assert.equal(m2.agentSvid?.id.toString(), agentId);
  });

  it('stops when an evicted x509pop agent is refused re-attestation (banned meanwhile)', async () => {
    const popCa = TestCa.create({ trustDomain: 'nodes.example' });
    const leaf = popCa.issueX509Svid({ uris: [], dnsNames: ['node2'], now: new Date(ctx.t) });
    writeFileSync(join(ctx.dir, 'node.crt'), leaf.certificates[0]?.toString() ?? '');
    writeFileSync(join(ctx.dir, 'node.key'), leaf.keyPem, { mode: 0o600 });
    ctx.server.x509PopCa = popCa;
    let fatal: Error | undefined;
    const m = manager({
      attestor: createX509PopAttestor({
        privateKeyPath: join(ctx.dir, 'node.key'),
        certificatePath: join(ctx.dir, 'node.crt'),
      }),
      onFatal: (e) => (fatal = e),
    });
    await m.start();
    const id = m.agentSvid?.id.toString() ?? '';
    // The server forgets the node's current SVID (as after an eviction) but remembers the ban.
    ctx.server.agents.set(id, { serial: 'none', banned: true });
    const sub = m.subscribe([UID], () => {});
    await m.syncNow();
    assert.ok(fatal);
    assert.equal((fatal as { code?: string }).code, 'ERR_NODE_ATTESTATION_FAILED');
    assert.match(fatal.message, /banned/);
    assert.equal(sub.current().svids.length, 0);
    assert.equal(m.ready(), false);
  });

  it('re-attests with x509pop once its agent SVID expired during an outage, and is not ready meanwhile', async () => {
    let fatal: Error | undefined;
    const m = manager({ attestor: x509PopAttestor('node3'), onFatal: (e) => (fatal = e) });
    await m.start();
    const firstSerial = m.agentSvid?.certificates[0]?.serialNumber;
    const sub = m.subscribe([UID], () => {});
    const port = ctx.server.port;
    ctx.server.stop();
    ctx.t += 2 * 3600_000; // longer than the agent SVID's 1 h lifetime
    await m.tick();
    assert.equal(m.ready(), false, 'an agent with an expired SVID is not ready');
    assert.equal(sub.current().svids.length, 0, 'expired workload SVIDs are dropped');
    await ctx.server.start(port);
    await m.tick();
    assert.equal(ctx.server.calls.attest, 1, 'no new attempt within the 500 ms backoff');
    ctx.t += 600;
    await m.tick();
    assert.equal(fatal, undefined);
    assert.equal(ctx.server.calls.attest, 2, 'attested again instead of renewing an expired SVID');
    assert.notEqual(m.agentSvid?.certificates[0]?.serialNumber, firstSerial);
    assert.ok(m.ready());
    await m.tick();
    assert.equal(sub.current().svids.length, 1, 'serves again with the new agent SVID');
    sub.close();
  });

  it('retries a re-attestation that failed on a local fault (a certificate file being replaced) with backoff, and does not stop', async () => {
    let fatal: Error | undefined;
    const log = capturingLogger();
    const m = manager({ attestor: x509PopAttestor('node4'), onFatal: (e) => (fatal = e), logger: log });
    await m.start();
    const crt = join(ctx.dir, 'node4.crt');
    renameSync(crt, `${crt}.new`);
    ctx.t += 2 * 3600_000;
    for (let i = 0; i < 5; i++) await m.tick(); // one attempt: the next ones wait for the backoff
    assert.equal(fatal, undefined, 'a local fault does not stop the agent');
    assert.equal(ctx.server.calls.attest, 1);
    const failures = log.lines.filter((l) => l.includes('Re-attestation failed; retrying later'));
    assert.equal(failures.length, 1);
    assert.match(failures[0] ?? '', /^error .*cannot read certificate_path/);
    renameSync(`${crt}.new`, crt);
    ctx.t += 600;
    await m.tick();
    assert.equal(fatal, undefined);
    assert.equal(ctx.server.calls.attest, 2);
    assert.ok(m.ready());
  });

  it('stops, deletes its state and reports when its join_token agent SVID expired during an outage', async () => {
    let fatal: Error | undefined;
    const m = manager({ onFatal: (e) => (fatal = e) });
    await m.start();
    const port = ctx.server.port;
    ctx.server.stop();
    ctx.t += 2 * 3600_000;
    await ctx.server.start(port); // the server is back, but refuses the expired SVID (UNAUTHENTICATED)
    await m.tick();
    assert.ok(fatal, 'a join_token agent cannot re-attest: it must stop');
    assert.equal((fatal as { code?: string }).code, 'ERR_NODE_ATTESTATION_FAILED');
    assert.match(
      fatal.message,
      /agent SVID .* has expired .*\(join_token\) cannot re-attest; a new join token/,
    );
    assert.equal(m.ready(), false);
    assert.equal(ctx.server.calls.attest, 1);
    assert.throws(() => statSync(join(ctx.dir, 'data', AGENT_STATE_FILE)), { code: 'ENOENT' });
  });

  it('fails attestation at once with a coded error when the x509pop certificate file is missing', async () => {
    const log = capturingLogger();
    ctx.server.x509PopCa = TestCa.create({ trustDomain: 'nodes.example' });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 3000); // only bounds the test when the failure is retried
    const m = manager({
      attestor: createX509PopAttestor({
        privateKeyPath: join(ctx.dir, 'missing.key'),
        certificatePath: join(ctx.dir, 'missing.crt'),
      }),
      logger: log,
    });
    try {
      await assert.rejects(m.start(ac.signal), {
        code: 'ERR_NODE_ATTESTATION_INVALID',
        message: /^nodeattestor\(x509pop\): cannot read certificate_path ".*missing\.crt": ENOENT$/,
      });
    } finally {
      clearTimeout(timer);
    }
    assert.equal(ac.signal.aborted, false, 'failed before the test gave up');
    assert.deepEqual(
      log.lines.filter((l) => /unreachable/i.test(l)),
      [],
      'a local error is not retried as an unreachable server',
    );
    assert.equal(ctx.server.calls.attest, 0);
  });

  for (const how of ['stop()', 'the start signal'] as const) {
    it(`ends the wait between attestation retries at once on ${how}`, async (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] }); // the 500 ms wait never elapses by itself
      let retrying: () => void = () => {};
      const waiting = new Promise<void>((resolve) => {
        retrying = resolve;
      });
      const log = capturingLogger();
      const m = manager({
        clientFactory: unreachableClient,
        logger: {
          ...log,
          warn: (fields, msg) => {
            log.warn(fields, msg);
            if (/retrying/.test(msg)) retrying();
          },
        },
      });
      const ac = new AbortController();
      const outcome = m.start(ac.signal).then(
        () => 'started',
        (err: unknown) => err,
      );
      await waiting;
      if (how === 'stop()') await m.stop();
      else ac.abort();
      const first = await Promise.race([
        outcome,
        new Promise((resolve) => setImmediate(() => resolve('still waiting'))),
      ]);
      assert.notEqual(first, 'still waiting', 'start() still waits for the retry timer');
      assert.equal((first as { code?: string }).code, 'ERR_NODE_ATTESTATION_FAILED');
      assert.match((first as Error).message, /No connection established/);
    });
  }

  it('keeps a renewed agent SVID whose save failed: the client presents it, the error is logged, the next round saves it', async () => {
    const storage = new FlakyStorage(join(ctx.dir, 'data'));
    const log = capturingLogger();
    let presented: string | undefined;
    const m = manager({
      storage,
      logger: log,
      clientFactory: (c) => {
        if (c.agentSvid !== undefined) presented = c.agentSvid().certificates[0]?.serialNumber;
        return new ServerClient(c);
      },
    });
    await m.start();
    const sub = m.subscribe([UID], () => {});
    storage.failures = 1;
    ctx.t += 31 * 60_000; // past half of the agent SVID's 1 h lifetime
    await m.tick();
    assert.equal(ctx.server.calls.renew, 1);
    const renewed = m.agentSvid?.certificates[0]?.serialNumber;
    assert.equal(presented, renewed, 'the client presents the renewed SVID, the only one the server accepts');
    assert.ok(
      log.lines.some((l) => /^error Cannot persist the agent state.*ENOSPC/.test(l)),
      log.lines.join('\n'),
    );
    await m.syncNow();
    assert.equal(m.fatalError, undefined);
    assert.ok(m.ready());
    const stored = await new AgentStorage(join(ctx.dir, 'data')).loadAgentState();
    assert.equal(
      new X509Certificate(stored?.chain[0] as Buffer).serialNumber,
      renewed,
      'saved by the next round',
    );
    sub.close();
  });

  it('applies a new trust bundle whose save failed: subscribers and listeners get it, the next round saves it', async () => {
    const storage = new FlakyStorage(join(ctx.dir, 'data'));
    const log = capturingLogger();
    const m = manager({ storage, logger: log });
    await m.start();
    const sub = m.subscribe([UID], () => {});
    let bundleEvents = 0;
    m.onBundlesChange(() => bundleEvents++);
    ctx.server.extraAuthorities.push({
      cert: TestCa.create({ trustDomain: 'example.org' }).certificate,
      tainted: false,
    });
    storage.failures = 1;
    await m.syncNow();
    assert.equal(m.bundles().own.x509Authorities().length, 2);
    assert.equal(sub.current().bundle.x509Authorities().length, 2, 'subscribers get the new bundle');
    assert.equal(bundleEvents, 1, 'bundle listeners are called');
    assert.ok(log.lines.some((l) => /^error Cannot persist the agent state.*ENOSPC/.test(l)));
    await m.tick();
    const stored = await new AgentStorage(join(ctx.dir, 'data')).loadAgentState();
    assert.equal(
      SpiffeBundle.parse(TD, stored?.bundle ?? '').x509Authorities().length,
      2,
      'saved next round',
    );
    sub.close();
  });

  it('tells subscribers when a missing SVID is no longer being issued (issuance failed as a whole, or for that entry)', async () => {
    let down = false;
    let internal = false;
    const m = manager({
      clientFactory: failingSigner({
        down: () => down,
        entryCode: (id) => (internal && id === 'e-bad' ? status.INTERNAL : undefined),
      }),
    });
    await m.start();
    const seen: { svids: number; pending: boolean | undefined; issuing: boolean | undefined }[] = [];
    const sub = m.subscribe([UID], (snap) =>
      seen.push({ svids: snap.svids.length, pending: snap.pending, issuing: snap.issuing }),
    );
    assert.equal(sub.current().svids.length, 1);
    down = true;
    ctx.server.setEntries(
      [
        ...ctx.server.entries,
        { id: 'e-new', spiffeId: 'spiffe://example.org/new', selectors: [UID], createdAt: 9n },
      ],
      true,
    );
    await m.syncNow();
    // The last update: still one SVID, the new one awaited but not being issued, so the endpoints send it.
    assert.deepEqual(seen.at(-1), { svids: 1, pending: true, issuing: undefined });
    down = false;
    ctx.t += 10_000;
    await m.tick();
    assert.deepEqual(seen.at(-1), { svids: 2, pending: undefined, issuing: undefined });

    // The same when the server fails to sign one entry (Internal) after the subscriber held it as being issued.
    internal = true;
    ctx.server.setEntries(
      [
        ...ctx.server.entries,
        { id: 'e-bad', spiffeId: 'spiffe://example.org/bad', selectors: [UID], createdAt: 10n },
      ],
      true,
    );
    await m.syncNow();
    assert.deepEqual(seen.at(-1), { svids: 2, pending: true, issuing: undefined });
    sub.close();
  });

  it('waits for an entry the server failed to sign (Internal) without holding the others back, and not for one it refused', async () => {
    let code: number = status.INTERNAL;
    const m = manager({
      clientFactory: failingSigner({ entryCode: (id) => (id === 'e2' ? code : undefined) }),
    });
    await m.start();
    const sub = m.subscribe([UID, { type: 'unix', value: 'gid:2000' }], () => {});
    // Internal: a passing failure. Waited for (pending), but not being issued while it backs off (not issuing),
    // so the endpoints send the web SVID meanwhile.
    assert.deepEqual(
      sub.current().svids.map((s) => s.spiffeId),
      ['spiffe://example.org/web'],
    );
    assert.equal(sub.current().pending, true);
    assert.equal(sub.current().issuing, undefined);
    sub.close();
    // PermissionDenied: a refusal. Not waited for at all.
    code = status.PERMISSION_DENIED;
    ctx.server.setEntries(
      ctx.server.entries.map((e) => (e.id === 'e2' ? { ...e, revision: 5n } : e)),
      true,
    );
    await m.syncNow();
    const sub2 = m.subscribe([UID, { type: 'unix', value: 'gid:2000' }], () => {});
    assert.equal(sub2.current().pending, undefined);
    sub2.close();
  });

  it('backs off per entry when the server refuses its SVID (1 s doubling to 60 s), without delaying the others', async () => {
    const refused: number[] = []; // seconds since start of each request for e2, which the server refuses
    let t0 = 0;
    const m = manager({
      clientFactory: failingSigner({
        entryCode: (id) => {
          if (id !== 'e2') return undefined;
          refused.push((ctx.t - t0) / 1000);
          return status.PERMISSION_DENIED;
        },
      }),
    });
    t0 = ctx.t;
    await m.start();
    const sub = m.subscribe([UID, { type: 'unix', value: 'gid:2000' }], () => {});
    assert.deepEqual(
      sub.current().svids.map((s) => s.spiffeId),
      ['spiffe://example.org/web'],
    );
    // The refused entry is left out, not waited for: the Workload API and SDS hold a pending snapshot back.
    assert.equal(sub.current().pending, undefined, 'a refused entry does not make the snapshot pending');
    for (let i = 0; i < 200; i++) {
      ctx.t += 1000;
      await m.tick();
      if (i === 5) {
        // A new entry is signed at once while e2 waits.
        ctx.server.setEntries(
          [
            ...ctx.server.entries,
            { id: 'e3', spiffeId: 'spiffe://example.org/new', selectors: [UID], createdAt: 9n },
          ],
          true,
        );
        await m.syncNow();
        assert.ok(sub.current().svids.some((s) => s.spiffeId === 'spiffe://example.org/new'));
      }
    }
    assert.deepEqual(refused, [0, 1, 3, 7, 15, 31, 63, 123, 183]);
    // A changed entry is tried at once.
    ctx.server.setEntries(
      ctx.server.entries.map((e) => (e.id === 'e2' ? { ...e, revision: 2n } : e)),
      true,
    );
    await m.syncNow();
    assert.equal(refused.at(-1), 200);
    sub.close();
  });

  it('spreads X509-SVID rotation over 40-50 % of the TTL after issuance, as the injected random says', async () => {
    const n = 100;
    ctx.server.setEntries(
      Array.from({ length: n }, (_, i) => ({
        id: `j${String(i).padStart(3, '0')}`,
        spiffeId: `spiffe://example.org/jitter/${i}`,
        selectors: [{ type: 'unix', value: `uid:${20_000 + i}` }],
      })),
    );
    // A permutation of (i + 0.5) / n: uniform over [0, 1), never on a bucket boundary below.
    let k = 0;
    const random = () => (((k++ * 37) % n) + 0.5) / n;
    const m = manager({ random });
    const t0 = ctx.t;
    await m.start();
    assert.equal(m.stats().x509Svids, n, 'every entry prefetched at start');
    assert.equal(k, n, 'one random draw per issued SVID');
    const ttl = ctx.server.x509TtlMs;
    const buckets = new Map<number, number>(); // percent of the TTL -> SVIDs rotated in (p-1 %, p %]
    let issued = ctx.server.calls.batchCsrs;
    for (let pct = 30; pct <= 60; pct++) {
      ctx.t = t0 + (ttl * pct) / 100;
      await m.tick();
      const d = ctx.server.calls.batchCsrs - issued;
      issued = ctx.server.calls.batchCsrs;
      if (d > 0) buckets.set(pct, d);
    }
    assert.deepEqual(
      [...buckets.keys()],
      [41, 42, 43, 44, 45, 46, 47, 48, 49, 50],
      'rotations only within 40-50 % of the TTL, in every 1 % slice of it',
    );
    for (const [pct, count] of buckets) assert.equal(count, n / 10, `slice ending at ${pct} %`);
    // Rotated SVIDs are due again 40-50 % of the TTL after their own issuance (at 41-50 %): none by 80 %,
    // all by 101 %.
    ctx.t = t0 + (ttl * 80) / 100;
    await m.tick();
    assert.equal(ctx.server.calls.batchCsrs, issued);
    ctx.t = t0 + (ttl * 101) / 100;
    await m.tick();
    assert.equal(ctx.server.calls.batchCsrs, issued + n);
  });

  it('reports issuance, rotation, JWT minting, syncs and node attestation to its metric hooks', async () => {
    const events: string[] = [];
    const m = manager({
      metrics: {
        x509SvidsIssued: (fresh, rotated) => events.push(`x509 ${fresh}/${rotated}`),
        jwtSvidIssued: () => events.push('jwt'),
        synced: (kind, seconds, ok) => {
          assert.ok(seconds >= 0 && seconds < 30);
          events.push(`sync ${kind} ${ok}`);
        },
        nodeAttestation: (kind, ok) => events.push(`${kind} ${ok}`),
      },
    });
    await m.start();
    assert.deepEqual(events, ['attest true', 'sync bundles true', 'sync entries true', 'x509 2/0']);
    events.length = 0;
    await m.fetchJwtSvids([UID], ['aud']);
    await m.fetchJwtSvids([UID], ['aud']); // cached: not minted again
    ctx.t += 31 * 60_000; // past half of the 1 h TTLs: agent renewal, polls due, workload SVIDs rotated
    await m.tick();
    assert.deepEqual(events, ['jwt', 'renew true', 'sync bundles true', 'sync entries true', 'x509 0/2']);
    events.length = 0;
    ctx.server.stop(); // a failing sync is reported as such
    await m.syncNow();
    assert.ok(events.includes('sync bundles false'), events.join(', '));
  });
});
