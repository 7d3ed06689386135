/**
 * X509-SVIDs: a certificate chain carrying a SPIFFE ID, and its private key.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { X509SvidError } from '../errors.js';
import { type CertInfo, certInfo, KeyUsage } from '../internal/der.js';
import { decodePem, EncodingError, encodePem, splitConcatenatedDer } from '../internal/pem.js';
import type { SpiffeId } from '../spiffeid/index.js';
import { idFromCertInfo } from './x509-verify.js';

const SUPPORTED_KEY_TYPES = new Set(['ec', 'rsa', 'ed25519']);

function invalid(message: string, cause?: unknown): X509SvidError {
  return new X509SvidError(
    'ERR_X509SVID_INVALID',
    `x509svid: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function reasonOf(err: unknown): string {
  if (err instanceof X509SvidError) return err.message.replace(/^x509svid: /, '');
  if (err instanceof EncodingError) return err.message;
  return 'invalid certificate';
}

/** Parses one DER certificate and its extensions; throws a reason string's error. */
function parseCert(der: Uint8Array, kind: 'PEM' | 'DER'): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (err) {
    throw invalid(`cannot parse ${kind} encoded certificate: invalid certificate`, err);
  }
  try {
    certInfo(cert);
  } catch (err) {
    throw invalid(`cannot parse ${kind} encoded certificate: ${reasonOf(err)}`, err);
  }
  return cert;
}

function parseKey(der: Uint8Array, kind: 'PEM' | 'DER'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: Buffer.from(der.buffer, der.byteOffset, der.byteLength),
      format: 'der',
      type: 'pkcs8',
    });
  } catch (err) {
    throw invalid(`cannot parse ${kind} encoded private key: invalid PKCS#8 private key`, err);
  }
  const type = key.asymmetricKeyType ?? 'unknown';
  if (!SUPPORTED_KEY_TYPES.has(type)) {
    throw invalid(`cannot parse ${kind} encoded private key: unsupported private key type "${type}"`);
  }
  return key;
}

/** go-spiffe's structural checks of an SVID chain (leaf first); returns the leaf's SPIFFE ID. */
function validateCertificates(certs: readonly X509Certificate[]): SpiffeId {
  const prefix = 'certificate validation failed';
  const leaf = certs[0];
  if (leaf === undefined) throw invalid(`${prefix}: no certificates found`);
  const info: CertInfo = certInfo(leaf);
  const id = idFromCertInfo(info);
  if (typeof id === 'string') throw invalid(`${prefix}: cannot get leaf certificate SPIFFE ID: ${id}`);
  if (id.path === '') throw invalid(`${prefix}: leaf certificate SPIFFE ID must have a non-root path`);
  if (info.basicConstraints.cA)
    throw invalid(`${prefix}: leaf certificate must not have CA flag set to true`);
  const bits = info.keyUsage.bits;
  if (!(bits & KeyUsage.digitalSignature)) {
    throw invalid(`${prefix}: leaf certificate must have 'digitalSignature' set as key usage`);
  }
  if (bits & KeyUsage.keyCertSign)
    throw invalid(`${prefix}: leaf certificate must not have 'keyCertSign' set as key usage`);
  if (bits & KeyUsage.cRLSign)
    throw invalid(`${prefix}: leaf certificate must not have 'cRLSign' set as key usage`);
  for (let i = 1; i < certs.length; i++) {
    const ci = certInfo(certs[i]!);
    if (!ci.basicConstraints.cA)
      throw invalid(`${prefix}: signing certificate must have CA flag set to true`);
    if (!(ci.keyUsage.bits & KeyUsage.keyCertSign)) {
      throw invalid(`${prefix}: signing certificate must have 'keyCertSign' set as key usage`);
    }
  }
  return id;
}

function validatePrivateKey(key: KeyObject, leaf: X509Certificate): void {
  let matches = false;
  try {
    matches = createPublicKey(key).equals(leaf.publicKey);
  } catch {
    matches = false;
  }
  if (!matches) throw invalid('private key validation failed: leaf certificate does not match private key');
}

function checkHint(hint: unknown): string {
  if (typeof hint !== 'string') throw new TypeError('x509svid: hint must be a string');
  return hint;
}

function toBytes(input: unknown, what: string): Uint8Array | string {
  if (typeof input === 'string' || input instanceof Uint8Array) return input;
  throw new TypeError(`x509svid: ${what} must be a string or a Uint8Array`);
}

/**
 * An X509-SVID: a certificate chain (leaf first) whose leaf carries a SPIFFE ID, and the leaf's private
 * key. Built only through {@link X509Svid.parse}, {@link X509Svid.parseDer} or {@link X509Svid.load},
 * which run go-spiffe's structural checks (X509-SVID §4, §5); they do not verify the chain against a
 * bundle: use {@link verifyX509Svid} for that. Instances are immutable.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
 * @example
 * ```ts
 * const svid = X509Svid.parse(certsPem, keyPem);
 * svid.id.toString(); // 'spiffe://example.org/workload'
 * ```
 */
export class X509Svid {
  readonly #id: SpiffeId;
  readonly #certificates: readonly X509Certificate[];
  readonly #privateKey: KeyObject;
  readonly #hint: string;

  private constructor(id: SpiffeId, certificates: X509Certificate[], privateKey: KeyObject, hint: string) {
    this.#id = id;
    this.#certificates = Object.freeze(certificates);
    this.#privateKey = privateKey;
    this.#hint = hint;
  }

  static #build(certs: X509Certificate[], key: KeyObject, hint: string): X509Svid {
    const id = validateCertificates(certs);
    validatePrivateKey(key, certs[0]!);
    return new X509Svid(id, certs, key, hint);
  }

  /**
   * Parses an X509-SVID from PEM: `CERTIFICATE` blocks (leaf first) and one PKCS#8 `PRIVATE KEY` block
   * (EC, RSA or Ed25519). Other blocks are ignored, so one text holding the key before or after the
   * certificates may be passed as both arguments.
   *
   * @param certsPem PEM text of the chain, leaf first
   * @param keyPem PEM text holding the PKCS#8 private key of the leaf
   * @param hint the Workload API hint, if any
   * @throws {X509SvidError} ERR_X509SVID_INVALID, e.g. `x509svid: cannot parse PEM encoded certificate: no PEM blocks found`
   *   or `x509svid: certificate validation failed: leaf certificate must not have CA flag set to true`
   * @example
   * ```ts
   * const svid = X509Svid.parse(readFileSync('svid.pem', 'utf8'), readFileSync('svid.key', 'utf8'));
   * ```
   */
  static parse(certsPem: string | Uint8Array, keyPem: string | Uint8Array, hint = ''): X509Svid {
    const certText = toBytes(certsPem, 'certsPem');
    const keyText = toBytes(keyPem, 'keyPem');
    const h = checkHint(hint);
    let certBlocks: Buffer[];
    try {
      certBlocks = decodePem(certText, 'CERTIFICATE').map((b) => b.der);
    } catch (err) {
      throw invalid(`cannot parse PEM encoded certificate: ${reasonOf(err)}`, err);
    }
    if (certBlocks.length === 0) throw invalid('cannot parse PEM encoded certificate: no PEM blocks found');
    const certs = certBlocks.map((der) => parseCert(der, 'PEM'));

    let keyBlocks: { label: string; der: Buffer }[];
    try {
      keyBlocks = decodePem(keyText);
    } catch (err) {
      throw invalid(`cannot parse PEM encoded private key: ${reasonOf(err)}`, err);
    }
    const keyBlock = keyBlocks.find((b) => b.label === 'PRIVATE KEY');
    if (keyBlock === undefined) {
      const other = keyBlocks.find((b) => b.label.endsWith('PRIVATE KEY'));
      if (other !== undefined) {
        throw invalid(
          `cannot parse PEM encoded private key: expected a PKCS#8 "PRIVATE KEY" block, found "${other.label}"`,
        );
      }
      throw invalid('private key validation failed: no private key found');
    }
    return X509Svid.#build(certs, parseKey(keyBlock.der, 'PEM'), h);
  }

  /**
   * Parses an X509-SVID from DER, as the Workload API carries it: concatenated DER certificates (leaf
   * first) and a PKCS#8 DER private key.
   *
   * @param chainDer concatenated DER certificates, leaf first
   * @param keyDer PKCS#8 DER private key (EC, RSA or Ed25519)
   * @param hint the Workload API hint, if any
   * @throws {X509SvidError} ERR_X509SVID_INVALID, e.g. `x509svid: cannot parse DER encoded certificate: …`
   *   or `x509svid: cannot parse DER encoded private key: …`
   * @example
   * ```ts
   * const svid = X509Svid.parseDer(resp.svids[0].x509Svid, resp.svids[0].x509SvidKey);
   * ```
   */
  static parseDer(chainDer: Uint8Array, keyDer: Uint8Array, hint = ''): X509Svid {
    if (!(chainDer instanceof Uint8Array)) throw new TypeError('x509svid: chainDer must be a Uint8Array');
    if (!(keyDer instanceof Uint8Array)) throw new TypeError('x509svid: keyDer must be a Uint8Array');
    const h = checkHint(hint);
    let ders: Buffer[];
    try {
      ders = splitConcatenatedDer(chainDer);
    } catch (err) {
      throw invalid(`cannot parse DER encoded certificate: ${reasonOf(err)}`, err);
    }
    const certs = ders.map((der) => parseCert(der, 'DER'));
    if (keyDer.length === 0) throw invalid('cannot parse DER encoded private key: no private key found');
    const key = parseKey(keyDer, 'DER');
    return X509Svid.#build(certs, key, h);
  }

  /**
   * Reads an X509-SVID from a PEM certificate file (leaf first) and a PEM PKCS#8 key file (they may be the
   * same file).
   *
   * @param certFile path of the PEM chain
   * @param keyFile path of the PEM private key
   * @throws {X509SvidError} ERR_X509SVID_INVALID when a file cannot be read or does not hold a valid X509-SVID
   * @example
   * ```ts
   * const svid = X509Svid.load('/run/svid.pem', '/run/svid.key');
   * ```
   */
  static load(certFile: string, keyFile: string): X509Svid {
    if (typeof certFile !== 'string' || typeof keyFile !== 'string') {
      throw new TypeError('x509svid: certFile and keyFile must be strings');
    }
    const read = (path: string, what: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        throw invalid(
          `cannot read ${what} file "${path}"${typeof code === 'string' ? `: ${code}` : ''}`,
          err,
        );
      }
    };
    return X509Svid.parse(read(certFile, 'certificate'), read(keyFile, 'private key'));
  }

  /** The SPIFFE ID of the leaf certificate. */
  get id(): SpiffeId {
    return this.#id;
  }

  /** The certificate chain, leaf first (a frozen array). */
  get certificates(): readonly X509Certificate[] {
    return this.#certificates;
  }

  /** The private key of the leaf certificate. */
  get privateKey(): KeyObject {
    return this.#privateKey;
  }

  /** The Workload API hint (empty when none). */
  get hint(): string {
    return this.#hint;
  }

  /**
   * Serializes the SVID to PEM: the chain as `CERTIFICATE` blocks (leaf first) and the key as a PKCS#8
   * `PRIVATE KEY` block. The result contains the private key: handle it as a secret.
   *
   * @example
   * ```ts
   * const { certificates, privateKey } = svid.marshal();
   * ```
   */
  marshal(): { certificates: string; privateKey: string } {
    return {
      certificates: this.#certificates.map((c) => encodePem('CERTIFICATE', c.raw)).join(''),
      privateKey: this.#privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    };
  }

  /**
   * Serializes the SVID as the Workload API carries it: concatenated DER certificates (leaf first) and a
   * PKCS#8 DER private key. The result contains the private key: handle it as a secret.
   *
   * @example
   * ```ts
   * const { certificates, privateKey } = svid.marshalDer();
   * ```
   */
  marshalDer(): { certificates: Buffer; privateKey: Buffer } {
    return {
      certificates: Buffer.concat(this.#certificates.map((c) => c.raw)),
      privateKey: this.#privateKey.export({ format: 'der', type: 'pkcs8' }),
    };
  }

  /** Returns this SVID: an `X509Svid` is its own {@link X509SvidSource}. */
  getX509Svid(): X509Svid {
    return this;
  }

  /** Tells whether `other` holds the same chain, key and hint. */
  equals(other: X509Svid | null | undefined): boolean {
    if (!(other instanceof X509Svid)) return false;
    if (other === this) return true;
    const a = this.#certificates;
    const b = other.#certificates;
    return (
      a.length === b.length &&
      a.every((c, i) => c.raw.equals(b[i]!.raw)) &&
      this.#privateKey.equals(other.#privateKey) &&
      this.#hint === other.#hint
    );
  }

  /** A short description: the SPIFFE ID (never the key). */
  toString(): string {
    return this.#id.toString();
  }
}
