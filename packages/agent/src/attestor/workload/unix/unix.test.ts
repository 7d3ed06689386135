import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runAsNobody, worldReadableTempDir } from '../../../peertracker/test-support.js';
import type { WorkloadSelector } from '../workload-attestor.js';
import { createUnixAttestor, parseIdNameDatabase, parseProcStatus } from './unix.js';

const values = (sels: WorkloadSelector[]) => sels.map((s) => `${s.type}:${s.value}`);
const id = (flag: string) => execFileSync('id', [flag], { encoding: 'utf8' }).trim();

describe('unix attestor on real processes', () => {
  it('reports this process as `id` and /proc/self/exe say', async () => {
    const sels = values(await createUnixAttestor().attest(process.pid));
    const exe = readlinkSync('/proc/self/exe');
    const sha = execFileSync('sha256sum', [exe], { encoding: 'utf8' }).split(' ')[0];
    for (const want of [
      `unix:uid:${id('-u')}`,
      `unix:gid:${id('-g')}`,
      `unix:user:${id('-un')}`,
      `unix:group:${id('-gn')}`,
      `unix:path:${exe}`,
      `unix:sha256:${sha}`,
    ]) {
      assert.ok(sels.includes(want), `missing ${want} in ${JSON.stringify(sels)}`);
    }
  });

  it('reports a process running as nobody with supplementary groups', async () => {
    const tmp = worldReadableTempDir('tessera-unix-');
    try {
      const script = join(tmp.dir, 'self.mjs');
      writeFileSync(
        script,
        `import { createUnixAttestor } from ${JSON.stringify(new URL('./unix.js', import.meta.url).href)};
console.log(JSON.stringify(await createUnixAttestor({ discoverWorkloadPath: false }).attest(process.pid)));`,
      );
      // The child attests itself: reading another user's /proc/<pid>/exe needs privileges, its status does not.
      const out = JSON.parse(await runAsNobody(script, [], ['--groups=100,27'])) as WorkloadSelector[];
      const groupName = (g: number) =>
        execFileSync('getent', ['group', String(g)], { encoding: 'utf8' }).split(':')[0];
      assert.deepEqual(
        values(out).sort(),
        [
          'unix:gid:65534',
          `unix:group:${groupName(65534)}`,
          'unix:supplementary_gid:100',
          'unix:supplementary_gid:27',
          `unix:supplementary_group:${groupName(27)}`,
          `unix:supplementary_group:${groupName(100)}`,
          'unix:uid:65534',
          'unix:user:nobody',
        ].sort(),
      );
    } finally {
      tmp.cleanup();
    }
  });

  it('fails with ERR_WORKLOAD_ATTESTATION_FAILED for a process that does not exist', async () => {
    await assert.rejects(createUnixAttestor({ procRoot: '/nonexistent' }).attest(1), {
      code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
      message: /^workload attestation: cannot read \/proc\/1\/status$/,
    });
  });
});

describe('unix attestor on a fake /proc', () => {
  let root: string;
  let bin: string;
  let passwd: string;
  let group: string;
  const pid = 4242;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'tessera-unix-proc-'));
    mkdirSync(join(root, 'proc', String(pid)), { recursive: true });
    bin = join(root, 'workload-bin');
    writeFileSync(bin, 'binary v1');
    symlinkSync(bin, join(root, 'proc', String(pid), 'exe'));
    writeFileSync(
      join(root, 'proc', String(pid), 'status'),
      'Name:\tw\nUid:\t1000\t1001\t1001\t1001\nGid:\t2000\t2001\t2001\t2001\nGroups:\t5 6 5 \n',
    );
    passwd = join(root, 'passwd');
    group = join(root, 'group');
    writeFileSync(
      passwd,
      '# comment\nalice:x:1001:2001::/home/alice:/bin/sh\nalias:x:1001:2001::/:/bin/sh\n',
    );
    writeFileSync(group, 'staff:x:2001:\nfive:x:5:alice\n');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const attestor = (over: Parameters<typeof createUnixAttestor>[0] = {}) =>
    createUnixAttestor({ procRoot: join(root, 'proc'), passwdPath: passwd, groupPath: group, ...over });

  it('uses the effective ids, names from the databases, and each supplementary group once', async () => {
    const sha = createHash('sha256').update('binary v1').digest('hex');
    assert.deepEqual(values(await attestor().attest(pid)), [
      'unix:uid:1001',
      'unix:user:alice',
      'unix:gid:2001',
      'unix:group:staff',
      'unix:supplementary_gid:5',
      'unix:supplementary_group:five',
      'unix:supplementary_gid:6',
      `unix:path:${bin}`,
      `unix:sha256:${sha}`,
    ]);
  });

  it('omits path and sha256 when workload path discovery is off', async () => {
    const sels = values(await attestor({ discoverWorkloadPath: false }).attest(pid));
    assert.ok(!sels.some((s) => s.startsWith('unix:path:') || s.startsWith('unix:sha256:')));
  });

  it('omits sha256 for a binary larger than the size limit, or when hashing is disabled', async () => {
    for (const workloadSizeLimit of [4, 0]) {
      const sels = values(await attestor({ workloadSizeLimit }).attest(pid));
      assert.ok(sels.includes(`unix:path:${bin}`));
      assert.ok(!sels.some((s) => s.startsWith('unix:sha256:')), String(workloadSizeLimit));
    }
  });

  it('hashes again when the binary changes, and serves an unchanged one from the cache', async () => {
    const a = attestor();
    const first = values(await a.attest(pid)).find((s) => s.startsWith('unix:sha256:'));
    assert.equal(
      values(await a.attest(pid)).find((s) => s.startsWith('unix:sha256:')),
      first,
    );
    writeFileSync(bin, 'binary v2, longer');
    utimesSync(bin, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    const second = values(await a.attest(pid)).find((s) => s.startsWith('unix:sha256:'));
    assert.equal(second, `unix:sha256:${createHash('sha256').update('binary v2, longer').digest('hex')}`);
    writeFileSync(bin, 'binary v1');
  });

  it('fails when the executable cannot be read', async () => {
    const other = 4343;
    mkdirSync(join(root, 'proc', String(other)));
    writeFileSync(
      join(root, 'proc', String(other), 'status'),
      readFileSync(join(root, 'proc', String(pid), 'status')),
    );
    await assert.rejects(attestor().attest(other), {
      code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
      message: /^workload attestation: cannot read the executable path of pid "4343"$/,
    });
  });

  it('rejects an invalid pid as misuse', async () => {
    await assert.rejects(attestor().attest(0), { name: 'RangeError' });
  });

  it('rejects invalid limits', () => {
    assert.throws(() => createUnixAttestor({ workloadSizeLimit: -1 }), { name: 'RangeError' });
    assert.throws(() => createUnixAttestor({ hashCacheSize: 1.5 }), { name: 'RangeError' });
  });
});

describe('parseProcStatus', () => {
  const cases = [
    { name: 'a missing Uid line', text: 'Gid:\t1\t1\t1\t1\n', message: /no "Uid" line in \/proc\/7\/status/ },
    { name: 'a missing Gid line', text: 'Uid:\t1\t1\t1\t1\n', message: /no "Gid" line in \/proc\/7\/status/ },
    { name: 'a non-numeric id', text: 'Uid:\t1\tx\t1\t1\nGid:\t1\t1\t1\t1\n', message: /bad "Uid" line/ },
    { name: 'an id beyond 32 bits', text: 'Uid:\t1\t4294967296\nGid:\t1\t1\n', message: /bad "Uid" line/ },
    { name: 'a bad group', text: 'Uid:\t1\t1\nGid:\t1\t1\nGroups:\t1 -2\n', message: /bad "Groups" line/ },
  ];
  for (const tc of cases) {
    it(`rejects ${tc.name}`, () => {
      assert.throws(() => parseProcStatus(tc.text, 7), {
        code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
        message: tc.message,
      });
    });
  }

  it('finds the lines wherever they are, the first line and the last one without a newline included', () => {
    assert.deepEqual(parseProcStatus('Uid:\t5\t6\t5\t5\nName:\tx\nGroups:\t7 8\nGid:\t9\t10\t9\t9', 1), {
      uid: 6,
      gid: 10,
      groups: [7, 8],
    });
    // A key that only ends with "Uid" is not the Uid line.
    assert.throws(() => parseProcStatus('XUid:\t1\t1\nGid:\t1\t1\n', 1), { message: /no "Uid" line/ });
    assert.deepEqual(parseProcStatus('Name:\tUid: 3\nUid:\t4\nGid:\t5\n', 1), { uid: 4, gid: 5, groups: [] });
  });

  it('reads an empty Groups line as no groups', () => {
    assert.deepEqual(parseProcStatus('Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t \n', 1), {
      uid: 0,
      gid: 0,
      groups: [],
    });
  });
});

describe('parseIdNameDatabase', () => {
  it('keeps the first name of an id and skips malformed lines', () => {
    const db = parseIdNameDatabase('a:x:1:1\nb:x:1:1\n:x:2:2\nc:x:notanumber:3\n#d:x:4:4\ne\n');
    assert.deepEqual([...db], [[1, 'a']]);
  });
});
