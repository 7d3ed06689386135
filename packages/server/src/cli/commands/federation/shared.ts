/** Flags shared by the `federation` commands: a relationship built from flags. @module */
import { FederationRelationship, FederationRelationshipMask } from '@tessera/common/api';
import { CliUsageError, type FlagSpec } from '../../args.js';
import type { CommandContext } from '../../context.js';
import { parseEnumValue, parseIdValue, parseTrustDomainValue, requireFlag } from '../../values.js';
import { BUNDLE_FORMATS, readBundle, readStdin } from '../bundle/shared.js';

/** `--id TD`: the trust domain of the relationship a command acts on (`federation delete`, `refresh`). */
export const RELATIONSHIP_ID_FLAG: FlagSpec = {
  name: 'id',
  aliases: ['trust-domain', 'trustDomain'],
  kind: 'string',
  description: 'trust domain of the relationship',
  valueName: 'TD',
};

/** Flags describing a federation relationship. */
export const RELATIONSHIP_FLAGS: readonly FlagSpec[] = [
  {
    name: 'trust-domain',
    aliases: ['trustDomain'],
    kind: 'string',
    description: 'federated trust domain',
    valueName: 'TD',
  },
  {
    name: 'bundle-endpoint-url',
    aliases: ['bundleEndpointURL'],
    kind: 'string',
    description: "HTTPS URL of the trust domain's bundle endpoint",
    valueName: 'URL',
  },
  {
    name: 'bundle-endpoint-profile',
    aliases: ['bundleEndpointProfile'],
    kind: 'string',
    description: 'https_web or https_spiffe',
    valueName: 'PROFILE',
  },
  {
    name: 'endpoint-spiffe-id',
    aliases: ['endpointSpiffeID'],
    kind: 'string',
    description: 'SPIFFE ID of the bundle endpoint (https_spiffe)',
    valueName: 'ID',
  },
  {
    name: 'trust-domain-bundle-path',
    aliases: ['trustDomainBundlePath'],
    kind: 'string',
    description: 'initial bundle of the trust domain (https_spiffe needs it)',
    valueName: 'FILE',
  },
  {
    name: 'trust-domain-bundle-format',
    aliases: ['trustDomainBundleFormat'],
    kind: 'string',
    description: 'pem (default) or spiffe',
    valueName: 'FORMAT',
  },
];

/** The relationship built from flags and the mask of the fields given. */
export async function relationshipFromFlags(
  ctx: CommandContext,
  stdin: () => Promise<Buffer> = readStdin,
): Promise<{ relationship: FederationRelationship; mask: FederationRelationshipMask }> {
  const f = ctx.flags;
  const trustDomain = parseTrustDomainValue(ctx.name, 'trust-domain', requireFlag(ctx, 'trust-domain'));
  const rel: Partial<FederationRelationship> = { trustDomain };
  const mask: Partial<FederationRelationshipMask> = {};
  const url = f.strings.get('bundle-endpoint-url');
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (parsed?.protocol !== 'https:') {
      throw new CliUsageError(
        `${ctx.name}: invalid --bundle-endpoint-url ${JSON.stringify(url)}: must be an https:// URL`,
      );
    }
    rel.bundleEndpointUrl = url;
    mask.bundleEndpointUrl = true;
  }
  const profileText = f.strings.get('bundle-endpoint-profile');
  const endpointId = f.strings.get('endpoint-spiffe-id');
  if (profileText !== undefined) {
    const profile = parseEnumValue(ctx.name, 'bundle-endpoint-profile', profileText, [
      'https_web',
      'https_spiffe',
    ] as const);
    if (profile === 'https_spiffe') {
      if (endpointId === undefined)
        throw new CliUsageError(`${ctx.name}: https_spiffe needs --endpoint-spiffe-id`);
      const id = parseIdValue(ctx.name, 'endpoint-spiffe-id', endpointId);
      rel.httpsSpiffe = { endpointSpiffeId: `spiffe://${id.trustDomain}${id.path}` };
    } else {
      if (endpointId !== undefined)
        throw new CliUsageError(`${ctx.name}: --endpoint-spiffe-id is only used with https_spiffe`);
      rel.httpsWeb = {};
    }
    mask.bundleEndpointProfile = true;
  } else if (endpointId !== undefined) {
    throw new CliUsageError(`${ctx.name}: --endpoint-spiffe-id needs --bundle-endpoint-profile https_spiffe`);
  }
  const bundlePath = f.strings.get('trust-domain-bundle-path');
  const formatText = f.strings.get('trust-domain-bundle-format');
  if (bundlePath !== undefined) {
    const format = parseEnumValue(
      ctx.name,
      'trust-domain-bundle-format',
      formatText ?? 'pem',
      BUNDLE_FORMATS,
    );
    rel.trustDomainBundle = await readBundle(
      ctx,
      'trust-domain-bundle-path',
      bundlePath,
      trustDomain,
      format,
      stdin,
    );
    mask.trustDomainBundle = true;
  } else if (formatText !== undefined) {
    throw new CliUsageError(`${ctx.name}: --trust-domain-bundle-format needs --trust-domain-bundle-path`);
  }
  return {
    relationship: FederationRelationship.fromPartial(rel),
    mask: FederationRelationshipMask.fromPartial(mask),
  };
}
