import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDiskSvidStore } from './disk.js';
import { marshalStoredSvid, type SvidStore } from './store.js';
import { storedSvidFixture } from './test-support/fixtures.js';

const sel = (...values: string[]) => values.map((value) => ({ type: 'disk', value }));

describe('disk store', () => {
  let root: string;
  let dir: string;
  let store: SvidStore;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'svidstore-disk-'));
    dir = join(root, 'svids');
    store = createDiskSvidStore({ directory: dir });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('writes the SPIRE document to a 0600 file in a 0700 directory it creates', async () => {
    const secret = storedSvidFixture('db');
    await store.put(secret, sel('name:db.json'));
    const path = join(dir, 'db.json');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(readFileSync(path, 'utf8'), marshalStoredSvid(secret));
    const doc = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
    assert.equal(doc.spiffeID, 'spiffe://example.org/db');
    assert.match(doc.x509SVIDKey ?? '', /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('replaces the file atomically, leaving no temporary files', async () => {
    await store.put(storedSvidFixture('v1'), sel('name:rot'));
    await store.put(storedSvidFixture('v2'), sel('name:rot'));
    assert.match(readFileSync(join(dir, 'rot'), 'utf8'), /example\.org\/v2/);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('deletes its file, and treats a missing file as deleted', async () => {
    await store.put(storedSvidFixture(), sel('name:gone'));
    await store.delete(sel('name:gone'));
    assert.ok(!existsSync(join(dir, 'gone')));
    await store.delete(sel('name:gone'));
  });

  const foreign: { name: string; make: (p: string) => void; why: RegExp }[] = [
    {
      name: 'a file that is not JSON',
      make: (p) => writeFileSync(p, 'hello'),
      why: /not a stored SVID document/,
    },
    {
      name: 'JSON without spiffeID',
      make: (p) => writeFileSync(p, '{"user":"x"}'),
      why: /not a stored SVID document/,
    },
    {
      name: 'a symlink',
      make: (p) => {
        writeFileSync(`${p}.target`, '{"spiffeID":"spiffe://example.org/x"}');
        symlinkSync(`${p}.target`, p);
      },
      why: /not a regular file/,
    },
  ];
  for (const [i, tc] of foreign.entries()) {
    it(`refuses to overwrite or delete ${tc.name}`, async () => {
      const path = join(dir, `foreign-${i}`);
      tc.make(path);
      const before = lstatSync(path);
      await assert.rejects(store.put(storedSvidFixture(), sel(`name:foreign-${i}`)), {
        code: 'ERR_SVIDSTORE_NOT_OWNED',
        message: tc.why,
      });
      await assert.rejects(store.delete(sel(`name:foreign-${i}`)), { code: 'ERR_SVIDSTORE_NOT_OWNED' });
      assert.equal(lstatSync(path).ino, before.ino);
    });
  }

  const invalid = [
    { name: 'no name', selectors: sel('jwtaudience:x'), msg: /needs a "disk:name:<file>" selector/ },
    { name: 'a path', selectors: sel('name:../escape'), msg: /must be a plain file name/ },
    { name: 'a hidden name', selectors: sel('name:.hidden'), msg: /must be a plain file name/ },
    { name: 'a slash', selectors: sel('name:a/b'), msg: /must be a plain file name/ },
    { name: 'an unknown key', selectors: sel('name:a', 'sub_dir:x'), msg: /unknown selector key "sub_dir"/ },
  ];
  for (const tc of invalid) {
    it(`rejects selectors with ${tc.name}`, () => {
      assert.throws(() => store.validate(tc.selectors), { code: 'ERR_SVIDSTORE_INVALID', message: tc.msg });
    });
  }
});
