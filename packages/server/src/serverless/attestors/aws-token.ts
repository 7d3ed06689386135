/**
 * aws_token: AWS STS outbound web identity tokens (`GetWebIdentityToken`). Every account has its own issuer URL
 * (`https://<id>.tokens.sts.global.api.aws`), so `issuer` is required. AWS claims sit under the
 * `https://sts.amazonaws.com/` namespace claim.
 *
 * Attributes: account.id (`aws_account`), org.id (`org_id`), principal (`sub`, the role ARN) and
 * principal_tags.<key>.
 *
 * @module
 */
import { verifyToken } from '../token.js';
import { type Attestor, ServerlessDenial } from '../types.js';
import {
  type AttestorContext,
  type AttestorFactory,
  ConfigReader,
  claimObject,
  claimString,
  locationOf,
  readKeySource,
} from './attestor.js';

/** The namespace claim of AWS-specific claims. */
export const AWS_CLAIMS_NAMESPACE = 'https://sts.amazonaws.com/';

const TYPE = 'aws_token';
const ATTRIBUTES = new Set(['account.id', 'org.id', 'principal']);
const TAG_PREFIX = 'principal_tags.';

/** The aws_token attestor factory. */
export const awsTokenAttestor: AttestorFactory = {
  type: TYPE,
  hasAttribute: (name) =>
    ATTRIBUTES.has(name) ||
    (name.startsWith(TAG_PREFIX) && /^[A-Za-z0-9_.:/=+@-]+$/.test(name.slice(TAG_PREFIX.length))),
  create(config: unknown, ctx: AttestorContext): Attestor | undefined {
    const r = new ConfigReader(config, ctx);
    const ks = readKeySource(r);
    const allowedAccounts = r.strings('allowedAccountIDs');
    const allowedOrgs = r.strings('allowedOrgIDs');
    r.finish();
    if (ks.issuer === undefined) r.error('issuer', "is required (the account's token issuer URL)");
    for (const a of allowedAccounts ?? []) {
      if (!/^\d{12}$/.test(a))
        r.error('allowedAccountIDs', `${JSON.stringify(a)} is not a 12-digit account ID`);
    }
    if (r.failed || ks.issuer === undefined) return undefined;
    const issuer = ks.issuer;
    const audience = ks.audience ?? ctx.trustDomain.idString();
    const keys = ctx.jwks.keys(locationOf(issuer, ks));
    return {
      type: TYPE,
      async attest(evidence) {
        const t = await verifyToken(evidence, { type: TYPE, issuer, audience, keys, now: ctx.clock.now() });
        const aws = claimObject(t.claims[AWS_CLAIMS_NAMESPACE]);
        const account = claimString(aws?.aws_account);
        if (aws === undefined || account === undefined) {
          throw new ServerlessDenial(
            'attestation_failed',
            `${TYPE}: token has no ${AWS_CLAIMS_NAMESPACE} aws_account claim`,
          );
        }
        const principal = claimString(t.claims.sub);
        if (principal === undefined)
          throw new ServerlessDenial('attestation_failed', `${TYPE}: token has no subject`);
        const attrs = new Map<string, string>([
          ['account.id', account],
          ['principal', principal],
        ]);
        const org = claimString(aws.org_id);
        if (org !== undefined) attrs.set('org.id', org);
        const tags = claimObject(aws.principal_tags);
        for (const [k, v] of Object.entries(tags ?? {})) {
          const s = claimString(v);
          if (s !== undefined) attrs.set(`${TAG_PREFIX}${k}`, s);
        }
        if (allowedAccounts !== undefined && !allowedAccounts.includes(account)) {
          throw new ServerlessDenial(
            'policy_denied',
            `${TYPE}: account.id ${JSON.stringify(account)} is not in allowedAccountIDs`,
          );
        }
        if (allowedOrgs !== undefined && (org === undefined || !allowedOrgs.includes(org))) {
          throw new ServerlessDenial(
            'policy_denied',
            `${TYPE}: org.id ${JSON.stringify(org ?? '')} is not in allowedOrgIDs`,
          );
        }
        return { attributes: attrs, replayKeys: t.replayKeys, expiresAt: t.expiresAt };
      },
    };
  },
};
