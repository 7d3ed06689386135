/**
 * JWK helpers shared by the bundle classes (internal, not exported from the subpath).
 *
 * @module
 */
import { createPublicKey, type JsonWebKey, type KeyObject, X509Certificate } from 'node:crypto';
import { isJsonObject, type JsonObject, type JsonValue } from '../internal/json.js';

/** Key types the library can import from a JWK. */
export const KNOWN_KTY: ReadonlySet<string> = new Set(['EC', 'RSA', 'OKP']);

const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  EC: ['crv', 'x', 'y'],
  RSA: ['n', 'e'],
  OKP: ['crv', 'x'],
};
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const STD_BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** A JWK problem; the caller adds its area prefix and entry index. */
export class JwkError extends Error {}

/** Tells whether the JWK carries any public key parameter of its kty. */
export function hasKeyParams(jwk: JsonObject, kty: string): boolean {
  const members = PUBLIC_MEMBERS[kty] ?? [];
  return members.some((m) => m !== 'crv' && jwk[m] !== undefined);
}

/** Imports the public key of a JWK with a known kty. Refuses private key material. */
export function jwkToPublicKey(jwk: JsonObject, kty: string): KeyObject {
  for (const m of PRIVATE_MEMBERS) {
    if (jwk[m] !== undefined) throw new JwkError('contains private key material');
  }
  const members = PUBLIC_MEMBERS[kty];
  if (members === undefined) throw new JwkError(`unsupported key type ${JSON.stringify(kty)}`);
  const plain: Record<string, string> = { kty };
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== 'string') throw new JwkError(`missing or invalid "${m}"`);
    plain[m] = v;
  }
  try {
    return createPublicKey({ key: plain as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new JwkError(`invalid key: ${(err as Error).message}`);
  }
}

/** Decodes one `x5c` element (standard, padded base64 DER) into a certificate. */
export function parseX5cCert(v: JsonValue | undefined): X509Certificate {
  if (typeof v !== 'string' || v.length === 0 || v.length % 4 !== 0 || !STD_BASE64_RE.test(v)) {
    throw new JwkError('x5c element is not standard base64');
  }
  try {
    const cert = new X509Certificate(Buffer.from(v, 'base64'));
    void cert.publicKey; // parsed lazily by node: fail here, not later, on an unsupported or broken key
    return cert;
  } catch (err) {
    throw new JwkError(`cannot parse x5c certificate: ${(err as Error).message}`);
  }
}

/** Tells whether two public keys are the same key (SPKI DER equality). */
export function sameKey(a: KeyObject, b: KeyObject): boolean {
  return spki(a).equals(spki(b));
}

/** The DER SubjectPublicKeyInfo of a public key. */
export function spki(k: KeyObject): Buffer {
  return k.export({ type: 'spki', format: 'der' });
}

/** The public JWK members of a key (kty and its parameters only), in a fixed order. */
export function publicKeyToJwk(key: KeyObject): Record<string, string> {
  const jwk = key.export({ format: 'jwk' });
  const kty = jwk.kty ?? '';
  const out: Record<string, string> = { kty };
  for (const m of PUBLIC_MEMBERS[kty] ?? []) {
    const v = (jwk as Record<string, unknown>)[m];
    if (typeof v === 'string') out[m] = v;
  }
  return out;
}

/** Reads a JSON object or throws. */
export function asObject(v: JsonValue | undefined, what: string): JsonObject {
  if (!isJsonObject(v)) throw new JwkError(`${what} is not a JSON object`);
  return v;
}
