/**
 * The `x509pop` node attestor (SPIRE's wire format): the agent sends its certificate chain
 * (`{"certificates": [base64 DER, leaf first]}`); the server checks it chains to a configured CA, sends a
 * nonce (`{"nonce": base64}`), and the agent proves possession of the leaf's key (`{"signature": base64}`,
 * ECDSA/SHA-256 ASN.1, RSA-PSS/SHA-256, or Ed25519 over the nonce).
 *
 * @module
 */
import {
  createHash,
  constants as cryptoConstants,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { SpiffeId, type TrustDomain } from '@tessera/spiffe/spiffeid';
import type { Selector } from '../../../datastore/types.js';
import {
  type AttestResult,
  attestationFailed,
  attestationInvalid,
  type NodeAttestor,
} from '../node-attestor.js';

/** The attestation type. */
export const X509POP_TYPE = 'x509pop';
const NONCE_BYTES = 32;
const MAX_CERTS = 16;

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

/** Builds the attestation payload of a chain (agent side, tests). */
export function x509PopPayload(chain: readonly X509Certificate[]): Buffer {
  return Buffer.from(JSON.stringify({ certificates: chain.map((c) => c.raw.toString('base64')) }));
}

/** Signs a challenge with the leaf's private key (agent side, tests). */
export function x509PopResponse(privateKey: KeyObject, challenge: Buffer): Buffer {
  const { nonce } = parseJson(challenge, 'challenge') as { nonce?: unknown };
  if (typeof nonce !== 'string') throw attestationInvalid(X509POP_TYPE, 'challenge has no nonce');
  const data = Buffer.from(nonce, 'base64');
  let signature: Buffer;
  switch (privateKey.asymmetricKeyType) {
    case 'ec':
      signature = cryptoSign('sha256', data, privateKey);
      break;
    case 'rsa':
      signature = cryptoSign('sha256', data, {
        key: privateKey,
        padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
        saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST,
      });
      break;
    case 'ed25519':
      signature = cryptoSign(null, data, privateKey);
      break;
    default:
      throw new TypeError(`x509pop: unsupported key type ${String(privateKey.asymmetricKeyType)}`);
  }
  return Buffer.from(JSON.stringify({ signature: signature.toString('base64') }));
}

function parseJson(data: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch {
    throw attestationInvalid(X509POP_TYPE, `${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw attestationInvalid(X509POP_TYPE, `${what} must be a JSON object`);
  }
  return v as Record<string, unknown>;
}

function verifyResponse(publicKey: KeyObject, nonce: Buffer, signature: Buffer): boolean {
  try {
    switch (publicKey.asymmetricKeyType) {
      case 'ec':
        return cryptoVerify('sha256', nonce, publicKey, signature);
      case 'rsa':
        return cryptoVerify(
          'sha256',
          nonce,
          {
            key: publicKey,
            padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
            saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
          },
          signature,
        );
      case 'ed25519':
        return cryptoVerify(null, nonce, publicKey, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
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
      const { certificates } = parseJson(payload, 'payload') as { certificates?: unknown };
      if (!Array.isArray(certificates) || certificates.length === 0 || certificates.length > MAX_CERTS) {
        throw attestationInvalid(X509POP_TYPE, `payload must hold 1 to ${MAX_CERTS} certificates`);
      }
      const chain = certificates.map((c, i) => {
        if (typeof c !== 'string') throw attestationInvalid(X509POP_TYPE, `certificate ${i} is not base64`);
        try {
          return new X509Certificate(Buffer.from(c, 'base64'));
        } catch {
          throw attestationInvalid(X509POP_TYPE, `certificate ${i} cannot be parsed`);
        }
      });
      const leaf = chain[0] as X509Certificate;
      if (leaf.ca) throw attestationFailed(X509POP_TYPE, 'leaf certificate is a CA');
      const nowMs = now().getTime();
      const caChain = verifyChain(chain, roots, nowMs);

      const nonce = randomBytes(NONCE_BYTES);
      const response = await challenge(Buffer.from(JSON.stringify({ nonce: nonce.toString('base64') })));
      const { signature } = parseJson(response, 'challenge response') as { signature?: unknown };
      if (typeof signature !== 'string') throw attestationInvalid(X509POP_TYPE, 'response has no signature');
      if (!verifyResponse(leaf.publicKey, nonce, Buffer.from(signature, 'base64'))) {
        throw attestationFailed(X509POP_TYPE, 'challenge response does not verify with the leaf key');
      }

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
  for (let depth = 0; depth <= MAX_CERTS; depth++) {
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
