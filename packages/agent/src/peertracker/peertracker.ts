/**
 * Peer tracking for the agent's Unix socket: who is on the other end of each connection, read from the kernel
 * when the connection is accepted, never from what the caller says.
 *
 * @module
 */
import { once } from 'node:events';
import { chmod } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { removeStaleSocket } from '@tessera/common/socket';

/**
 * The kernel's view of the process on the other end of a Unix socket connection, read once at accept time.
 *
 * `pid` is the process that called `connect()`, as seen in the agent's PID namespace (0 when it is not
 * visible there). `pidfd` pins that process where the kernel offers pidfds, so that `isAlive()` stays false
 * once it exits even if its PID is reused. Callers must check `isAlive()` AFTER reading anything about `pid`
 * from /proc, so a PID reused in between is detected.
 */
export interface PeerInfo {
  /** Process ID of the peer (0 when not visible from the agent's PID namespace). */
  readonly pid: number;
  /** User ID of the peer at connect time. */
  readonly uid: number;
  /** Group ID of the peer at connect time. */
  readonly gid: number;
  /** The pidfd pinning the peer process, when the kernel offers one. */
  readonly pidfd?: number;
  /** Whether the peer process still runs (false once it exited, or once the connection is closed). */
  isAlive(): boolean;
}

/** A tracked peer as the reader builds it: a {@link PeerInfo} plus the release of its kernel resources. */
export interface TrackedPeer extends PeerInfo {
  /** Releases the pidfd; afterwards `isAlive()` returns false. Idempotent. */
  close(): void;
}

/** Reads the credentials of an accepted connection. One implementation per platform (linux.ts, fallback.ts). */
export interface PeerCredentialReader {
  /** Name of the implementation, for logs (`linux`, `unsupported`). */
  readonly name: string;
  /**
   * Reads the peer of an accepted Unix socket connection.
   *
   * @throws {Error} when the credentials cannot be read; the connection must then be refused.
   */
  read(socket: Socket): TrackedPeer;
}

/**
 * The file descriptor of an accepted `net.Socket` on a Unix socket (its libuv Pipe handle). This is the one
 * place that reaches into Node internals (`socket._handle.fd`).
 *
 * @throws {TypeError} when the socket has no usable file descriptor (not a connected pipe, or Node changed).
 * @example
 * const fd = socketFd(socket);
 */
export function socketFd(socket: Socket): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new TypeError(
      'peertracker: the connection has no file descriptor (socket._handle.fd is unavailable on this Node.js build)',
    );
  }
  return fd;
}

const PEER = Symbol('tessera.peertracker.peer');
const peersByToken = new Map<string, TrackedPeer>();
const TOKEN_PREFIX = 'tessera-peer:';
let nextToken = 0;

/**
 * The {@link PeerInfo} of the connection a gRPC call arrived on, or `undefined` when the call did not come
 * through a peer tracking server or its connection is gone. Callers must treat `undefined` as "no identity".
 *
 * It works through the one value grpc-js exposes about the connection, `call.getPeer()`, which reads the
 * socket's `remoteAddress`: the tracker sets that, on each accepted socket, to a per-connection token.
 *
 * @example
 * const peer = peerInfoOf(call);
 * if (peer === undefined || !peer.isAlive()) throw permissionDenied();
 */
export function peerInfoOf(call: { getPeer(): string }): PeerInfo | undefined {
  let token: string;
  try {
    token = call.getPeer();
  } catch {
    return undefined;
  }
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  return peersByToken.get(token);
}

/** The {@link PeerInfo} attached to an accepted socket by a peer tracking server, if any. */
export function peerInfoOfSocket(socket: Socket): PeerInfo | undefined {
  return (socket as Socket & { [PEER]?: TrackedPeer })[PEER];
}

/** Options of {@link createPeerTrackingServer}. */
export interface PeerTrackingServerConfig {
  /** Path of the Unix socket to listen on. A stale socket file there is replaced; any other file is an error. */
  socketPath: string;
  /** Permission bits of the socket file (default 0o777: any local process may connect and be attested). */
  mode?: number;
  /** The gRPC server whose services answer on the socket. It need not be bound to any port. */
  grpcServer: grpc.Server;
  /** Credentials of the injected connections (default: insecure, as Unix-socket Workload API servers are). */
  credentials?: grpc.ServerCredentials;
  /** Credential reader (default: the platform's, see platform.ts). */
  reader?: PeerCredentialReader;
  /** Called when a connection is refused because its credentials cannot be read. */
  onRefused?: (err: unknown) => void;
  /**
   * Called with each accepted connection's peer once it is handed to grpc-js, before grpc-js has read any byte
   * of it (the endpoints start attesting the caller there, while its request is still on the way).
   */
  onAccepted?: (peer: PeerInfo) => void;
}

/** A listening peer tracking server. */
export interface PeerTrackingServer {
  /** The socket path listened on. */
  readonly socketPath: string;
  /** Number of open connections. */
  readonly connectionCount: number;
  /** Stops accepting, closes the gRPC sessions (destroying them after `graceMs`), removes the socket file. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Creates the agent's listening Unix socket server: it reads each accepted connection's peer credentials once,
 * before grpc-js sees any byte, attaches them to the socket, and injects the socket into `grpcServer` through
 * `createConnectionInjector`. Use {@link peerInfoOf} in handlers to get the caller.
 *
 * Connections whose credentials cannot be read are destroyed (fail closed).
 *
 * @throws {Error} when the socket path is taken by a non-socket file or cannot be listened on.
 * @example
 * const grpcServer = new grpc.Server();
 * grpcServer.addService(service, handlers);
 * const tracker = await createPeerTrackingServer({ socketPath: '/tmp/agent/api.sock', grpcServer });
 */
export async function createPeerTrackingServer(
  config: PeerTrackingServerConfig,
): Promise<PeerTrackingServer> {
  const { socketPath, grpcServer } = config;
  const mode = config.mode ?? 0o777;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(`peertracker: mode must be permission bits, got ${String(mode)}`);
  }
  const reader = config.reader ?? (await import('./platform.js')).defaultPeerCredentialReader();
  const grpcJs = await import('@grpc/grpc-js');
  const injector = grpcServer.createConnectionInjector(
    config.credentials ?? grpcJs.ServerCredentials.createInsecure(),
  );
  const sockets = new Set<Socket>();

  const server: Server = createServer((socket) => {
    let peer: TrackedPeer;
    try {
      peer = reader.read(socket);
    } catch (err) {
      socket.destroy();
      config.onRefused?.(err);
      return;
    }
    const token = `${TOKEN_PREFIX}${nextToken++}`;
    Object.defineProperty(socket, PEER, {
      value: peer,
      enumerable: false,
      writable: false,
      configurable: false,
    });
    // grpc-js reports `remoteAddress` as the call's peer (`call.getPeer()`); Unix sockets have none, so the
    // per-connection token takes its place and maps back to the peer.
    Object.defineProperty(socket, 'remoteAddress', { value: token, enumerable: false, writable: false });
    peersByToken.set(token, peer);
    sockets.add(socket);
    socket.once('close', () => {
      peersByToken.delete(token);
      sockets.delete(socket);
      peer.close();
    });
    injector.injectConnection(socket);
    config.onAccepted?.(peer);
  });

  await removeStaleSocket(socketPath, 'peertracker');
  await once(server.listen(socketPath), 'listening');
  await chmod(socketPath, mode);

  let closed: Promise<void> | undefined;
  return {
    socketPath,
    get connectionCount() {
      return sockets.size;
    },
    close(graceMs = 0) {
      closed ??= (async () => {
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        injector.drain(graceMs);
        injector.destroy();
        if (graceMs === 0) for (const s of sockets) s.destroy();
        else {
          const timer = setTimeout(() => {
            for (const s of sockets) s.destroy();
          }, graceMs);
          timer.unref();
        }
        await done;
      })();
      return closed;
    },
  };
}
