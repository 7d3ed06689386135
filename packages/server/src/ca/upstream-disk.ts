/**
 * The `disk` upstream authority: a CA certificate and private key read from files (re-read on every mint, so
 * that replacing the files rotates the upstream), with an optional bundle file of upstream roots.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { buildCertificate, CA_KEY_USAGE, parseCsr } from '@tessera/common/x509';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, type TrustDomain } from '@tessera/spiffe/spiffeid';
import type { MintX509CaRequest, MintX509CaResult, UpstreamAuthority } from './upstream.js';

/** Configuration of the `disk` upstream authority (SPIRE's names in comments). */
export interface DiskUpstreamAuthorityConfig {
  readonly trustDomain: TrustDomain;
  /** `cert_file_path`: the upstream CA certificate, optionally followed by its intermediates (PEM). */
  readonly certFilePath: string;
  /** `key_file_path`: the upstream CA private key (PEM). */
  readonly keyFilePath: string;
  /**
   * `bundle_file_path`: the upstream roots (PEM). Required when the certificate is not self-signed; when absent,
   * the self-signed certificate is the root.
   */
  readonly bundleFilePath?: string;
}

/** Backdating of certificates, as SPIRE does, to tolerate clock skew. */
const BACKDATE_MS = 10_000;

function upstreamFailed(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError(
    'ERR_CA_UPSTREAM_FAILED',
    `upstream: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code =
      typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown error';
    throw upstreamFailed(`cannot read ${what} ${JSON.stringify(path)} (${code})`, err);
  }
}

function parseCertificates(pem: string, path: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw upstreamFailed(`no certificate in ${JSON.stringify(path)}`);
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw upstreamFailed(`malformed certificate in ${JSON.stringify(path)}`, err);
  }
}

function isSelfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.verify(cert.publicKey);
}

interface LoadedUpstream {
  readonly signer: X509Certificate;
  readonly key: KeyObject;
  readonly intermediates: X509Certificate[];
  readonly roots: X509Certificate[];
}

function load(config: DiskUpstreamAuthorityConfig, now: Date): LoadedUpstream {
  const certs = parseCertificates(readText(config.certFilePath, 'certificate file'), config.certFilePath);
  let key: KeyObject;
  try {
    key = createPrivateKey(readText(config.keyFilePath, 'key file'));
  } catch (err) {
    if (err instanceof SpiffeError) throw err;
    throw upstreamFailed(
      `key file ${JSON.stringify(config.keyFilePath)} does not hold a PEM private key`,
      err,
    );
  }
  const signer = certs[0] as X509Certificate;
  if (!signer.ca) throw upstreamFailed('upstream certificate is not a ca');
  if (!signer.checkPrivateKey(key))
    throw upstreamFailed('upstream private key does not match its certificate');
  const t = now.getTime();
  if (new Date(signer.validFrom).getTime() > t || new Date(signer.validTo).getTime() <= t) {
    throw upstreamFailed(`upstream certificate is not valid at ${now.toISOString()}`);
  }
  let roots: X509Certificate[];
  let chain: X509Certificate[];
  if (config.bundleFilePath === undefined) {
    if (certs.length !== 1 || !isSelfSigned(signer)) {
      throw upstreamFailed('a bundle file is required when the upstream certificate is not self-signed');
    }
    roots = [signer];
    chain = [];
  } else {
    try {
      roots = [
        ...X509Bundle.parse(
          config.trustDomain,
          readText(config.bundleFilePath, 'bundle file'),
        ).x509Authorities(),
      ];
    } catch (err) {
      if (err instanceof SpiffeError && err.code === 'ERR_CA_UPSTREAM_FAILED') throw err;
      throw upstreamFailed(`malformed bundle file ${JSON.stringify(config.bundleFilePath)}`, err);
    }
    if (roots.length === 0)
      throw upstreamFailed(`no certificate in ${JSON.stringify(config.bundleFilePath)}`);
    // The certificate file's chain must lead to one of the roots; roots themselves are not sent in chains.
    chain = certs.filter((c) => !roots.some((r) => r.raw.equals(c.raw)));
  }
  // Fail closed: each certificate must be signed by the next one, and the last by a root.
  const path = [signer, ...chain.filter((c) => c !== signer)];
  for (let i = 0; i < path.length; i++) {
    const cert = path[i] as X509Certificate;
    const next = path[i + 1];
    if (next !== undefined) {
      if (!cert.checkIssued(next) || !cert.verify(next.publicKey)) {
        throw upstreamFailed('upstream certificate chain is not in order or does not verify');
      }
    } else if (!roots.some((r) => cert.checkIssued(r) && cert.verify(r.publicKey))) {
      throw upstreamFailed('upstream certificate does not chain to the upstream bundle');
    }
  }
  // Everything on the path that is not a root travels in SVID chains, the signing certificate included.
  const intermediates = path.filter((c) => !roots.some((r) => r.raw.equals(c.raw)));
  return { signer, key, intermediates, roots };
}

/**
 * Creates the `disk` upstream authority. The files are checked on every mint: key matches certificate,
 * certificate is a CA valid now, and the chain leads to a root of the bundle (or is a self-signed root).
 *
 * Minted CA certificates carry the CSR's subject, the trust domain ID as the only URI SAN (X5-06: a CA ID never
 * has a path), `cA=true` without a path length, keyCertSign|cRLSign, and a lifetime capped by the upstream's.
 *
 * @throws {SpiffeError} ERR_CA_UPSTREAM_FAILED (from `mintX509Ca`) on unusable files or a bad CSR.
 * @example
 * const upstream = createDiskUpstreamAuthority({ trustDomain: td, certFilePath: 'ca.pem', keyFilePath: 'ca.key' });
 */
export function createDiskUpstreamAuthority(config: DiskUpstreamAuthorityConfig): UpstreamAuthority {
  return {
    name: 'disk',
    async mintX509Ca(request: MintX509CaRequest): Promise<MintX509CaResult> {
      const { signer, key, intermediates, roots } = load(config, request.now);
      let csr: ReturnType<typeof parseCsr>;
      try {
        csr = parseCsr(request.csr);
      } catch (err) {
        throw upstreamFailed(`invalid csr: ${(err as Error).message}`, err);
      }
      const tdId = config.trustDomain.idString();
      if (csr.uris.length !== 1 || csr.uris[0] !== tdId) {
        throw upstreamFailed(`csr must have exactly one uri san "${tdId}", got ${JSON.stringify(csr.uris)}`);
      }
      const id = SpiffeId.fromString(tdId);
      if (id.path !== '') throw upstreamFailed('a ca id must not have a path');
      if (!Number.isFinite(request.ttlSeconds) || request.ttlSeconds <= 0) {
        throw new RangeError(`upstream: ttl must be positive, got ${request.ttlSeconds}`);
      }
      const nowMs = request.now.getTime();
      const notAfterMs = Math.min(nowMs + request.ttlSeconds * 1000, new Date(signer.validTo).getTime());
      const built = buildCertificate(
        {
          publicKey: csr.publicKey,
          subject: csr.subject,
          notBefore: new Date(nowMs - BACKDATE_MS),
          notAfter: new Date(notAfterMs),
          basicConstraints: { ca: true },
          keyUsage: { usages: CA_KEY_USAGE },
          subjectAltName: { uris: [tdId] },
        },
        { certificate: signer, privateKey: key },
      );
      return { chain: [built.certificate, ...intermediates], upstreamRoots: roots };
    },
  };
}
