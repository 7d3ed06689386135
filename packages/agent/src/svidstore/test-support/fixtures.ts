/**
 * Fixtures for SVIDStore tests: a TLS server certificate for `localhost` from a test CA (with the CA written to
 * a file, as operators configure `ca_file`), and a stored SVID.
 *
 * @module
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCa } from '@tessera/testing';
import type { StoredSvid } from '../store.js';

/** A server certificate for localhost / 127.0.0.1 and the file of the CA that issued it. */
export interface TlsFixture {
  readonly dir: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caFile: string;
  readonly caPem: string;
}

/** Creates a fresh test CA and a localhost server certificate in a new temporary directory. */
export function tlsFixture(): TlsFixture {
  const dir = mkdtempSync(join(tmpdir(), 'svidstore-tls-'));
  const ca = TestCa.create({ trustDomain: 'tls.test', subjectSpiffeId: null });
  const leaf = ca.issueX509Svid({ uris: [], dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  if (!('keyPem' in leaf)) throw new Error('no key');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.rootPem());
  return { dir, certPem: leaf.certPem, keyPem: leaf.keyPem, caFile, caPem: ca.rootPem() };
}

/** A stored SVID of `spiffe://example.org/<name>` from a fresh test CA. */
export function storedSvidFixture(name = 'db'): StoredSvid {
  const ca = TestCa.create({ trustDomain: 'example.org' });
  const svid = ca.issueX509Svid({ spiffeId: `spiffe://example.org/${name}` });
  if (!('keyPem' in svid)) throw new Error('no key');
  return {
    spiffeId: `spiffe://example.org/${name}`,
    x509Svid: svid.certPem,
    x509SvidKey: svid.keyPem,
    bundle: ca.rootPem(),
    federatedBundles: {},
    jwtSvids: {},
    expiresAt: new Date(Date.now() + 3600_000),
  };
}
