/**
 * What the helper writes to disk and how: PEM renderings of an X.509 context, the JWT bundle file, and
 * atomic file replacement (temporary file in the same directory, fsync, chmod, rename).
 *
 * @module
 */

import type { X509Certificate } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { BundleSet } from '@tessera/spiffe/bundle';
import { ConfigError } from '@tessera/spiffe/errors';
import type { X509Svid } from '@tessera/spiffe/svid';

/**
 * Replaces `path` atomically with `data` and mode `mode`: writes a temporary file next to it (created with
 * mode 0600 so a key is never readable by others, even briefly), fsyncs it, sets the mode, renames it over
 * `path` and fsyncs the directory. Readers see the old content or the new one, never a mix.
 *
 * @param path - Target file.
 * @param data - New content.
 * @param mode - Final permission bits (e.g. 0o644).
 * @example
 * ```ts
 * await writeFileAtomic('/certs/svid.pem', pem, 0o644);
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.chmod(mode);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await dh.close();
  }
}

function pem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString()).join('');
}

/** The three PEM files of an X.509 context, as spiffe-helper lays them out. */
export interface X509Files {
  /** Certificate chain: leaf first, then intermediates (leaf only with `addIntermediatesToBundle`). */
  readonly certificates: string;
  /** PKCS#8 private key PEM (secret). */
  readonly privateKey: string;
  /** CA certificates: the SVID's trust domain, then intermediates and federated CAs as configured. */
  readonly bundle: string;
}

/** Options of {@link renderX509Files}. */
export interface RenderX509Options {
  /** Move the SVID's intermediates from the certificate file to the end of the bundle file. */
  readonly addIntermediatesToBundle: boolean;
  /** Append every other trust domain's CAs to the bundle file. */
  readonly includeFederatedDomains: boolean;
}

/**
 * Chooses the SVID to write: the one whose hint is `hint`, or the first one when `hint` is empty.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when no SVID carries the hint.
 * @example
 * ```ts
 * const svid = pickSvid(ctx.svids, 'internal');
 * ```
 */
export function pickSvid<T extends { readonly hint: string }>(svids: readonly T[], hint: string): T {
  const svid = hint === '' ? svids[0] : svids.find((s) => s.hint === hint);
  if (svid === undefined) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `helper: no SVID with hint ${JSON.stringify(hint)} among ${svids.length} received`,
    );
  }
  return svid;
}

/**
 * Renders an SVID and the bundles it came with into the contents of the certificate, key and bundle files.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the bundle set has no bundle for the SVID's trust domain.
 * @example
 * ```ts
 * const files = renderX509Files(svid, ctx.bundles, { addIntermediatesToBundle: false, includeFederatedDomains: true });
 * ```
 */
export function renderX509Files(svid: X509Svid, bundles: BundleSet, options: RenderX509Options): X509Files {
  const td = svid.id.trustDomain;
  const own = bundles.getX509Bundle(td);
  if (own === undefined) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `helper: no X.509 bundle for trust domain ${JSON.stringify(td.name)}`,
    );
  }
  let chain = [...svid.certificates];
  const caCerts = [...own.x509Authorities()];
  if (options.addIntermediatesToBundle) {
    caCerts.push(...chain.slice(1));
    chain = chain.slice(0, 1);
  }
  if (options.includeFederatedDomains) {
    for (const b of bundles.x509Bundles()) {
      if (!b.trustDomain.equals(td)) caCerts.push(...b.x509Authorities());
    }
  }
  const { privateKey } = svid.marshal();
  return { certificates: pem(chain), privateKey, bundle: pem(caCerts) };
}

/**
 * Renders JWT bundles as spiffe-helper's JWT bundle file: a JSON object mapping each trust domain name to
 * the base64 of its JWKS document.
 *
 * @example
 * ```ts
 * await writeFileAtomic(file, renderJwtBundles(set), 0o600);
 * ```
 */
export function renderJwtBundles(bundles: BundleSet): string {
  const out: Record<string, string> = {};
  for (const b of bundles.jwtBundles()) {
    out[b.trustDomain.name] = Buffer.from(b.marshal()).toString('base64');
  }
  return JSON.stringify(out);
}
