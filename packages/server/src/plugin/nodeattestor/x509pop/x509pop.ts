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

/** Verifies `chain` (leaf first) up to one of `roots`; returns the CA certificates of the path (root last). */
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
      return path;
    }
    const next = pool.find((c) => c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (next === undefined || !within(next, nowMs)) break;
    path.push(next);
    current = next;
  }
  throw attestationFailed(X509POP_TYPE, 'certificate does not chain to a trusted CA');
}
