/** Conversions between API bundles and PEM / SPIFFE bundle (JWKS) documents, and bundle output. @module */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Bundle } from '@tessera/common/api';
import { derToPem } from '@tessera/common/x509';
import { SpiffeBundle, X509Bundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { CliUsageError, type FlagSpec } from '../../args.js';
import type { CommandContext } from '../../context.js';
import { parseEnumValue } from '../../values.js';

/** Bundle formats: PEM certificates (X.509 authorities only) or the SPIFFE bundle JSON (JWKS). */
export const BUNDLE_FORMATS = ['pem', 'spiffe'] as const;
/** A bundle format. */
export type BundleFormat = (typeof BUNDLE_FORMATS)[number];

/** The `--format` flag. */
export const FORMAT_FLAG: FlagSpec = {
  name: 'format',
  kind: 'string',
  description: 'bundle format: pem (default) or spiffe (SPIFFE bundle JSON)',
  valueName: 'FORMAT',
};

/** The `--format` value (default pem). */
export function formatFromFlags(ctx: CommandContext): BundleFormat {
  return parseEnumValue(ctx.name, 'format', ctx.flags.strings.get('format') ?? 'pem', BUNDLE_FORMATS);
}

/** The X.509 authorities of an API bundle as concatenated PEM certificates. */
export function bundleToPem(b: Bundle): string {
  return b.x509Authorities.map((a) => derToPem(a.asn1)).join('');
}

/** An API bundle as a SPIFFE bundle document (JWKS with `spiffe_sequence` and `spiffe_refresh_hint`). */
export function bundleToSpiffe(b: Bundle): string {
  const td = TrustDomain.fromString(b.trustDomain);
  const jwt = new Map<string, KeyObject>();
  for (const k of b.jwtAuthorities)
    jwt.set(k.keyId, createPublicKey({ key: Buffer.from(k.publicKey), format: 'der', type: 'spki' }));
  const parts = {
    x509Authorities: b.x509Authorities.map((a) => new X509Certificate(a.asn1)),
    jwtAuthorities: jwt,
    sequenceNumber: b.sequenceNumber,
    ...(b.refreshHint > 0n ? { refreshHint: Number(b.refreshHint) } : {}),
  };
  return SpiffeBundle.fromAuthorities(td, parts).marshal();
}

/** Renders a bundle in the chosen format. */
export function renderBundle(b: Bundle, format: BundleFormat): string {
  return format === 'pem' ? bundleToPem(b) : `${bundleToSpiffe(b)}\n`;
}

/**
 * Reads a bundle file (or standard input when `path` is `-`) of trust domain `td` into an API bundle.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when the file cannot be read or holds no valid bundle
 */
export async function readBundle(
  ctx: CommandContext,
  flag: string,
  path: string,
  td: string,
  format: BundleFormat,
  stdin: () => Promise<Buffer>,
): Promise<Bundle> {
  let data: Buffer;
  try {
    data = path === '-' ? await stdin() : await readFile(resolve(ctx.io.cwd, path));
  } catch (err) {
    throw new CliUsageError(
      `${ctx.name}: cannot read --${flag} ${JSON.stringify(path)}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const trustDomain = TrustDomain.fromString(td);
  try {
    if (format === 'pem') {
      const x = X509Bundle.parse(trustDomain, data);
      if (x.x509Authorities().length === 0) throw new Error('no certificates found');
      return Bundle.fromPartial({
        trustDomain: td,
        x509Authorities: x.x509Authorities().map((c) => ({ asn1: c.raw })),
      });
    }
    const s = SpiffeBundle.parse(trustDomain, data);
    return Bundle.fromPartial({
      trustDomain: td,
      x509Authorities: s.x509Authorities().map((c) => ({ asn1: c.raw })),
      jwtAuthorities: [...s.jwtAuthorities()].map(([keyId, key]) => ({
        keyId,
        publicKey: key.export({ format: 'der', type: 'spki' }),
      })),
      refreshHint: BigInt(s.refreshHint ?? 0),
      sequenceNumber: s.sequenceNumber ?? 0n,
    });
  } catch (err) {
    throw new CliUsageError(
      `${ctx.name}: --${flag} ${JSON.stringify(path)} is not a valid ${format} bundle: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/** Reads all of standard input. */
export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
