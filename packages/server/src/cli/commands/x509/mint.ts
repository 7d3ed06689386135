/** `tessera-server x509 mint`: mints an X509-SVID for any SPIFFE ID of the trust domain (admin). @module */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GetBundleRequest, MintX509SVIDRequest } from '@tessera/common/api';
import { buildCsr, derToPem, generateKey, pkcs8Pem } from '@tessera/common/x509';
import { CliUsageError } from '../../args.js';
import type { Command, CommandContext } from '../../context.js';
import { idText, noPositionals, parseIdValue, parseTtlValue, requireFlag } from '../../values.js';
import { bundleToPem } from '../bundle/shared.js';

const DNS_NAME =
  /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** What `x509 mint` asks for (validated, nothing sent yet). */
export interface MintX509Plan {
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  readonly ttl: number;
  readonly writeDir: string | undefined;
}

/** Validates the command line of `x509 mint`. */
export function mintX509Plan(ctx: CommandContext): MintX509Plan {
  noPositionals(ctx);
  const id = parseIdValue(ctx.name, 'spiffe-id', requireFlag(ctx, 'spiffe-id'));
  const ttlText = ctx.flags.strings.get('ttl');
  const ttl = ttlText === undefined ? 0 : parseTtlValue(ctx.name, 'ttl', ttlText);
  const dnsNames = ctx.flags.lists.get('dns') ?? [];
  for (const d of dnsNames) {
    if (d.length > 253 || !DNS_NAME.test(d)) {
      throw new CliUsageError(`${ctx.name}: invalid --dns ${JSON.stringify(d)}: not a valid DNS name`);
    }
  }
  const write = ctx.flags.strings.get('write');
  if (write === '') throw new CliUsageError(`${ctx.name}: --write must not be empty`);
  return {
    spiffeId: idText(id),
    dnsNames,
    ttl,
    writeDir: write === undefined ? undefined : resolve(ctx.io.cwd, write),
  };
}

/** Writes a file atomically (temp file in the same directory, then rename) with the given mode. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode, flag: 'wx' });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/** The `x509 mint` command. */
export const x509Mint: Command = {
  words: ['x509', 'mint'],
  summary: 'Mints an X509-SVID (key generated locally; only the CSR is sent)',
  flags: [
    {
      name: 'spiffe-id',
      aliases: ['spiffeID'],
      kind: 'string',
      description: 'SPIFFE ID of the X509-SVID',
      valueName: 'ID',
    },
    {
      name: 'ttl',
      kind: 'string',
      description: 'lifetime (default: the server default X509-SVID TTL)',
      valueName: 'TTL',
    },
    {
      name: 'dns',
      aliases: ['dnsName'],
      kind: 'strings',
      description: 'DNS name to include',
      valueName: 'NAME',
    },
    {
      name: 'write',
      kind: 'string',
      description: 'directory to write svid.pem, key.pem (0600) and bundle.pem to',
      valueName: 'DIR',
    },
  ],
  async run(ctx) {
    const plan = mintX509Plan(ctx);
    const key = generateKey('ec-p256');
    const csr = buildCsr(key.privateKey, { uris: [plan.spiffeId], dnsNames: plan.dnsNames });
    const clients = ctx.clients();
    const res = await clients.svid.mintX509Svid(MintX509SVIDRequest.fromPartial({ csr, ttl: plan.ttl }));
    const chain = res.svid?.certChain ?? [];
    if (chain.length === 0) throw new Error('x509 mint: the server returned no certificate');
    const bundle = await clients.bundle.getBundle(GetBundleRequest.fromPartial({}));
    const svidPem = chain.map((c) => derToPem(c)).join('');
    const keyPem = pkcs8Pem(key.privateKey);
    const bundlePem = bundleToPem(bundle);
    if (plan.writeDir !== undefined) {
      await mkdir(plan.writeDir, { recursive: true, mode: 0o700 });
      const files = {
        svid: join(plan.writeDir, 'svid.pem'),
        key: join(plan.writeDir, 'key.pem'),
        bundle: join(plan.writeDir, 'bundle.pem'),
      };
      await writeFileAtomic(files.key, keyPem, 0o600);
      await writeFileAtomic(files.svid, svidPem, 0o644);
      await writeFileAtomic(files.bundle, bundlePem, 0o644);
      if (ctx.output === 'json') {
        ctx.printJson({ spiffe_id: plan.spiffeId, expires_at: res.svid?.expiresAt ?? 0n, files });
      } else {
        ctx.print(
          `X509-SVID written to ${files.svid}\nPrivate key written to ${files.key}\nRoot CAs written to ${files.bundle}`,
        );
      }
      return 0;
    }
    if (ctx.output === 'json') {
      ctx.printJson({
        spiffe_id: plan.spiffeId,
        expires_at: res.svid?.expiresAt ?? 0n,
        svid: svidPem,
        private_key: keyPem,
        bundle: bundlePem,
      });
    } else {
      ctx.io.stdout(`X509-SVID:\n${svidPem}\nPrivate key:\n${keyPem}\nRoot CAs:\n${bundlePem}`);
    }
    return 0;
  },
};
