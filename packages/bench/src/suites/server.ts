/**
 * Server benchmarks: the BUILT tessera-server runs as its own process (as deployed) and is driven over its
 * agent API (mTLS on loopback) and admin socket; every figure sits beside a floor measured in the same run.
 */
import { verify as cryptoVerify, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  credentials,
  Client as GrpcClient,
  Server as GrpcServer,
  ServerCredentials,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { EntryService, GetAuthorizedEntriesResponse, SVIDService } from '@tessera/common/api';
import { buildCsr } from '@tessera/common/x509';
import { createCaManager } from '@tessera/server/dist/ca/ca-manager.js';
import type { NewRegistrationEntry } from '@tessera/server/dist/datastore/index.js';
import { openDatastore } from '@tessera/server/dist/datastore/index.js';
import { createMemoryKeyManager } from '@tessera/server/dist/keymanager/memory.js';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { TestCa } from '@tessera/testing';
import { type Figure, latencies, opsPerSecondSync, percentile, rate, type Suite, time } from '../harness.js';
import {
  attestAgent,
  BENCH_TD,
  concurrentRate,
  createEntries,
  makeTempDir,
  removeTempDir,
  rssOf,
  spawnNode,
  startBenchServer,
  waitFor,
} from './server-support.js';

const UNIX_SELECTOR = [{ type: 'unix', value: 'uid:1000' }] as const;

/** A memory figure in MB: lower is better, ratio = floor / value. */
function memory(name: string, bytes: number, floorBytes: number, floorName: string, target?: string): Figure {
  const mb = bytes / 1024 / 1024;
  const floorMb = floorBytes / 1024 / 1024;
  return {
    name,
    value: mb,
    unit: 'MB',
    floor: floorMb,
    floorName,
    ratio: floorMb / mb,
    ...(target ? { target } : {}),
  };
}

/** One P-256 CSR-signature verification plus one P-256 signature, node:crypto with cached KeyObjects. */
function issuanceFloor(): number {
  const subject = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csrInfo = randomBytes(180);
  const csrSig = sign('sha256', csrInfo, subject.privateKey);
  const tbs = randomBytes(420);
  return opsPerSecondSync(() => {
    if (!cryptoVerify('sha256', csrInfo, subject.publicKey, csrSig)) throw new Error('floor: verify failed');
    sign('sha256', tbs, ca.privateKey);
  }, 1500);
}

/** server.x509_issuance: BatchNewX509SVID over mTLS, batches of 100 CSRs, 4 calls in flight, no rate limits. */
export const serverX509Issuance: Suite = {
  name: 'server.x509_issuance',
  async run() {
    const floor = issuanceFloor();
    const dir = makeTempDir('x509');
    const server = await startBenchServer(dir);
    try {
      const agent = await attestAgent(server, 'bench-x509');
      const [entryId] = await createEntries(server, [
        { spiffePath: '/bench/issuance', parentId: agent.agentId, selectors: UNIX_SELECTOR },
      ]);
      const svid = server.tcp(SVIDService, agent);
      const csrs = Array.from({ length: 64 }, () =>
        buildCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
      );
      const BATCH = 100;
      const params = Array.from({ length: BATCH }, (_, i) => ({
        entryId: entryId as string,
        csr: csrs[i % csrs.length] as Buffer,
      }));
      await waitFor(async () => {
        const res = await svid.batchNewX509Svid({ params: params.slice(0, 1) });
        return res.results[0]?.status?.code === 0;
      }, 'the entry to reach the server index');
      const first = await svid.batchNewX509Svid({ params: params.slice(0, 1) });
      const leaf = new X509Certificate(first.results[0]?.svid?.certChain[0] as Buffer);
      if (leaf.subjectAltName !== `URI:spiffe://${BENCH_TD}/bench/issuance`) {
        throw new Error(`bench: unexpected SVID ${leaf.subjectAltName}`);
      }
      const value = await concurrentRate(
        async () => {
          const res = await svid.batchNewX509Svid({ params });
          for (const r of res.results) {
            if (r.status?.code !== 0 || r.svid === undefined) {
              throw new Error(`bench: issuance failed: ${r.status?.message}`);
            }
          }
          return res.results.length;
        },
        { ms: 4000, warmMs: 750, concurrency: 4 },
      );
      return [
        rate(
          'server.x509_issuance',
          value,
          floor,
          'P-256 CSR verify + P-256 sign, node:crypto, one core',
          'ratio >= 0.5',
        ),
      ];
    } finally {
      await server.stop();
      removeTempDir(dir);
    }
  },
};

/** server.jwt_mint (NewJWTSVID over mTLS, 32 in flight) and server.jwt_mint_ca (CaManager.mintJwtSvid in-process). */
export const serverJwtMint: Suite = {
  name: 'server.jwt_mint',
  async run() {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signingInput = Buffer.from(
      `eyJhbGciOiJFUzI1NiIsImtpZCI6IiIsInR5cCI6IkpXVCJ9.${Buffer.from(
        JSON.stringify({ aud: 'bench', exp: 1, iat: 1, sub: `spiffe://${BENCH_TD}/bench/jwt` }),
      ).toString('base64url')}`,
    );
    const floor = opsPerSecondSync(() => {
      sign('sha256', signingInput, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    }, 1500);

    const ca = await createCaManager({
      trustDomain: TrustDomain.fromString(BENCH_TD),
      keyManager: createMemoryKeyManager(),
      datastore: {
        createCaJournal: async (j) => ({ ...j, id: 1 }),
        updateCaJournal: async (j) => j,
        fetchCaJournalByX509AuthorityId: async () => undefined,
        fetchBundle: async () => undefined,
        appendBundle: async (_td, merge) => merge(undefined),
      },
    });
    let direct: number;
    try {
      direct = opsPerSecondSync(() => {
        ca.mintJwtSvid({ spiffeId: `spiffe://${BENCH_TD}/bench/jwt`, audience: ['bench'], ttlSeconds: 300 });
      }, 1500);
    } finally {
      await ca.close();
    }

    const dir = makeTempDir('jwt');
    const server = await startBenchServer(dir);
    let api: number;
    try {
      const agent = await attestAgent(server, 'bench-jwt');
      const [entryId] = await createEntries(server, [
        { spiffePath: '/bench/jwt', parentId: agent.agentId, selectors: UNIX_SELECTOR },
      ]);
      const svid = server.tcp(SVIDService, agent);
      const req = { id: undefined, entryId: entryId as string, audience: ['bench'] };
      await waitFor(
        () =>
          svid.newJwtsvid(req).then(
            () => true,
            () => false,
          ),
        'the entry to reach the server index',
      );
      api = await concurrentRate(
        async () => {
          const res = await svid.newJwtsvid(req);
          if (!res.svid?.token) throw new Error('bench: no JWT-SVID');
          return 1;
        },
        { ms: 3000, warmMs: 500, concurrency: 32 },
      );
    } finally {
      await server.stop();
      removeTempDir(dir);
    }
    return [
      rate('server.jwt_mint', api, floor, 'raw ES256 sign, cached KeyObject, one core'),
      rate('server.jwt_mint_ca', direct, floor, 'raw ES256 sign, cached KeyObject, one core', 'ratio >= 0.5'),
    ];
  },
};

/** A raw unary grpc-js call over mTLS on loopback returning `size` bytes (server in this process). */
async function rawUnaryFloor(size: number, count: number): Promise<number[]> {
  const ca = TestCa.create({ trustDomain: BENCH_TD });
  const srv = ca.issueX509Svid({ spiffeId: `spiffe://${BENCH_TD}/floor/server`, dnsNames: ['localhost'] });
  const cli = ca.issueX509Svid({ spiffeId: `spiffe://${BENCH_TD}/floor/client` });
  const payload = randomBytes(size);
  const ident = (b: Buffer) => b;
  const def: ServiceDefinition = {
    get: {
      path: '/bench.Floor/Get',
      requestStream: false,
      responseStream: false,
      requestSerialize: ident,
      requestDeserialize: ident,
      responseSerialize: ident,
      responseDeserialize: ident,
    },
  };
  const server = new GrpcServer();
  server.addService(def, {
    get: (_call: unknown, cb: (err: null, res: Buffer) => void) => cb(null, payload),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      ServerCredentials.createSsl(
        Buffer.from(ca.rootPem()),
        [{ cert_chain: Buffer.from(srv.certPem), private_key: Buffer.from(srv.keyPem) }],
        true,
      ),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  const client = new GrpcClient(
    `127.0.0.1:${port}`,
    credentials.createSsl(Buffer.from(ca.rootPem()), Buffer.from(cli.keyPem), Buffer.from(cli.certPem), {
      checkServerIdentity: () => undefined,
    }),
    { 'grpc.ssl_target_name_override': 'localhost', 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  );
  try {
    return await latencies(
      () =>
        new Promise<void>((resolve, reject) => {
          client.makeUnaryRequest(
            '/bench.Floor/Get',
            ident,
            ident,
            Buffer.alloc(0),
            (err: Error | null, res?: Buffer) => {
              if (err) reject(err);
              else if (res?.length !== size) reject(new Error('floor: short response'));
              else resolve();
            },
          );
        }),
      count,
      10,
    );
  } finally {
    client.close();
    server.forceShutdown();
  }
}

/** server.sync_1k: GetAuthorizedEntries of an agent with 1,000 entries (p50), beside a raw unary call. */
export const serverSync1k: Suite = {
  name: 'server.sync_1k',
  async run() {
    const dir = makeTempDir('sync');
    const server = await startBenchServer(dir);
    let samples: number[];
    let size: number;
    try {
      const agent = await attestAgent(server, 'bench-sync');
      await createEntries(
        server,
        Array.from({ length: 1000 }, (_, i) => ({
          spiffePath: `/bench/sync/svc-${i}`,
          parentId: agent.agentId,
          selectors: [
            { type: 'unix', value: `uid:${1000 + i}` },
            { type: 'unix', value: 'gid:1000' },
          ],
          hint: `svc-${i}`,
        })),
      );
      const entry = server.tcp(EntryService, agent);
      let last = 0;
      await waitFor(async () => {
        const res = await entry.getAuthorizedEntries({ outputMask: undefined });
        last = res.entries.length;
        return last === 1000;
      }, 'the 1,000 entries to reach the server index');
      const res = await entry.getAuthorizedEntries({ outputMask: undefined });
      size = GetAuthorizedEntriesResponse.encode(res).finish().length;
      samples = await latencies(async () => {
        const r = await entry.getAuthorizedEntries({ outputMask: undefined });
        if (r.entries.length !== 1000) throw new Error(`bench: got ${r.entries.length} entries`);
      }, 40);
    } finally {
      await server.stop();
      removeTempDir(dir);
    }
    const floorSamples = await rawUnaryFloor(size, 40);
    return [
      time(
        'server.sync_1k',
        percentile(samples, 50),
        percentile(floorSamples, 50),
        `raw grpc-js unary over mTLS returning ${Math.round(size / 1024)} KiB (p50)`,
      ),
    ];
  },
};

/** 100,000 entries under 1,000 agents (100 each), as the datastore scale test. */
function scaleEntry(i: number): NewRegistrationEntry {
  return {
    spiffeId: `spiffe://${BENCH_TD}/ns/${i % 100}/sa/${i}`,
    parentId: `spiffe://${BENCH_TD}/spire/agent/x509pop/node-${i % 1000}`,
    selectors: [
      { type: 'k8s', value: `ns:${i % 100}` },
      { type: 'k8s', value: `sa:${i}` },
    ],
    x509SvidTtl: 3600,
    jwtSvidTtl: 300,
    dnsNames: [],
    federatesWith: [],
    admin: false,
    downstream: false,
    storeSvid: false,
    hint: '',
    expiresAt: undefined,
  };
}

const require = createRequire(import.meta.url);

/**
 * server.cold_start_100k and server.rss_100k: the built server on a SQLite data dir holding 100,000 entries,
 * from spawn to its "Server started" line (the entry index is loaded before it), and its RSS once ready.
 */
export const serverScale100k: Suite = {
  name: 'server.cold_start_100k+server.rss_100k',
  async run() {
    const N = 100_000;
    const dir = makeTempDir('scale');
    try {
      mkdirSync(join(dir, 'data'), { mode: 0o700 });
      const dbFile = join(dir, 'data', 'datastore.sqlite3');
      const ds = await openDatastore(`sqlite:${dbFile}`);
      try {
        for (let i = 0; i < N; i += 10_000) {
          await ds.createEntries(Array.from({ length: 10_000 }, (_, j) => scaleEntry(i + j)));
        }
      } finally {
        await ds.close();
      }
      const extraConfig = { datastore: { connection_string: `sqlite:${dbFile}` } };
      // First start creates the CA keys and journal (not a cold start of an existing server): RSS only.
      const init = await startBenchServer(dir, { extraConfig });
      await new Promise((r) => setTimeout(r, 1000));
      const rss = rssOf(init.child.pid);
      await init.stop();

      const starts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await startBenchServer(dir, { extraConfig });
        starts.push(s.child.readyMs);
        await s.stop();
      }

      const sqlite = require.resolve('better-sqlite3');
      const readScript = `const D=require(${JSON.stringify(sqlite)});const db=new D(${JSON.stringify(dbFile)},{readonly:true});let n=0;for(const r of db.prepare('SELECT * FROM entries ORDER BY pk').iterate()){n+=r.pk>0?1:0}db.close();if(n!==${N})throw new Error('rows '+n);console.log('ready');`;
      const reads: number[] = [];
      for (let i = 0; i < 3; i++) {
        const c = await spawnNode(['-e', readScript], (l) => l === 'ready');
        reads.push(c.readyMs);
        await c.stop();
      }

      const idle = await spawnNode(
        ['-e', "console.log('ready');setInterval(()=>{},1000)"],
        (l) => l === 'ready',
      );
      await new Promise((r) => setTimeout(r, 1000));
      const idleRss = rssOf(idle.pid);
      await idle.stop();

      return [
        time(
          'server.cold_start_100k',
          percentile(starts, 50),
          percentile(reads, 50),
          'node process reading the 100k entry rows with better-sqlite3 (median of 3)',
          'under 20 s at 1M entries',
        ),
        memory('server.rss_100k', rss, idleRss, 'RSS of an idle node process'),
      ];
    } finally {
      removeTempDir(dir);
    }
  },
};
