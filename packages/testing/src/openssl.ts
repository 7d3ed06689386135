/**
 * Arguments for the openssl program, shared by tests that make their certificates with it (a real peer, not
 * the project's own X.509 code).
 *
 * @module
 */

/** Options of {@link selfSignedCertArgs}. */
export interface SelfSignedCertOptions {
  /** Where openssl writes the new P-256 private key (PKCS#8 PEM, unencrypted). */
  readonly keyPath: string;
  /** Where openssl writes the self-signed certificate (PEM). */
  readonly certPath: string;
  /** Subject, as openssl writes it: `/O=Org/CN=name`. */
  readonly subject: string;
  /** Validity in days from now. */
  readonly days: number;
  /** `-addext` values: `subjectAltName=DNS:localhost`, `basicConstraints=critical,CA:TRUE`… */
  readonly extensions?: readonly string[];
}

/**
 * The `openssl` arguments (`req -x509 …`) that make a new P-256 key and a certificate self-signed with it.
 *
 * @example
 * ```ts
 * execFileSync('openssl', selfSignedCertArgs({ keyPath: 'k.pem', certPath: 'c.pem', subject: '/CN=x', days: 1 }));
 * ```
 */
export function selfSignedCertArgs(o: SelfSignedCertOptions): string[] {
  return [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    o.keyPath,
    '-out',
    o.certPath,
    '-days',
    String(o.days),
    '-subj',
    o.subject,
    ...(o.extensions ?? []).flatMap((e) => ['-addext', e]),
  ];
}
