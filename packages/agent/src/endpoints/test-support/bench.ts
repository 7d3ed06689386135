/**
 * Endpoint benchmarks, each beside a floor measured in the same run:
 * - `agent.first_svid` p50/p99: new connection → first FetchX509SVID message (peer credentials + the real
 *   unix workload attestor included), beside a new connection → one unary request on raw node:http2 over a
 *   Unix socket.
 * - `agent.rotation_fanout_1000`: 1,000 open FetchX509SVID streams, rotation → all received the new SVID,
 *   beside raw node:http2 writing a message of the same size to 1,000 open streams.
 *
 * Run: `node packages/agent/dist/endpoints/test-support/bench.js` (prints JSON figures).
 *
 * @module
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type ServerHttp2Stream } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import { createUnixAttestor, createWorkloadAttestor } from '../../attestor/workload/index.js';
import { createWorkloadEndpoints } from '../endpoints.js';
import { MemoryProvider } from './memory-provider.js';

/** One figure. */
export interface EndpointsFigure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly floor: number;
  readonly floorName: string;
  readonly target?: string;
}

const X509 = '/SpiffeWorkloadAPI/FetchX509SVID';
const id = (b: Buffer): Buffer => b;

function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function md(): Metadata {
  const m = new Metadata();
  m.set('workload.spiffe.io', 'true');
  return m;
}

async function firstSvidOnce(address: string): Promise<number> {
  const t0 = performance.now();
  const c = new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  await new Promise<void>((resolve, reject) => {
    const s = c.makeServerStreamRequest(X509, id, id, Buffer.alloc(0), md());
    s.once('data', () => {
      resolve();
      s.cancel();
    });
    s.on('error', (e: { code: number }) => {
      if (e.code !== 1) reject(e);
    });
  });
  const dt = performance.now() - t0;
  c.close();
  return dt;
}

async function rawUnaryOnce(socketPath: string): Promise<number> {
  const t0 = performance.now();
  const session = connect('http://localhost', { createConnection: () => netConnect(socketPath) });
  await new Promise<void>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/x', 'content-type': 'application/grpc' });
    req.on('response', () => {});
    req.on('data', () => {});
    req.on('end', () => resolve());
    req.on('error', reject);
    req.end(Buffer.alloc(5));
  });
  const dt = performance.now() - t0;
  session.close();
  return dt;
}

/** Runs the endpoint benchmarks. */
export async function runEndpointsBench(samples = 500): Promise<EndpointsFigure[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bench-'));
  const socketPath = join(dir, 'api.sock');
  const provider = new MemoryProvider('example.org');
  const uid = process.getuid?.() ?? 0;
  provider.setEntries([
    { id: 'e', spiffeId: 'spiffe://example.org/bench', selectors: [{ type: 'unix', value: `uid:${uid}` }] },
  ]);
  const endpoints = createWorkloadEndpoints({
    provider,
    socketPath,
    attestors: createWorkloadAttestor({ plugins: [createUnixAttestor()] }),
  });
  await endpoints.start();
  const address = `unix://${socketPath}`;

  const rawPath = join(dir, 'raw.sock');
  const raw = createServer();
  const rawStreams: ServerHttp2Stream[] = [];
  raw.on('stream', (stream, headers) => {
    if (headers[':path'] === '/stream') {
      stream.respond({ ':status': 200 });
      rawStreams.push(stream);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.end(Buffer.alloc(5));
  });
  await new Promise<void>((r) => raw.listen(rawPath, () => r()));

  // A trivial grpc-js server on another socket: same client path, no attestation, no identity work.
  const plainPath = join(dir, 'plain.sock');
  const plain = new Server();
  plain.addService(
    {
      fetch: {
        path: X509,
        requestStream: false,
        responseStream: true,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    { fetch: (call: ServerWritableStream<Buffer, Buffer>) => call.write(Buffer.alloc(1171)) },
  );
  await new Promise<void>((r, j) =>
    plain.bindAsync(`unix://${plainPath}`, ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())),
  );

  const figures: EndpointsFigure[] = [];
  try {
    for (let i = 0; i < 30; i++) {
      await firstSvidOnce(address);
      await rawUnaryOnce(rawPath);
    }
    const first: number[] = [];
    const floor: number[] = [];
    const grpcFloor: number[] = [];
    for (let i = 0; i < samples; i++) {
      first.push(await firstSvidOnce(address));
      floor.push(await rawUnaryOnce(rawPath));
      grpcFloor.push(await firstSvidOnce(`unix://${plainPath}`));
    }
    figures.push(
      {
        name: 'agent.first_svid.p50',
        value: pct(first, 50),
        unit: 'ms',
        floor: pct(floor, 50),
        floorName: 'raw http2 unary on a new UDS connection p50',
      },
      {
        name: 'agent.first_svid.p99',
        value: pct(first, 99),
        unit: 'ms',
        floor: pct(floor, 99),
        floorName: 'raw http2 unary on a new UDS connection p99',
        target: '< 5 ms',
      },
      {
        name: 'agent.first_svid.p50 (grpc floor)',
        value: pct(first, 50),
        unit: 'ms',
        floor: pct(grpcFloor, 50),
        floorName: 'grpc-js stream, first message, no attestation, new UDS connection p50',
      },
      {
        name: 'agent.first_svid.p99 (grpc floor)',
        value: pct(first, 99),
        unit: 'ms',
        floor: pct(grpcFloor, 99),
        floorName: 'grpc-js stream, first message, no attestation, new UDS connection p99',
      },
    );

    // Fan-out: 1,000 streams over 50 connections.
    const clients = Array.from(
      { length: 50 },
      () => new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
    );
    let received = 0;
    let firsts = 0;
    let msgSize = 0;
    for (let i = 0; i < 1000; i++) {
      const s = clients[i % 50]!.makeServerStreamRequest(X509, id, id, Buffer.alloc(0), md());
      let n = 0;
      s.on('data', (b: Buffer) => {
        n += 1;
        msgSize = b.length;
        if (n === 1) firsts += 1;
        else received += 1;
      });
      s.on('error', () => {});
    }
    while (firsts < 1000) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    provider.rotate();
    while (received < 1000) await new Promise((r) => setImmediate(r));
    const fanout = performance.now() - t0;
    for (const c of clients) c.close();

    // Floor: raw http2, 1,000 open streams over 50 sessions, one message of the same size each.
    const sessions = Array.from({ length: 50 }, () =>
      connect('http://localhost', { createConnection: () => netConnect(rawPath) }),
    );
    let rawGot = 0;
    let rawOpen = 0;
    for (let i = 0; i < 1000; i++) {
      const req = sessions[i % 50]!.request({ ':method': 'POST', ':path': '/stream' });
      req.on('response', () => {
        rawOpen += 1;
      });
      req.on('data', () => {
        rawGot += 1;
      });
    }
    while (rawOpen < 1000) await new Promise((r) => setTimeout(r, 5));
    const payload = Buffer.alloc(msgSize + 5);
    const r0 = performance.now();
    for (const s of rawStreams) s.write(payload);
    while (rawGot < 1000) await new Promise((r) => setImmediate(r));
    const rawFanout = performance.now() - r0;
    for (const s of sessions) s.destroy();
    figures.push({
      name: 'agent.rotation_fanout_1000',
      value: fanout,
      unit: 'ms',
      floor: rawFanout,
      floorName: `raw http2 write of ${msgSize} B to 1,000 open streams`,
      target: '< 1000 ms',
    });
  } finally {
    await endpoints.close();
    plain.forceShutdown();
    for (const s of rawStreams) s.destroy();
    await new Promise<void>((r) => raw.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await runEndpointsBench(Number(process.env.BENCH_SAMPLES ?? 500));
  for (const f of figures) {
    console.log(
      `${f.name.padEnd(28)} ${f.value.toFixed(3).padStart(9)} ${f.unit}  floor ${f.floor.toFixed(3).padStart(9)} ${f.unit} (${f.floorName})${f.target ? `  target ${f.target}` : ''}`,
    );
  }
}
