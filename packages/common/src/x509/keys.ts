/**
 * Key generation and the per-key facts certificate building needs (SPKI DER, signature algorithm).
 *
 * @module
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { DerReader, readOne } from './der-reader.js';
import { Tag } from './der-writer.js';
import { SignatureAlgorithmDer } from './oids.js';

/** Key types Tessera can generate and sign with. */
export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'ed25519';

/** Every supported {@link KeyType}, in a stable order. */
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];

/** A generated key pair. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Generates a key pair of the given type.
 *
 * @throws {TypeError} when `type` is not a {@link KeyType}.
 * @example const { privateKey, publicKey } = generateKey('ec-p256');
 */
export function generateKey(type: KeyType = 'ec-p256'): KeyPair {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'rsa-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    default:
      throw new TypeError(`x509: unsupported key type "${String(type)}"`);
  }
}

/**
 * The {@link KeyType} of a private or public key, or `undefined` when it is not one Tessera signs with.
 *
 * @example keyTypeOf(generateKey('ed25519').publicKey) // 'ed25519'
 */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details?.namedCurve === 'prime256v1' || details?.namedCurve === 'P-256') return 'ec-p256';
      if (details?.namedCurve === 'secp384r1' || details?.namedCurve === 'P-384') return 'ec-p384';
      return undefined;
    case 'rsa':
      return (details?.modulusLength ?? 0) >= 2048 ? 'rsa-2048' : undefined;
    case 'ed25519':
      return 'ed25519';
    default:
      return undefined;
  }
}

/** How to sign with a key: the AlgorithmIdentifier DER and the `crypto.sign` digest name. */
export interface SignatureScheme {
  /** The AlgorithmIdentifier to put in `signature` / `signatureAlgorithm`. */
  readonly algorithmDer: Buffer;
  /** Digest for `crypto.sign` (`null` for Ed25519). */
  readonly hash: 'sha256' | 'sha384' | null;
}

/**
 * The signature scheme used with a signing key: ECDSA P-256/SHA-256, ECDSA P-384/SHA-384,
 * RSA PKCS#1 v1.5 SHA-256 (any size of at least 2048 bits), or Ed25519.
 *
 * @throws {TypeError} when the key type is not supported.
 * @example signatureSchemeFor(caKey).hash // 'sha256'
 */
export function signatureSchemeFor(key: KeyObject): SignatureScheme {
  switch (keyTypeOf(key)) {
    case 'ec-p256':
      return { algorithmDer: SignatureAlgorithmDer.ecdsaWithSha256, hash: 'sha256' };
    case 'ec-p384':
      return { algorithmDer: SignatureAlgorithmDer.ecdsaWithSha384, hash: 'sha384' };
    case 'rsa-2048':
      return { algorithmDer: SignatureAlgorithmDer.sha256WithRsa, hash: 'sha256' };
    case 'ed25519':
      return { algorithmDer: SignatureAlgorithmDer.ed25519, hash: null };
    default:
      throw new TypeError(
        `x509: unsupported signing key type "${String(key.asymmetricKeyType)}"` +
          (key.asymmetricKeyDetails?.namedCurve ? ` (${key.asymmetricKeyDetails.namedCurve})` : ''),
      );
  }
}

const spkiCache = new WeakMap<KeyObject, Buffer>();

/**
 * The SubjectPublicKeyInfo DER of a key (a private key yields its public half). Cached per KeyObject.
 *
 * @throws {TypeError} when `key` is a secret key.
 * @example spkiDer(publicKey).length // 91 for P-256
 */
export function spkiDer(key: KeyObject): Buffer {
  const cached = spkiCache.get(key);
  if (cached) return cached;
  if (key.type === 'secret') throw new TypeError('x509: a secret key has no public key info');
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  spkiCache.set(key, der);
  return der;
}

/**
 * The PKCS#8 DER of a private key.
 *
 * @throws {TypeError} when `key` is not a private key.
 * @example pkcs8Der(privateKey)
 */
export function pkcs8Der(key: KeyObject): Buffer {
  if (key.type !== 'private') throw new TypeError('x509: pkcs8Der needs a private key');
  return key.export({ type: 'pkcs8', format: 'der' });
}

/**
 * The PKCS#8 PEM of a private key.
 *
 * @throws {TypeError} when `key` is not a private key.
 * @example pkcs8Pem(privateKey).startsWith('-----BEGIN PRIVATE KEY-----')
 */
export function pkcs8Pem(key: KeyObject): string {
  if (key.type !== 'private') throw new TypeError('x509: pkcs8Pem needs a private key');
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A key identifier per RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value
 * (excluding tag, length and unused-bits octet), taken from a SubjectPublicKeyInfo DER.
 *
 * @throws {TypeError} when `spki` is not a well-formed SubjectPublicKeyInfo.
 * @example keyIdentifier(spkiDer(publicKey)).length // 20
 */
export function keyIdentifier(spki: Uint8Array): Buffer {
  const buf = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  let bits: Buffer;
  try {
    const r = new DerReader(readOne(buf, Tag.sequence, 'subject public key info').content);
    r.read(Tag.sequence, 'algorithm');
    bits = r.read(Tag.bitString, 'subject public key').content;
    r.end('subject public key info');
  } catch (err) {
    throw new TypeError('x509: malformed subject public key info', { cause: err });
  }
  if (bits.length < 2 || bits[0] !== 0) throw new TypeError('x509: malformed subject public key info');
  return createHash('sha1').update(bits.subarray(1)).digest();
}
