/**
 * A test certificate authority that mints X.509 chains on demand, including deliberately defective
 * certificates (wrong flags, missing extensions, broken signatures, odd validity) for negative tests.
 *
 * @module
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BuiltCertificate,
  buildCertificate,
  CA_KEY_USAGE,
  type CertificateOptions,
  type DistinguishedName,
  derToPem,
  type ExtKeyUsageName,
  generateKey,
  type KeyType,
  type KeyUsageName,
  LEAF_KEY_USAGE,
  pkcs8Der,
  pkcs8Pem,
} from '@tessera/common/x509';

/** Options of {@link TestCa.create} and {@link TestCa.createIntermediate}. Defaults give a valid SPIFFE CA. */
export interface TestCaOptions {
  /** Trust domain name (`example.org`). Required for a root; an intermediate inherits its parent's. */
  readonly trustDomain?: string;
  /** Key type of this CA. Default `ec-p256`. */
  readonly keyType?: KeyType;
  /** Use this key pair instead of generating one. */
  readonly privateKey?: KeyObject;
  /** basicConstraints pathLenConstraint. Default: none. */
  readonly pathLen?: number;
  /** Permitted URI name-constraint hosts (`example.org`, `.example.org`). */
  readonly permittedUris?: readonly string[];
  /** Excluded URI name-constraint hosts. */
  readonly excludedUris?: readonly string[];
  /** Permitted DNS name-constraint subtrees. */
  readonly permittedDnsNames?: readonly string[];
  /** Excluded DNS name-constraint subtrees. */
  readonly excludedDnsNames?: readonly string[];
  /** Reference time for defaults. Default: the current time. */
  readonly now?: Date;
  /** Default: `now` minus one hour. */
  readonly notBefore?: Date;
  /** Default: `now` plus 365 days. */
  readonly notAfter?: Date;
  /** URI SAN of the CA. Default `spiffe://<td>`; `null` omits the SAN extension. */
  readonly subjectSpiffeId?: string | null;
  /** Subject name. Default: `O=Tessera Test, CN=Test Root CA <n>` (or Intermediate). */
  readonly subject?: DistinguishedName;
  /** Key usages. Default keyCertSign + cRLSign; `null` omits the extension. */
  readonly keyUsage?: readonly KeyUsageName[] | null;
  /** Mark keyUsage critical. Default true. */
  readonly keyUsageCritical?: boolean;
  /** Drop keyCertSign from the key usages (a defective signing certificate, X5-05). */
  readonly omitKeyCertSign?: boolean;
  /** basicConstraints cA flag. Default true; false makes a defective signing certificate (X5-05). */
  readonly isCa?: boolean;
  /** Omit basicConstraints entirely (defective signing certificate). */
  readonly omitBasicConstraints?: boolean;
}

/** Options of {@link TestCa.issueX509Svid}. Defaults give SPIRE's leaf profile. */
export interface LeafOptions {
  /** The SPIFFE ID (one URI SAN). Default `spiffe://<td>/workload`. */
  readonly spiffeId?: string;
  /** URI SANs, overriding `spiffeId` (e.g. `[]` or two URIs). */
  readonly uris?: readonly string[];
  /** DNS SANs. */
  readonly dnsNames?: readonly string[];
  /** IP SANs. */
  readonly ipAddresses?: readonly string[];
  /** basicConstraints cA flag. Default false; true makes a defective leaf (X5-09). */
  readonly isCa?: boolean;
  /** pathLenConstraint on the leaf's basicConstraints (with `isCa`). */
  readonly pathLen?: number;
  /** Omit basicConstraints (allowed for leaves: treated as non-CA). */
  readonly omitBasicConstraints?: boolean;
  /** Key usages. Default digitalSignature + keyEncipherment + keyAgreement; `null` omits the extension. */
  readonly keyUsage?: readonly KeyUsageName[] | null;
  /** Mark keyUsage critical. Default true. */
  readonly keyUsageCritical?: boolean;
  /** Extended key usages. Default serverAuth + clientAuth; `null` omits the extension. */
  readonly extKeyUsage?: readonly ExtKeyUsageName[] | null;
  /** Reference time for defaults. Default: the current time. */
  readonly now?: Date;
  /** Default: `now` minus 10 seconds. */
  readonly notBefore?: Date;
  /** Default: `now` plus one hour. */
  readonly notAfter?: Date;
  /** Subject name. Default `C=US, O=SPIFFE`. */
  readonly subject?: DistinguishedName;
  /** Use the empty subject (the SAN then defaults to critical, X5-04). */
  readonly emptySubject?: boolean;
  /** Force the SAN extension's criticality. */
  readonly sanCritical?: boolean;
  /** Key type of a generated leaf key. Default `ec-p256`. */
  readonly keyType?: KeyType;
  /** Issue for this key pair instead of generating one. */
  readonly privateKey?: KeyObject;
  /** Flip a bit of the signature so that it no longer verifies (X5-15). */
  readonly corruptSignature?: boolean;
  /** Omit the subjectKeyIdentifier / authorityKeyIdentifier extensions. */
  readonly omitKeyIdentifiers?: boolean;
}

/** A chain issued by {@link TestCa.issueX509Svid} for a given public key. */
export interface IssuedChain {
  /** Leaf first, then this CA and its intermediate parents; never the root. */
  readonly certificates: X509Certificate[];
  /** The leaf (`certificates[0]`). */
  readonly leaf: X509Certificate;
  /** The certificates' DER, concatenated in the same order. */
  readonly chainDer: Buffer;
  /** The certificates as concatenated PEM blocks. */
  readonly certPem: string;
}

/** A chain plus its private key, as issued by {@link TestCa.issueX509Svid}. */
export interface IssuedX509Svid extends IssuedChain {
  readonly privateKey: KeyObject;
  /** PKCS#8 DER of the private key. */
  readonly keyDer: Buffer;
  /** PKCS#8 PEM of the private key. */
  readonly keyPem: string;
}

/** Paths written by {@link TestCa.writePemFiles}. */
export interface PemFiles {
  /** The root certificate. */
  readonly rootFile: string;
  /** This CA and its intermediate parents (possibly empty for a root). */
  readonly intermediatesFile: string;
  /** The SVID chain (leaf first), when an SVID was given. */
  readonly certFile?: string;
  /** The SVID key, when an SVID with a key was given. */
  readonly keyFile?: string;
}

let caCounter = 0;
const HOUR = 3600_000;

/**
 * A test CA (root or intermediate) that issues X509-SVIDs and intermediates on demand.
 *
 * @example
 * const ca = TestCa.create({ trustDomain: 'example.org' });
 * const svid = ca.issueX509Svid({ spiffeId: 'spiffe://example.org/web' });
 * const inter = ca.createIntermediate({ permittedUris: ['example.org'] });
 * const bad = inter.issueX509Svid({ keyUsage: null }); // leaf without keyUsage
 */
export class TestCa {
  /** This CA's certificate. */
  readonly certificate: X509Certificate;
  /** This CA's certificate DER. */
  readonly der: Buffer;
  /** This CA's private key. */
  readonly privateKey: KeyObject;
  /** This CA's public key. */
  readonly publicKey: KeyObject;
  /** The trust domain name this CA was created for. */
  readonly trustDomain: string;
  /** The root of this CA's hierarchy (itself for a root). */
  readonly root: TestCa;
  /** The CA that issued this one (undefined for a root). */
  readonly parent: TestCa | undefined;

  private constructor(
    built: BuiltCertificate,
    key: KeyObject,
    trustDomain: string,
    parent: TestCa | undefined,
  ) {
    this.certificate = built.certificate;
    this.der = built.der;
    this.privateKey = key;
    this.publicKey = createPublicKey(key);
    this.trustDomain = trustDomain;
    this.parent = parent;
    this.root = parent ? parent.root : this;
  }

  /**
   * Creates a self-signed root CA.
   *
   * @throws {TypeError} when `trustDomain` is missing.
   * @example const ca = TestCa.create({ trustDomain: 'example.org', keyType: 'ec-p384' });
   */
  static create(options: TestCaOptions): TestCa {
    if (!options.trustDomain) throw new TypeError('testing: TestCa.create needs a trustDomain');
    return TestCa.#make(options, options.trustDomain, undefined);
  }

  /**
   * Creates an intermediate CA signed by this one (same trust domain unless given).
   *
   * @example const inter = root.createIntermediate({ pathLen: 0 });
   */
  createIntermediate(options: TestCaOptions = {}): TestCa {
    return TestCa.#make(options, options.trustDomain ?? this.trustDomain, this);
  }

  static #make(o: TestCaOptions, trustDomain: string, parent: TestCa | undefined): TestCa {
    const now = o.now ?? new Date();
    const key = o.privateKey ?? generateKey(o.keyType ?? 'ec-p256').privateKey;
    let usages: readonly KeyUsageName[] | null = o.keyUsage === undefined ? CA_KEY_USAGE : o.keyUsage;
    if (usages && o.omitKeyCertSign) usages = usages.filter((u) => u !== 'keyCertSign');
    const spiffeId = o.subjectSpiffeId === undefined ? `spiffe://${trustDomain}` : o.subjectSpiffeId;
    const n = ++caCounter;
    const hasConstraints = o.permittedUris || o.excludedUris || o.permittedDnsNames || o.excludedDnsNames;
    const options: CertificateOptions = {
      publicKey: key,
      subject: o.subject ?? {
        organization: 'Tessera Test',
        commonName: `Test ${parent ? 'Intermediate' : 'Root'} CA ${n}`,
      },
      notBefore: o.notBefore ?? new Date(now.getTime() - HOUR),
      notAfter: o.notAfter ?? new Date(now.getTime() + 365 * 24 * HOUR),
      ...(o.omitBasicConstraints
        ? {}
        : {
            basicConstraints: {
              ca: o.isCa ?? true,
              ...(o.pathLen === undefined ? {} : { pathLen: o.pathLen }),
            },
          }),
      ...(usages ? { keyUsage: { usages, critical: o.keyUsageCritical ?? true } } : {}),
      ...(spiffeId === null ? {} : { subjectAltName: { uris: [spiffeId] } }),
      ...(hasConstraints
        ? {
            nameConstraints: {
              permittedUris: o.permittedUris ?? [],
              excludedUris: o.excludedUris ?? [],
              permittedDnsNames: o.permittedDnsNames ?? [],
              excludedDnsNames: o.excludedDnsNames ?? [],
            },
          }
        : {}),
    };
    const built = buildCertificate(
      options,
      parent ? { certificate: parent.certificate, privateKey: parent.privateKey } : { privateKey: key },
    );
    return new TestCa(built, key, trustDomain, parent);
  }

  /** Whether this CA is a self-signed root. */
  get isRoot(): boolean {
    return this.parent === undefined;
  }

  /** This CA and its intermediate parents, nearest first, excluding the root (empty for a root). */
  chainToRoot(): X509Certificate[] {
    const out: X509Certificate[] = [];
    for (let ca: TestCa | undefined = this; ca?.parent; ca = ca.parent) out.push(ca.certificate);
    return out;
  }

  /** The root certificate's DER. */
  rootDer(): Buffer {
    return this.root.der;
  }

  /** The root certificate's PEM. */
  rootPem(): string {
    return derToPem(this.root.der);
  }

  /** This CA's certificate PEM. */
  pem(): string {
    return derToPem(this.der);
  }

  /**
   * Issues a leaf certificate signed by this CA, with SPIRE's leaf profile unless options say otherwise.
   * With `publicKey`, only the chain is returned (the caller holds the private key).
   *
   * @example const { certificates, privateKey } = ca.issueX509Svid({ spiffeId: 'spiffe://example.org/db' });
   */
  issueX509Svid(options: LeafOptions & { readonly publicKey: KeyObject }): IssuedChain;
  issueX509Svid(options?: LeafOptions): IssuedX509Svid;
  issueX509Svid(o: LeafOptions & { readonly publicKey?: KeyObject } = {}): IssuedChain | IssuedX509Svid {
    const now = o.now ?? new Date();
    let privateKey: KeyObject | undefined;
    let publicKey: KeyObject;
    if (o.publicKey) {
      publicKey = o.publicKey;
      privateKey = o.publicKey.type === 'private' ? o.publicKey : undefined;
    } else {
      privateKey = o.privateKey ?? generateKey(o.keyType ?? 'ec-p256').privateKey;
      publicKey = privateKey;
    }
    const uris = o.uris ?? [o.spiffeId ?? `spiffe://${this.trustDomain}/workload`];
    const keyUsage = o.keyUsage === undefined ? LEAF_KEY_USAGE : o.keyUsage;
    const eku = o.extKeyUsage === undefined ? (['serverAuth', 'clientAuth'] as const) : o.extKeyUsage;
    const hasSan = uris.length > 0 || (o.dnsNames?.length ?? 0) > 0 || (o.ipAddresses?.length ?? 0) > 0;
    const options: CertificateOptions = {
      publicKey,
      subject: o.emptySubject ? {} : (o.subject ?? { country: 'US', organization: 'SPIFFE' }),
      notBefore: o.notBefore ?? new Date(now.getTime() - 10_000),
      notAfter: o.notAfter ?? new Date(now.getTime() + HOUR),
      ...(o.omitBasicConstraints
        ? {}
        : {
            basicConstraints: {
              ca: o.isCa ?? false,
              ...(o.pathLen === undefined ? {} : { pathLen: o.pathLen }),
            },
          }),
      ...(keyUsage ? { keyUsage: { usages: keyUsage, critical: o.keyUsageCritical ?? true } } : {}),
      ...(eku ? { extKeyUsage: eku } : {}),
      ...(hasSan
        ? {
            subjectAltName: {
              uris,
              dnsNames: o.dnsNames ?? [],
              ipAddresses: o.ipAddresses ?? [],
              ...(o.sanCritical === undefined ? {} : { critical: o.sanCritical }),
            },
          }
        : {}),
      ...(o.omitKeyIdentifiers ? { subjectKeyIdentifier: false, authorityKeyIdentifier: false } : {}),
    };
    const built = buildCertificate(options, { certificate: this.certificate, privateKey: this.privateKey });
    let leafDer = built.der;
    if (o.corruptSignature) {
      leafDer = Buffer.from(leafDer);
      // The last byte belongs to the signature value; flipping a low bit keeps the DER well formed.
      leafDer[leafDer.length - 1] = (leafDer[leafDer.length - 1] as number) ^ 0x01;
    }
    const leaf = o.corruptSignature ? new X509Certificate(leafDer) : built.certificate;
    const certificates = [leaf, ...this.chainToRoot()];
    const chain: IssuedChain = {
      certificates,
      leaf,
      chainDer: Buffer.concat(certificates.map((c) => c.raw)),
      certPem: certificates.map((c) => derToPem(c.raw)).join(''),
    };
    if (!privateKey) return chain;
    return { ...chain, privateKey, keyDer: pkcs8Der(privateKey), keyPem: pkcs8Pem(privateKey) };
  }

  /**
   * Writes `root.pem`, `intermediates.pem` and, when given, `svid.pem` + `svid.key` into `dir` (created if
   * needed), for tests that drive openssl or other real peers.
   *
   * @example const files = ca.writePemFiles(tmpDir, ca.issueX509Svid());
   */
  writePemFiles(dir: string, svid?: IssuedChain | IssuedX509Svid): PemFiles {
    mkdirSync(dir, { recursive: true });
    const rootFile = join(dir, 'root.pem');
    const intermediatesFile = join(dir, 'intermediates.pem');
    writeFileSync(rootFile, this.rootPem());
    writeFileSync(
      intermediatesFile,
      this.chainToRoot()
        .map((c) => derToPem(c.raw))
        .join(''),
    );
    if (!svid) return { rootFile, intermediatesFile };
    const certFile = join(dir, 'svid.pem');
    writeFileSync(certFile, svid.certPem);
    if (!('keyPem' in svid)) return { rootFile, intermediatesFile, certFile };
    const keyFile = join(dir, 'svid.key');
    writeFileSync(keyFile, svid.keyPem, { mode: 0o600 });
    return { rootFile, intermediatesFile, certFile, keyFile };
  }
}
