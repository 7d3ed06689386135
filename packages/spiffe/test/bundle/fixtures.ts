import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A self-signed CA certificate made by openssl, with its key. */
export interface Fixture {
  readonly pem: string;
  readonly cert: X509Certificate;
  readonly der: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Mints a self-signed CA certificate with openssl (EC P-256 or RSA 2048). */
export function mintCa(name: string, kind: 'ec' | 'rsa' = 'ec'): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bundle-'));
  try {
    const keyArgs =
      kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        ...keyArgs,
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        `/CN=${name}`,
        '-days',
        '30',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-addext',
        `subjectAltName=URI:spiffe://${name}`,
      ],
      { stdio: 'pipe' },
    );
    const pem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const cert = new X509Certificate(pem);
    const privateKey = createPrivateKey(readFileSync(join(dir, 'key.pem')));
    return { pem, cert, der: cert.raw, privateKey, publicKey: createPublicKey(privateKey) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The public JWK members of a key. */
export function jwkOf(key: KeyObject): Record<string, string> {
  return key.export({ format: 'jwk' }) as Record<string, string>;
}

export const caA = mintCa('a.example.org');
export const caB = mintCa('b.example.org');
export const caRsa = mintCa('rsa.example.org', 'rsa');
