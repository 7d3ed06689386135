/**
 * The `x509pop` node attestor (SPIRE's wire format, defined in `@tessera/common/attestation`): the agent sends
 * its certificate chain; the server checks it chains to a configured CA, sends a nonce, and the agent proves
 * possession of the leaf's key by signing it.
 *
 * @module
 */
import { createHash, type X509Certificate } from 'node:crypto';
import {
  createX509PopChallenge,
  parseX509PopPayload,
  verifyX509PopResponse,
  X509POP_MAX_CERTIFICATES,
  X509POP_TYPE,
} from '@tessera/common/attestation';
import { type CertificateConstraints, DerError, readCertificateConstraints } from '@tessera/common/x509';
import type { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, type TrustDomain } from '@tessera/spiffe/spiffeid';
import type { Selector } from '../../../datastore/types.js';
import { type AttestResult, attestationFailed, type NodeAttestor } from '../node-attestor.js';

/** The attestation type. */
export { X509POP_TYPE };

/** Configuration of {@link createX509PopAttestor}. */
export interface X509PopAttestorConfig {
  readonly trustDomain: TrustDomain;
  /** Certificates agent chains must end in. */
  readonly caCertificates: readonly X509Certificate[];
  readonly now?: () => Date;
}

/** SHA-1 fingerprint (lowercase hex) of a certificate's DER. */
export function sha1Fingerprint(cert: X509Certificate): string {
  return createHash('sha1').update(cert.raw).digest('hex');
}

function within(cert: X509Certificate, nowMs: number): boolean {
  return new Date(cert.validFrom).getTime() <= nowMs && nowMs <= new Date(cert.validTo).getTime();
}

/** The basicConstraints and keyUsage of `cert`; a certificate whose extensions cannot be read fails attestation. */
function constraintsOf(cert: X509Certificate, what: string): CertificateConstraints {
  try {
    return readCertificateConstraints(cert.raw);
  } catch (err) {
    if (err instanceof DerError) throw attestationFailed(X509POP_TYPE, `malformed ${what}: ${err.message}`);
    throw err;
  }
}

/**
 * Creates the x509pop attestor. Agent IDs are `spiffe://<td>/spire/agent/x509pop/<sha1 of the leaf>`;
 * selectors `subject:cn:<cn>`, `ca:fingerprint:<sha1>` per CA certificate of the chain, `serialnumber:<hex>`,
 * and `san:<key>:<value>` for URI SANs `x509pop://<td>/<key>/<value>`, as SPIRE.
 *
 * @throws {TypeError} when no CA certificate is configured
 * @example
 * ```ts
 * const attestor = createX509PopAttestor({ trustDomain: td, caCertificates: [caCert] });
 * ```
 */
export function createX509PopAttestor(config: X509PopAttestorConfig): NodeAttestor {
  if (config.caCertificates.length === 0)
    throw new TypeError('x509pop: at least one CA certificate is required');
  const roots = [...config.caCertificates];
  const now = config.now ?? (() => new Date());
  return {
    type: X509POP_TYPE,
    async attest(payload, challenge): Promise<AttestResult> {
      const chain = parseX509PopPayload(payload);
      const leaf = chain[0] as X509Certificate;
      if (leaf.ca) throw attestationFailed(X509POP_TYPE, 'leaf certificate is a CA');
      // The leaf's key signs the challenge: a keyUsage that does not allow signatures disqualifies it.
      const leafUsage = constraintsOf(leaf, 'leaf certificate').keyUsage;
      if (leafUsage !== undefined && !leafUsage.has('digitalSignature')) {
        throw attestationFailed(X509POP_TYPE, 'leaf certificate key usage lacks digitalSignature');
      }
      const nowMs = now().getTime();
      const caChain = verifyChain(chain, roots, nowMs);

      const { nonce, challenge: sent } = createX509PopChallenge();
      verifyX509PopResponse(leaf.publicKey, nonce, await challenge(sent));

      const selectors: Selector[] = [];
      const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
      if (cn !== undefined && cn !== '') selectors.push({ type: X509POP_TYPE, value: `subject:cn:${cn}` });
      for (const ca of caChain)
        selectors.push({ type: X509POP_TYPE, value: `ca:fingerprint:${sha1Fingerprint(ca)}` });
      selectors.push({ type: X509POP_TYPE, value: `serialnumber:${leaf.serialNumber.toLowerCase()}` });
      for (const san of (leaf.subjectAltName ?? '').split(', ')) {
        const m = /^URI:x509pop:\/\/[^/]+\/([^/]+)\/(.+)$/.exec(san);
        if (m) selectors.push({ type: X509POP_TYPE, value: `san:${m[1]}:${m[2]}` });
      }
      const unique = [...new Map(selectors.map((s) => [s.value, s])).values()];
      const agentId = SpiffeId.fromSegments(
        config.trustDomain,
        'spire',
        'agent',
        X509POP_TYPE,
        sha1Fingerprint(leaf),
      );
      return { agentId: agentId.toString(), selectors: unique, canReattest: true };
    },
  };
}

/**
 * Verifies `chain` (leaf first) up to one of `roots`; returns the CA certificates of the path (root last).
 * Every CA certificate of the path, the root included, must allow certificate signing when it has a keyUsage,
 * and its pathLenConstraint must allow the intermediates below it (RFC 5280 §4.2.1.3, §4.2.1.9).
 */
function verifyChain(
  chain: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  nowMs: number,
): X509Certificate[] {
  const path: X509Certificate[] = [];
  let current = chain[0] as X509Certificate;
  if (!within(current, nowMs)) throw attestationFailed(X509POP_TYPE, 'leaf certificate is not valid now');
  const pool = chain.slice(1);
  for (let depth = 0; depth <= X509POP_MAX_CERTIFICATES; depth++) {
    const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
    if (root !== undefined) {
      if (!within(root, nowMs)) throw attestationFailed(X509POP_TYPE, 'CA certificate is not valid now');
      path.push(root);
      checkCaConstraints(path);
      return path;
    }
    const next = pool.find((c) => c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (next === undefined) refuseSignerWithoutKeyCertSign(current, roots, pool);
    if (next === undefined || !within(next, nowMs)) break;
    path.push(next);
    current = next;
  }
  throw attestationFailed(X509POP_TYPE, 'certificate does not chain to a trusted CA');
}

/**
 * OpenSSL's checkIssued already refuses an issuer whose keyUsage lacks keyCertSign, which surfaces as "does not
 * chain to a trusted CA"; when a root or a certificate of the chain did sign `cert` but lacks keyCertSign, say so.
 */
function refuseSignerWithoutKeyCertSign(
  cert: X509Certificate,
  roots: readonly X509Certificate[],
  pool: readonly X509Certificate[],
): void {
  const candidates = [
    ...roots.map((c) => ({ c, what: 'CA certificate' })),
    ...pool.map((c) => ({ c, what: 'intermediate certificate' })),
  ];
  for (const { c, what } of candidates) {
    if (!cert.verify(c.publicKey)) continue;
    const keyUsage = constraintsOf(c, what).keyUsage;
    if (keyUsage !== undefined && !keyUsage.has('keyCertSign')) throw noKeyCertSign(what, c);
  }
}

function noKeyCertSign(what: string, ca: X509Certificate): SpiffeError {
  return attestationFailed(X509POP_TYPE, `${what} "${subjectText(ca)}" key usage lacks keyCertSign`);
}

function subjectText(cert: X509Certificate): string {
  return cert.subject.replaceAll('\n', ', ');
}

/** Checks keyUsage and pathLenConstraint of each CA certificate of `path` (nearest the leaf first, root last). */
function checkCaConstraints(path: readonly X509Certificate[]): void {
  for (const [below, ca] of path.entries()) {
    const what = below === path.length - 1 ? 'CA certificate' : 'intermediate certificate';
    const { basicConstraints, keyUsage } = constraintsOf(ca, what);
    // Also enforced by OpenSSL's checkIssued while building the path; checked here without relying on it.
    if (keyUsage !== undefined && !keyUsage.has('keyCertSign')) throw noKeyCertSign(what, ca);
    // `below` intermediate CA certificates sit between this one and the leaf.
    const pathLen = basicConstraints?.pathLen;
    if (pathLen !== undefined && below > pathLen) {
      throw attestationFailed(
        X509POP_TYPE,
        `${what} "${subjectText(ca)}" path length constraint ${pathLen} exceeded by ${below} intermediates below it`,
      );
    }
  }
}
