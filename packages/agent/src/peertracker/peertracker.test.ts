import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createFallbackPeerCredentialReader } from './fallback.js';
import { createLinuxPeerCredentialReader, type PidPinning, readProcStartTime } from './linux.js';
import { loadPeerCredAddon } from './native.js';
import {
  createPeerTrackingServer,
  type PeerTrackingServer,
  peerInfoOf,
  socketFd,
  type TrackedPeer,
} from './peertracker.js';
import {
  callWhoAmI,
  runAsNobody,
  startHoldingClient,
  whoAmIServer,
  worldReadableTempDir,
  writeHoldingClient,
  writeWhoAmIClient,
} from './test-support.js';

const uid = process.getuid!();
const gid = process.getgid!();

describe('peer tracking server', () => {
  let tmp: ReturnType<typeof worldReadableTempDir>;
  let tracker: PeerTrackingServer;
  let socketPath: string;
  const refused: unknown[] = [];

  before(async () => {
    tmp = worldReadableTempDir('tessera-peertracker-');
    socketPath = join(tmp.dir, 'api.sock');
    tracker = await createPeerTrackingServer({
      socketPath,
      grpcServer: whoAmIServer(),
      onRefused: (err) => refused.push(err),
    });
  });
  after(async () => {
    await tracker.close();
    tmp.cleanup();
  });

  it('creates the socket with mode 0777 by default', () => {
    const st = lstatSync(socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o777);
  });

  it('reports the pid, uid and gid of a gRPC caller in this process', async () => {
    const answer = await callWhoAmI(socketPath);
    assert.equal(answer.found, true);
    assert.equal(answer.pid, process.pid);
    assert.equal(answer.uid, uid);
    assert.equal(answer.gid, gid);
    assert.equal(answer.hasPidfd, true);
    assert.equal(answer.alive, true);
    assert.match(answer.peer, /^tessera-peer:\d+$/);
  });

  it('reports the pid, uid and gid of a gRPC caller running as another user (setpriv)', async () => {
    const client = writeWhoAmIClient(tmp.dir);
    const out = JSON.parse(await runAsNobody(client, [socketPath], ['--clear-groups'])) as {
      pid: number;
      uid: number;
      gid: number;
      answer: { found: boolean; pid: number; uid: number; gid: number; alive: boolean };
    };
    assert.equal(out.uid, 65534);
    assert.equal(out.answer.found, true);
    assert.equal(out.answer.pid, out.pid);
    assert.notEqual(out.answer.pid, process.pid);
    assert.equal(out.answer.uid, 65534);
    assert.equal(out.answer.gid, 65534);
    assert.equal(out.answer.alive, true);
  });

  it('tells concurrent callers from different processes apart', async () => {
    const client = writeWhoAmIClient(tmp.dir);
    const [mine, theirs] = await Promise.all([
      callWhoAmI(socketPath),
      runAsNobody(client, [socketPath], ['--clear-groups']).then(
        (s) => JSON.parse(s) as { pid: number; answer: { uid: number; pid: number } },
      ),
    ]);
    assert.equal(mine.uid, uid);
    assert.equal(mine.pid, process.pid);
    assert.equal(theirs.answer.uid, 65534);
    assert.equal(theirs.answer.pid, theirs.pid);
  });

  it('counts open connections and forgets them when they close', async () => {
    const s = new Socket();
    await new Promise<void>((resolve) => s.connect(socketPath, resolve));
    for (let i = 0; i < 50 && tracker.connectionCount === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(tracker.connectionCount >= 1);
    s.destroy();
    for (let i = 0; i < 100 && tracker.connectionCount !== 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(tracker.connectionCount, 0);
  });

  it('refused no connection', () => {
    assert.deepEqual(refused, []);
  });
});

describe('peerInfoOf', () => {
  it('returns undefined for a call that did not come through a peer tracking server', async () => {
    const tmp = worldReadableTempDir('tessera-peertracker-');
    const server = whoAmIServer();
    const path = join(tmp.dir, 'plain.sock');
    try {
      await new Promise<number>((resolve, reject) =>
        server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
          e ? reject(e) : resolve(p),
        ),
      );
      const answer = await callWhoAmI(path);
      assert.equal(answer.found, false);
    } finally {
      server.forceShutdown();
      tmp.cleanup();
    }
  });

  it('returns undefined when getPeer throws or names no tracked connection', () => {
    assert.equal(
      peerInfoOf({
        getPeer() {
          throw new Error('socket unbound');
        },
      }),
      undefined,
    );
    assert.equal(peerInfoOf({ getPeer: () => 'tessera-peer:999999999' }), undefined);
    assert.equal(peerInfoOf({ getPeer: () => '127.0.0.1:5000' }), undefined);
  });
});

describe('createPeerTrackingServer', () => {
  it('destroys connections whose credentials cannot be read, and reports why', async () => {
    const tmp = worldReadableTempDir('tessera-peertracker-');
    const refused: unknown[] = [];
    const tracker = await createPeerTrackingServer({
      socketPath: join(tmp.dir, 'api.sock'),
      grpcServer: whoAmIServer(),
      reader: createFallbackPeerCredentialReader('plan9'),
      onRefused: (e) => refused.push(e),
    });
    try {
      await assert.rejects(callWhoAmI(tracker.socketPath), { code: grpc.status.UNAVAILABLE });
      assert.ok(refused.length >= 1);
      assert.match(String(refused[0]), /peertracker: peer credentials are not supported on "plan9"/);
    } finally {
      await tracker.close();
      tmp.cleanup();
    }
  });

  it('replaces a stale socket file and removes nothing else', async () => {
    const tmp = worldReadableTempDir('tessera-peertracker-');
    try {
      const path = join(tmp.dir, 'api.sock');
      const stale: Server = createServer();
      await new Promise<void>((r) => stale.listen(path, r));
      // Leave the file behind as a crashed agent would.
      (stale as unknown as { _handle: { close(): void } | null })._handle?.close();
      const t1 = await createPeerTrackingServer({
        socketPath: path,
        grpcServer: whoAmIServer(),
        mode: 0o700,
      });
      assert.equal(lstatSync(path).mode & 0o777, 0o700);
      assert.equal((await callWhoAmI(path)).pid, process.pid);
      await t1.close();

      const file = join(tmp.dir, 'not-a-socket');
      writeFileSync(file, 'data');
      await assert.rejects(createPeerTrackingServer({ socketPath: file, grpcServer: whoAmIServer() }), {
        message: /peertracker: ".*not-a-socket" exists and is not a socket/,
      });
    } finally {
      tmp.cleanup();
    }
  });

  it('rejects an out-of-range mode', async () => {
    await assert.rejects(
      createPeerTrackingServer({
        socketPath: '/nonexistent/x.sock',
        grpcServer: whoAmIServer(),
        mode: 0o1777,
      }),
      { name: 'RangeError', message: /peertracker: mode must be permission bits/ },
    );
  });
});

describe('socketFd', () => {
  it('throws a TypeError for a socket without a file descriptor', () => {
    assert.throws(() => socketFd(new Socket()), {
      name: 'TypeError',
      message: /peertracker: the connection has no file descriptor/,
    });
  });
});

/** A raw server whose accepted sockets are read by `reader`; the sockets stay open until `close`. */
async function rawServer(dir: string, pinning: PidPinning) {
  const reader = createLinuxPeerCredentialReader({ pinning });
  const path = join(dir, `raw-${pinning}.sock`);
  const peers: TrackedPeer[] = [];
  const sockets: Socket[] = [];
  const waiters: ((p: TrackedPeer) => void)[] = [];
  const server = createServer((socket) => {
    const peer = reader.read(socket);
    peers.push(peer);
    sockets.push(socket);
    waiters.shift()?.(peer);
  });
  await new Promise<void>((r) => server.listen(path, r));
  chmodSync(path, 0o777);
  return {
    path,
    nextPeer: () => new Promise<TrackedPeer>((resolve) => waiters.push(resolve)),
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const p of peers) p.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('linux peer credential reader', () => {
  for (const pinning of ['auto', 'pidfd-open', 'proc-start-time'] as const) {
    it(`sees a peer process exit while its connection stays open (${pinning})`, async () => {
      const tmp = worldReadableTempDir('tessera-peertracker-');
      const raw = await rawServer(tmp.dir, pinning);
      try {
        const script = writeHoldingClient(tmp.dir);
        const peerP = raw.nextPeer();
        const { child, exited } = await startHoldingClient(script, raw.path, true);
        const peer = await peerP;
        assert.equal(peer.pid, child.pid);
        assert.equal(peer.uid, 65534);
        assert.equal(peer.gid, 65534);
        assert.equal(peer.pidfd !== undefined, pinning !== 'proc-start-time');
        assert.equal(peer.isAlive(), true);
        child.stdin!.end();
        await exited;
        // The server still holds the connection; only the process is gone.
        assert.equal(peer.isAlive(), false);
      } finally {
        await raw.close();
        tmp.cleanup();
      }
    });
  }

  it('reports a closed peer as not alive', async () => {
    const tmp = worldReadableTempDir('tessera-peertracker-');
    const raw = await rawServer(tmp.dir, 'auto');
    try {
      const peerP = raw.nextPeer();
      const s = new Socket();
      await new Promise<void>((r) => s.connect(raw.path, r));
      const peer = await peerP;
      assert.equal(peer.pid, process.pid);
      assert.equal(peer.isAlive(), true);
      peer.close();
      peer.close();
      assert.equal(peer.isAlive(), false);
      s.destroy();
    } finally {
      await raw.close();
      tmp.cleanup();
    }
  });

  it('reads the start time of this process and none for a missing one', () => {
    assert.match(readProcStartTime(process.pid) ?? '', /^\d+$/);
    assert.equal(readProcStartTime(process.pid, '/nonexistent'), undefined);
  });

  it('reads a start time for a process whose main thread exited while another thread runs (state Z)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-leader-'));
    try {
      const src = join(dir, 'leader.c');
      writeFileSync(
        src,
        '#include <pthread.h>\n#include <unistd.h>\n' +
          'static void *run(void *a) { (void)a; sleep(5); return 0; }\n' +
          'int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_exit(0); }\n',
      );
      const cc = spawnSync('cc', ['-pthread', '-o', join(dir, 'leader'), src]);
      if (cc.status !== 0) {
        t.skip('no C compiler');
        return;
      }
      const p = spawn(join(dir, 'leader'), [], { stdio: 'ignore' });
      try {
        let state = '';
        for (let i = 0; i < 50 && state !== 'Z'; i++) {
          await new Promise((r) => setTimeout(r, 20));
          const stat = readFileSync(`/proc/${p.pid}/stat`, 'latin1');
          state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
        }
        assert.equal(state, 'Z', 'the leader thread exited');
        assert.match(readProcStartTime(p.pid as number) ?? '', /^\d+$/, 'still alive: another thread runs');
      } finally {
        p.kill('SIGKILL');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads no start time for a zombie (an exited child not yet reaped)', async () => {
    // The shell forks `true`, then becomes `sleep` (exec), which never reaps it: `true` stays a zombie.
    const sh = spawn('/bin/sh', ['-c', 'true & exec sleep 5'], { stdio: 'ignore' });
    try {
      let zombie: number | undefined;
      for (let i = 0; i < 50 && zombie === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          let stat: string;
          try {
            stat = readFileSync(`/proc/${d}/stat`, 'latin1');
          } catch {
            continue;
          }
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          if (f[0] === 'Z' && Number(f[1]) === sh.pid) zombie = Number(d);
        }
      }
      assert.ok(zombie !== undefined, 'the shell left a zombie child');
      assert.equal(readProcStartTime(zombie), undefined);
    } finally {
      sh.kill('SIGKILL');
    }
  });
});

describe('native addon', () => {
  const addon = loadPeerCredAddon();

  it('throws an errno-named error for a closed descriptor', () => {
    assert.throws(() => addon.getPeerCred(999_999), {
      code: 'EBADF',
      message: /peercred: getsockopt\(SO_PEERCRED\) failed: Bad file descriptor/,
    });
  });

  it('throws an errno-named error for a descriptor that is not a socket', () => {
    const fd = openSync(process.execPath, 'r');
    try {
      assert.throws(() => addon.getPeerCred(fd), {
        code: 'ENOTSOCK',
        message: /failed: Socket operation on non-socket/,
      });
      assert.throws(() => addon.getPeerPidfd(fd), { code: 'ENOTSOCK' });
    } finally {
      closeSync(fd);
    }
  });

  it('rejects arguments that are not descriptors', () => {
    assert.throws(() => addon.getPeerCred(-1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => addon.getPeerCred(1.5), { name: 'RangeError' });
    assert.throws(() => (addon.getPeerCred as (x: unknown) => unknown)('3'), {
      name: 'TypeError',
      message: /peercred: the file descriptor must be a number/,
    });
  });

  it('opens a live pidfd for this process and closes it', () => {
    const fd = addon.pidfdOpen(process.pid);
    assert.ok(fd >= 0);
    assert.equal(addon.pidfdIsAlive(fd), true);
    addon.closeFd(fd);
    assert.throws(() => addon.closeFd(fd), { code: 'EBADF' });
  });

  it('refuses pid 0', () => {
    assert.throws(() => addon.pidfdOpen(0), { code: 'ESRCH', message: /peercred: pidfd_open failed/ });
  });
});
