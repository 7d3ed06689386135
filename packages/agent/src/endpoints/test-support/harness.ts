/**
 * Test harness: the real endpoints on a temporary Unix socket behind the real peer tracker, a
 * {@link MemoryProvider}, an attestor deriving `unix:uid` selectors from the kernel's peer credentials,
 * and raw grpc-js calls that can send anything (missing headers, bad bytes).
 *
 * @module
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type ClientReadableStream, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { WorkloadSelector } from '../../attestor/workload/workload-attestor.js';
import type { PeerInfo } from '../../peertracker/index.js';
import {
  createWorkloadEndpoints,
  type WorkloadEndpoints,
  type WorkloadEndpointsConfig,
} from '../endpoints.js';
import { MemoryProvider } from './memory-provider.js';

/** A fixed test clock. */
export const TEST_NOW = new Date();

/** A running harness. */
export interface Harness {
  readonly provider: MemoryProvider;
  readonly endpoints: WorkloadEndpoints;
  readonly socketPath: string;
  readonly address: string;
  /** Selectors the attestor gives this test process. */
  readonly selfSelectors: readonly WorkloadSelector[];
  /** Peers seen by the attestor. */
  readonly peers: PeerInfo[];
  /** When set, the attestor throws it. */
  attestFailure: Error | undefined;
  close(): Promise<void>;
}

/** Starts the endpoints on a temporary socket. */
export async function startHarness(
  extra: Partial<Omit<WorkloadEndpointsConfig, 'provider' | 'attestors' | 'socketPath'>> = {},
): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-endpoints-'));
  const socketPath = join(dir, 'api.sock');
  const provider = new MemoryProvider('example.org', TEST_NOW);
  const peers: PeerInfo[] = [];
  const h: { attestFailure: Error | undefined } = { attestFailure: undefined };
  const endpoints = createWorkloadEndpoints({
    provider,
    socketPath,
    now: () => TEST_NOW,
    attestors: {
      async attest(peer) {
        peers.push(peer);
        if (h.attestFailure !== undefined) throw h.attestFailure;
        if (!peer.isAlive()) throw new Error('peer exited');
        return [
          { type: 'unix', value: `uid:${peer.uid}` },
          { type: 'unix', value: `gid:${peer.gid}` },
        ];
      },
    },
    ...extra,
  });
  await endpoints.start();
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  return Object.assign(h, {
    provider,
    endpoints,
    socketPath,
    address: `unix://${socketPath}`,
    selfSelectors: [
      { type: 'unix', value: `uid:${uid}` },
      { type: 'unix', value: `gid:${gid}` },
    ],
    peers,
    async close() {
      await endpoints.close();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/** The outcome of a raw call. */
export interface RawResult {
  readonly messages: Buffer[];
  readonly code: number;
  readonly details: string;
}

const identity = (b: Buffer): Buffer => b;

/** Opens a raw client on the socket (its own connection). */
export function rawClient(address: string): Client {
  return new Client(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

function metadataWith(header: readonly string[] | undefined): Metadata {
  const md = new Metadata();
  for (const v of header ?? []) md.add('workload.spiffe.io', v);
  return md;
}

/**
 * Opens a server-streaming call with raw request bytes and these `workload.spiffe.io` values (none when
 * undefined); the caller reads it.
 */
export function openRawStream(
  client: Client,
  method: string,
  request: Buffer,
  header: readonly string[] | undefined,
): ClientReadableStream<Buffer> {
  return client.makeServerStreamRequest(method, identity, identity, request, metadataWith(header));
}

/**
 * Calls a server-streaming method with raw request bytes, collects messages until the status, or until
 * `take` messages arrived (then cancels).
 */
export function rawStream(
  client: Client,
  method: string,
  request: Buffer,
  header: readonly string[] | undefined,
  take = Number.POSITIVE_INFINITY,
): Promise<RawResult> {
  return new Promise((resolve) => {
    const messages: Buffer[] = [];
    const call = openRawStream(client, method, request, header);
    call.on('data', (m: Buffer) => {
      messages.push(m);
      if (messages.length >= take) {
        resolve({ messages, code: 0, details: 'taken' });
        call.cancel();
      }
    });
    call.on('error', (err: ServiceError) => resolve({ messages, code: err.code, details: err.details }));
    call.on('status', (s: { code: number; details: string }) => {
      if (s.code === 0) resolve({ messages, code: 0, details: s.details });
    });
  });
}

/** Calls a unary method with raw request bytes. */
export function rawUnary(
  client: Client,
  method: string,
  request: Buffer,
  header: readonly string[] | undefined,
): Promise<RawResult> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, identity, identity, request, metadataWith(header), (err, res) => {
      if (err) resolve({ messages: [], code: err.code, details: err.details });
      else resolve({ messages: res === undefined ? [] : [res], code: 0, details: '' });
    });
  });
}

/** Number of open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Polls `cond` every 10 ms until it holds or `ms` passed; returns whether it held. */
export async function eventually(cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}

/**
 * Runs a node process ("A", with `nodeArgs`) that opens a stream on the agent's socket, hands its socket to a
 * child ("B", as fd 3), prints B's pid and exits: B then holds a connection whose attested process is gone.
 * Resolves with B's pid once A has exited (the caller kills B).
 */
export async function handOverConnection(nodeArgs: readonly string[], cwd?: string): Promise<number> {
  const a = spawn(process.execPath, [...nodeArgs], {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  let out = '';
  a.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise((r) => a.once('exit', r));
  const childPid = Number(out.trim());
  if (!(childPid > 0))
    throw new Error(`the handing-over process printed no child pid: ${JSON.stringify(out)}`);
  return childPid;
}

/**
 * With `childPid` holding a stream whose attested process has exited ({@link handOverConnection}): asserts the
 * stream stays open, then ends at the next update (a rotation) instead of sending to the child; kills the child.
 */
export async function expectStreamEndsAtRotation(h: Harness, childPid: number): Promise<void> {
  try {
    assert.ok(await eventually(() => h.provider.openSubscriptions === 1), 'the stream stays open');
    h.provider.rotate();
    assert.ok(
      await eventually(() => h.provider.openSubscriptions === 0),
      'the stream of the exited caller ended at the rotation',
    );
  } finally {
    process.kill(childPid, 'SIGKILL');
  }
}
