/** PEM certificate files read by the server. @module */
import { X509Certificate } from 'node:crypto';
import { ConfigError } from '@tessera/spiffe/errors';

const BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/**
 * The certificates of a PEM file.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the file holds no certificate or one cannot be parsed
 */
export function decodePemCertificates(text: string, source: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const m of text.matchAll(BLOCK)) {
    try {
      out.push(new X509Certificate(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64')));
    } catch {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `config: "${source}" holds a certificate that cannot be parsed`,
      );
    }
  }
  if (out.length === 0)
    throw new ConfigError('ERR_CONFIG_INVALID', `config: "${source}" holds no PEM certificate`);
  return out;
}
