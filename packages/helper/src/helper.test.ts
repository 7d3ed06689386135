import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeWorkloadApi, TestJwtAuthority } from '@tessera/testing';
import { validateHelperConfig } from './config/config.js';
import { writeFileAtomic } from './files.js';
import { Helper, jwtRefreshDelay } from './helper.js';
import { createJsonLogger } from './log.js';
import { exitCodeOf, signalPidFile } from './process.js';

describe('jwtRefreshDelay', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const cases: [string, number, number][] = [
    ['half of ten minutes', 600_000, 300_000],
    ['half of one hour', 3_600_000, 1_800_000],
    ['the floor for a token about to expire', 1500, 1000],
    ['the floor for an expired token', -5000, 1000],
  ];
  for (const [name, lifeMs, want] of cases) {
    it(`waits ${name}`, () => {
      assert.equal(jwtRefreshDelay(new Date(now.getTime() + lifeMs), now), want);
    });
  }
});

describe('writeFileAtomic', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-helper-atomic-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces a file with the new content and mode, leaving no temporary file', async () => {
    const f = join(dir, 'a.pem');
    writeFileSync(f, 'old', { mode: 0o644 });
    await writeFileAtomic(f, 'new', 0o600);
    assert.equal(readFileSync(f, 'utf8'), 'new');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['a.pem']);
  });

  it('fails without touching the target when the directory is missing', async () => {
    await assert.rejects(writeFileAtomic(join(dir, 'missing', 'x'), 'x', 0o644), { code: 'ENOENT' });
  });
});

describe('signalPidFile and exit codes', () => {
  it('rejects a pid file that holds no process id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-helper-pid-'));
    try {
      const f = join(dir, 'x.pid');
      writeFileSync(f, 'abc\n');
      await assert.rejects(signalPidFile(f, 'SIGHUP'), {
        code: 'ERR_CONFIG_INVALID',
        message: /helper: pid file ".*x\.pid" does not hold a process id: "abc"/,
      });
      await assert.rejects(signalPidFile(join(dir, 'none.pid'), 'SIGHUP'), {
        code: 'ERR_CONFIG_INVALID',
        message: /cannot read pid file ".*none\.pid" \(ENOENT\)/,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('maps a signal death to 128 + its number', () => {
    assert.equal(exitCodeOf({ code: 3, signal: null }), 3);
    assert.equal(exitCodeOf({ code: null, signal: 'SIGTERM' }), 143);
    assert.equal(exitCodeOf({ code: null, signal: 'SIGKILL' }), 137);
  });
});

describe('Helper JWT-SVID refresh', () => {
  it('refreshes at half-life, rewrites the token and never logs it', async () => {
    // Whole seconds, as JWT NumericDate.
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const authority = new TestJwtAuthority('example.org', { now });
    const api = await FakeWorkloadApi.start();
    const dir = mkdtempSync(join(tmpdir(), 'tessera-helper-jwt-'));
    const minted: string[] = [];
    api.setJwtBundles({ 'spiffe://example.org': authority.jwtBundle().marshal() });
    api.setJwtSvidHandler((req) => {
      const token = authority.mint({
        sub: 'spiffe://example.org/w',
        aud: req.audience,
        exp: new Date(now.getTime() + 600_000),
      });
      minted.push(token);
      return [{ spiffeId: 'spiffe://example.org/w', token }];
    });
    const delays: number[] = [];
    let release: (() => void) | undefined;
    const refreshed = new Promise<void>((r) => {
      release = r;
    });
    const sleep = (ms: number, signal: AbortSignal): Promise<void> => {
      delays.push(ms);
      if (delays.length === 1) return Promise.resolve();
      release?.();
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    };
    const lines: string[] = [];
    const config = validateHelperConfig(
      {
        agent_address: api.address,
        cert_dir: dir,
        jwt_svids: [{ jwt_audience: 'db', jwt_svid_file_name: 'db.jwt' }],
      },
      { env: {} },
    );
    const helper = new Helper(config, {
      now: () => now,
      sleep,
      logger: createJsonLogger('debug', (l) => lines.push(l)),
    });
    try {
      await helper.start();
      assert.equal(helper.ready, true);
      await refreshed;
      assert.deepEqual(delays.slice(0, 2), [300_000, 300_000]);
      assert.equal(minted.length, 2);
      assert.equal(readFileSync(join(dir, 'db.jwt'), 'utf8'), minted[1]);
      assert.equal(statSync(join(dir, 'db.jwt')).mode & 0o777, 0o600);
      for (const t of minted) assert.ok(!lines.join('').includes(t), 'token logged');
      assert.ok(lines.some((l) => l.includes('"msg":"JWT-SVID updated"')));
    } finally {
      await helper.stop();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not write a token that fails validation against the JWT bundle', async () => {
    const now = new Date();
    const authority = new TestJwtAuthority('example.org', { now });
    const api = await FakeWorkloadApi.start();
    const dir = mkdtempSync(join(tmpdir(), 'tessera-helper-jwt-'));
    api.setJwtBundles({ 'spiffe://example.org': authority.jwtBundle().marshal() });
    api.setJwtSvidHandler((req) => [
      {
        spiffeId: 'spiffe://example.org/w',
        token: authority.mint({ sub: 'spiffe://example.org/w', aud: req.audience, signWithOtherKey: true }),
      },
    ]);
    const config = validateHelperConfig(
      {
        agent_address: api.address,
        cert_dir: dir,
        daemon_mode: false,
        jwt_svids: [{ jwt_audience: 'db', jwt_svid_file_name: 'db.jwt' }],
      },
      { env: {} },
    );
    try {
      await assert.rejects(new Helper(config, { now: () => now }).runOnce(), { code: 'ERR_JWTSVID_INVALID' });
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
