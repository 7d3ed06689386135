/**
 * Small benchmark of the peer tracker and the unix attestor (run: `node packages/agent/dist/peertracker/bench-peer.js`).
 * Prints p50/p99 in microseconds for: reading credentials on accept, a fresh connection's first gRPC call
 * through the tracker (beside the same call on a plain grpc-js Unix socket as the floor), and a warm unix
 * attestation of this process.
 *
 * @module
 */
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { createUnixAttestor } from '../attestor/workload/unix/unix.js';
import { createLinuxPeerCredentialReader } from './linux.js';
import { createPeerTrackingServer } from './peertracker.js';
import { callWhoAmI, whoAmIServer, worldReadableTempDir } from './test-support.js';

/** Percentiles of a list of durations in milliseconds, in microseconds. */
export function percentiles(samplesMs: number[]): { p50: number; p99: number; n: number } {
  const s = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0) * 1000);
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

async function time(n: number, fn: () => Promise<void> | void): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Runs the benchmark and returns the results (microseconds). */
export async function benchPeer(
  iterations = 300,
): Promise<Record<string, { p50: number; p99: number; n: number }>> {
  const tmp = worldReadableTempDir('tessera-bench-peer-');
  try {
    const reader = createLinuxPeerCredentialReader();
    const readTimes: number[] = [];
    const raw = createServer((s) => {
      const t0 = performance.now();
      reader.read(s).close();
      readTimes.push(performance.now() - t0);
      s.destroy();
    });
    const rawPath = join(tmp.dir, 'raw.sock');
    await new Promise<void>((r) => raw.listen(rawPath, r));
    await time(iterations, async () => {
      const c = new Socket();
      await new Promise<void>((r) => c.connect(rawPath, r));
      await new Promise<void>((r) => c.once('close', () => r()).resume());
    });
    await new Promise<void>((r) => raw.close(() => r()));

    const tracker = await createPeerTrackingServer({
      socketPath: join(tmp.dir, 'api.sock'),
      grpcServer: whoAmIServer(),
    });
    const tracked = await time(iterations, async () => {
      await callWhoAmI(tracker.socketPath);
    });
    await tracker.close();

    const plain = whoAmIServer();
    const plainPath = join(tmp.dir, 'plain.sock');
    await new Promise<number>((resolve, reject) =>
      plain.bindAsync(`unix:${plainPath}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const floor = await time(iterations, async () => {
      await callWhoAmI(plainPath);
    });
    plain.forceShutdown();

    const unix = createUnixAttestor();
    await unix.attest(process.pid);
    const attest = await time(iterations, async () => {
      await unix.attest(process.pid);
    });
    return {
      'peertracker.read_on_accept': percentiles(readTimes),
      'peertracker.first_call_new_connection': percentiles(tracked),
      'floor.grpc_first_call_unix_socket': percentiles(floor),
      'attestor.unix_warm': percentiles(attest),
    };
  } finally {
    tmp.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchPeer(Number(process.argv[2] ?? 300));
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `${name.padEnd(42)} p50 ${String(r.p50).padStart(7)} us   p99 ${String(r.p99).padStart(7)} us   n=${r.n}`,
    );
  }
}
