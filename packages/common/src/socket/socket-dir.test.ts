import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { preparePrivateSocketDir, preparePublicSocketDir, removeStaleSocket } from './socket-dir.js';

describe('agent socket directories', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-agent-sockdir-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a missing public directory 1777 and a missing private directory 0700', async () => {
    await preparePublicSocketDir(join(dir, 'pub', 'api.sock'));
    await preparePrivateSocketDir(join(dir, 'priv', 'admin.sock'));
    assert.equal(statSync(join(dir, 'pub')).mode & 0o7777, 0o1777);
    assert.equal(statSync(join(dir, 'priv')).mode & 0o7777, 0o700);
  });

  it('never changes the mode of an existing directory (a socket configured in /run or /tmp)', async () => {
    const existing = join(dir, 'existing');
    mkdirSync(existing);
    chmodSync(existing, 0o755);
    await preparePublicSocketDir(join(existing, 'api.sock'));
    await preparePrivateSocketDir(join(existing, 'admin.sock'));
    assert.equal(statSync(existing).mode & 0o7777, 0o755);
  });

  it('refuses a private socket in a directory other users may write to, leaving it as it was', async () => {
    for (const mode of [0o1777, 0o775, 0o757]) {
      const shared = join(dir, `shared-${mode.toString(8)}`);
      mkdirSync(shared);
      chmodSync(shared, mode);
      await assert.rejects(preparePrivateSocketDir(join(shared, 'admin.sock')), {
        code: 'ERR_CONFIG_INVALID',
        message: new RegExp(`is writable by other users \\(mode ${mode.toString(8)}\\)`),
      });
      assert.equal(statSync(shared).mode & 0o7777, mode);
    }
  });

  it('removes a stale socket but never deletes another kind of file', async () => {
    const sock = join(dir, 'priv', 'stale.sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    await removeStaleSocket(sock);
    assert.equal(existsSync(sock), false);
    await new Promise<void>((r) => server.close(() => r()));

    const file = join(dir, 'priv', 'not-a-socket');
    writeFileSync(file, 'keep me');
    await assert.rejects(removeStaleSocket(file), {
      code: 'ERR_CONFIG_INVALID',
      message: /"[^"]*not-a-socket" exists and is not a socket/,
    });
    assert.equal(existsSync(file), true);
    await removeStaleSocket(join(dir, 'priv', 'absent.sock'));
  });
});
