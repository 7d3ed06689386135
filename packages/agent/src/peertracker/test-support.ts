/**
 * Test helpers of the peer tracker: a byte-passthrough gRPC "who am I" service, and child processes that
 * connect from another uid. Used by tests only.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { peerInfoOf } from './peertracker.js';

const identity = (b: Buffer): Buffer => b;

/** A one-method service answering with the caller's PeerInfo as JSON. */
export const whoAmIService: grpc.ServiceDefinition = {
  whoAmI: {
    path: '/tessera.test.Peer/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'whoAmI',
  },
};

/** What the WhoAmI handler answers. */
export interface WhoAmIAnswer {
  found: boolean;
  pid?: number;
  uid?: number;
  gid?: number;
  hasPidfd?: boolean;
  alive?: boolean;
  peer: string;
}

/** A gRPC server with the WhoAmI service (not bound to any port). */
export function whoAmIServer(): grpc.Server {
  const server = new grpc.Server();
  server.addService(whoAmIService, {
    whoAmI(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      const peer = peerInfoOf(call);
      const answer: WhoAmIAnswer =
        peer === undefined
          ? { found: false, peer: call.getPeer() }
          : {
              found: true,
              pid: peer.pid,
              uid: peer.uid,
              gid: peer.gid,
              hasPidfd: peer.pidfd !== undefined,
              alive: peer.isAlive(),
              peer: call.getPeer(),
            };
      cb(null, Buffer.from(JSON.stringify(answer)));
    },
  });
  return server;
}

/** Calls WhoAmI over `unix:<socketPath>` from this process. */
export async function callWhoAmI(socketPath: string): Promise<WhoAmIAnswer> {
  const Client = grpc.makeGenericClientConstructor(whoAmIService, 'Peer');
  const client = new Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<Buffer>((resolve, reject) => {
      (client as unknown as Record<string, (req: Buffer, cb: (e: Error | null, r?: Buffer) => void) => void>)
        .whoAmI!(Buffer.alloc(0), (err, r) => (err ? reject(err) : resolve(r ?? Buffer.alloc(0))));
    });
    return JSON.parse(res.toString()) as WhoAmIAnswer;
  } finally {
    client.close();
  }
}

/** A temp directory that processes of every uid can enter (0755). */
export function worldReadableTempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Writes a client script into `dir`: it calls WhoAmI on the socket and prints `{ pid, answer }` as JSON.
 */
export function writeWhoAmIClient(dir: string): string {
  const require = createRequire(import.meta.url);
  const grpcUrl = pathToFileURL(require.resolve('@grpc/grpc-js')).href;
  const path = join(dir, 'whoami-client.mjs');
  writeFileSync(
    path,
    `import grpc from ${JSON.stringify(grpcUrl)};
const id = (b) => b;
const def = { whoAmI: { path: '/tessera.test.Peer/WhoAmI', requestStream: false, responseStream: false,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
const Client = grpc.makeGenericClientConstructor(def, 'Peer');
const c = new Client('unix:' + process.argv[2], grpc.credentials.createInsecure());
c.whoAmI(Buffer.alloc(0), (err, res) => {
  if (err) { console.error(err.message); process.exit(2); }
  console.log(JSON.stringify({ pid: process.pid, uid: process.getuid(), gid: process.getgid(),
    answer: JSON.parse(res.toString()) }));
  c.close();
});
`,
  );
  chmodSync(path, 0o644);
  return path;
}

/** Writes a script that connects to the socket, prints "connected", and exits when its stdin closes. */
export function writeHoldingClient(dir: string): string {
  const path = join(dir, 'holding-client.mjs');
  writeFileSync(
    path,
    `import net from 'node:net';
const s = net.connect(process.argv[2], () => console.log('connected'));
s.on('error', () => process.exit(3));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`,
  );
  chmodSync(path, 0o644);
  return path;
}

/** Runs `node script args` as uid/gid 65534 (nobody) via setpriv; resolves with its stdout. */
export function runAsNobody(
  script: string,
  args: string[],
  extraSetprivArgs: string[] = [],
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      ['--reuid=65534', '--regid=65534', ...extraSetprivArgs, process.execPath, script, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`)),
    );
  });
}

/** Starts a holding client (optionally as nobody) and resolves once it connected. */
export function startHoldingClient(
  script: string,
  socketPath: string,
  asNobody: boolean,
): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const cmd = asNobody ? 'setpriv' : process.execPath;
  const args = asNobody
    ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, socketPath]
    : [script, socketPath];
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`holding client exited ${code} before connecting`)));
    child.stdout!.once('data', () => resolve({ child, exited }));
  });
}
