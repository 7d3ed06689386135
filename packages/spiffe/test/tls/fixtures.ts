import type { KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { BundleError } from '@tessera/spiffe/errors';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { TlsBundleSource, TlsSvid, TlsSvidSource } from '@tessera/spiffe/tls';
import type { LeafOptions, TestCa } from '@tessera/testing';

/** An SVID source whose SVID a test can swap (rotation). */
export class MutableSvidSource implements TlsSvidSource {
  svid: TlsSvid;
  constructor(svid: TlsSvid) {
    this.svid = svid;
  }
  getX509Svid(): TlsSvid {
    return this.svid;
  }
}

/** A bundle source over several X509Bundles that a test can change. */
export class MutableBundles implements TlsBundleSource {
  readonly map = new Map<string, X509Bundle>();
  constructor(...cas: TestCa[]) {
    for (const ca of cas) this.set(ca);
  }
  set(ca: TestCa, ...extra: X509Certificate[]): void {
    const td = TrustDomain.fromString(ca.trustDomain);
    this.map.set(td.name, X509Bundle.fromAuthorities(td, [ca.root.certificate, ...extra]));
  }
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    const b = this.map.get(td.name);
    if (b === undefined) throw new BundleError('ERR_BUNDLE_NOT_FOUND', `bundle: no bundle for "${td.name}"`);
    return b;
  }
  bundles(): X509Bundle[] {
    return [...this.map.values()];
  }
}

export function svid(
  ca: TestCa,
  spiffeId: string,
  o: LeafOptions = {},
): TlsSvid & { certPem: string; keyPem: string } {
  const s = ca.issueX509Svid({ spiffeId, ...o });
  return { certificates: s.certificates, privateKey: s.privateKey, certPem: s.certPem, keyPem: s.keyPem };
}

export function caAsLeaf(ca: TestCa): TlsSvid {
  return { certificates: [ca.certificate], privateKey: ca.privateKey as KeyObject };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-tls-'));
}

export async function listen(server: {
  listen(port: number, host: string, cb: () => void): unknown;
  address(): unknown;
}): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}
