/**
 * The `x509pop` node attestation wire format, shared by the agent (which signs) and the server (which
 * verifies), as SPIRE's x509pop plugin:
 * - payload, agent to server: `{"certificates": [base64 DER, leaf first]}`;
 * - challenge, server to agent: `{"nonce": base64}`;
 * - response, agent to server: `{"signature": base64}`, the leaf key's signature over the nonce bytes:
 *   ECDSA/SHA-256 (ASN.1 DER), RSA-PSS/SHA-256 (salt length = digest length; any salt length verifies), or
 *   Ed25519.
 *
 * @module
 */
import {
  constants as cryptoConstants,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { SpiffeError } from '@tessera/spiffe/errors';

/** The attestation type (`data.type` of `Agent/AttestAgent`). */
export const X509POP_TYPE = 'x509pop';

/** The most certificates a payload may hold (the leaf and its intermediates). */
export const X509POP_MAX_CERTIFICATES = 16;

/** Bytes of the nonce {@link createX509PopChallenge} draws. */
export const X509POP_NONCE_BYTES = 32;

function invalid(message: string): SpiffeError {
  return new SpiffeError('ERR_NODE_ATTESTATION_INVALID', `nodeattestor(${X509POP_TYPE}): ${message}`);
}

function failed(message: string): SpiffeError {
  return new SpiffeError('ERR_NODE_ATTESTATION_FAILED', `nodeattestor(${X509POP_TYPE}): ${message}`);
}

/** Parses `data` as a JSON object; `what` names it in errors. */
function parseObject(data: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch {
    throw invalid(`${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * Builds the x509pop attestation payload of a certificate chain.
 *
 * @param chain - the node certificate first, then any intermediates
 * @returns `{"certificates": [base64 DER, …]}` as UTF-8 bytes
 * @example
 * ```ts
 * const payload = marshalX509PopPayload([leaf, intermediate]);
 * ```
 */
export function marshalX509PopPayload(chain: readonly X509Certificate[]): Buffer {
  return Buffer.from(JSON.stringify({ certificates: chain.map((c) => c.raw.toString('base64')) }));
}

/**
 * Parses an x509pop attestation payload into its certificates. Parsing checks the format only: the caller
 * verifies the chain.
 *
 * @param payload - `{"certificates": [base64 DER, …]}`, leaf first
 * @returns the certificates, leaf first (at least one, at most {@link X509POP_MAX_CERTIFICATES})
 * @throws {SpiffeError} ERR_NODE_ATTESTATION_INVALID when the payload is not a JSON object, does not hold 1 to
 *   {@link X509POP_MAX_CERTIFICATES} certificates, or a certificate is not a base64 string of a parsable DER
 *   certificate
 * @example
 * ```ts
 * const [leaf, ...intermediates] = parseX509PopPayload(payload);
 * ```
 */
export function parseX509PopPayload(payload: Buffer): X509Certificate[] {
  const { certificates } = parseObject(payload, 'payload');
  if (
    !Array.isArray(certificates) ||
    certificates.length === 0 ||
    certificates.length > X509POP_MAX_CERTIFICATES
  ) {
    throw invalid(`payload must hold 1 to ${X509POP_MAX_CERTIFICATES} certificates`);
  }
  return certificates.map((c: unknown, i) => {
    if (typeof c !== 'string') throw invalid(`certificate ${i} is not base64`);
    try {
      return new X509Certificate(Buffer.from(c, 'base64'));
    } catch {
      throw invalid(`certificate ${i} cannot be parsed`);
    }
  });
}

/** A challenge the server sends, and the nonce it must keep to verify the response. */
export interface X509PopChallenge {
  /** The nonce the agent must sign. */
  readonly nonce: Buffer;
  /** The challenge bytes, `{"nonce": base64}`. */
  readonly challenge: Buffer;
}

/**
 * Creates an x509pop challenge over a fresh random nonce of {@link X509POP_NONCE_BYTES} bytes.
 *
 * @example
 * ```ts
 * const { nonce, challenge } = createX509PopChallenge();
 * const response = await sendChallenge(challenge);
 * verifyX509PopResponse(leaf.publicKey, nonce, response);
 * ```
 */
export function createX509PopChallenge(): X509PopChallenge {
  const nonce = randomBytes(X509POP_NONCE_BYTES);
  return { nonce, challenge: Buffer.from(JSON.stringify({ nonce: nonce.toString('base64') })) };
}

/**
 * Answers an x509pop challenge: signs its nonce with the node certificate's private key.
 *
 * @param privateKey - an EC, RSA or Ed25519 private key
 * @param challenge - the server's challenge, `{"nonce": base64}`
 * @returns the response, `{"signature": base64}`
 * @throws {SpiffeError} ERR_NODE_ATTESTATION_INVALID when the challenge is not a JSON object with a
 *   non-empty string `nonce`, or when the key type is not one x509pop signs with
 * @example
 * ```ts
 * const response = signX509PopChallenge(privateKey, challenge);
 * ```
 */
export function signX509PopChallenge(privateKey: KeyObject, challenge: Buffer): Buffer {
  const { nonce } = parseObject(challenge, 'challenge');
  if (typeof nonce !== 'string' || nonce === '') throw invalid('challenge has no nonce');
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
      throw invalid(`unsupported key type "${String(privateKey.asymmetricKeyType)}"`);
  }
  return Buffer.from(JSON.stringify({ signature: signature.toString('base64') }));
}

/**
 * Verifies an x509pop challenge response: the signature over `nonce` must verify with the node certificate's
 * public key, using the scheme its key type implies.
 *
 * @param publicKey - the node (leaf) certificate's public key
 * @param nonce - the nonce of the challenge sent ({@link X509PopChallenge.nonce})
 * @param response - the agent's response, `{"signature": base64}`
 * @throws {SpiffeError} ERR_NODE_ATTESTATION_INVALID when the response is not a JSON object with a string
 *   `signature`; ERR_NODE_ATTESTATION_FAILED when the key type is not one x509pop verifies or the signature
 *   does not verify
 * @example
 * ```ts
 * verifyX509PopResponse(leaf.publicKey, nonce, response);
 * ```
 */
export function verifyX509PopResponse(publicKey: KeyObject, nonce: Buffer, response: Buffer): void {
  const { signature } = parseObject(response, 'challenge response');
  if (typeof signature !== 'string') throw invalid('response has no signature');
  const sig = Buffer.from(signature, 'base64');
  const keyType = publicKey.asymmetricKeyType;
  if (keyType !== 'ec' && keyType !== 'rsa' && keyType !== 'ed25519') {
    throw failed(`leaf key type "${String(keyType)}" is not supported`);
  }
  let ok: boolean;
  try {
    ok =
      keyType === 'rsa'
        ? cryptoVerify(
            'sha256',
            nonce,
            {
              key: publicKey,
              padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
              saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
            },
            sig,
          )
        : cryptoVerify(keyType === 'ed25519' ? null : 'sha256', nonce, publicKey, sig);
  } catch {
    // A signature node:crypto cannot even decode (e.g. not DER for ECDSA) does not verify.
    ok = false;
  }
  if (!ok) throw failed('challenge response does not verify with the leaf key');
}
