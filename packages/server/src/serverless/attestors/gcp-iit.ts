/**
 * gcp_iit: Google instance identity tokens (Compute Engine `google.compute_engine.*` claims) and, with
 * `allowNonComputeTokens`, Google-signed ID tokens of Cloud Run / Cloud Functions service accounts.
 *
 * Attributes: project_id, project_number, zone, instance_id, instance_name (Compute Engine only; for other
 * tokens project_id comes from a `<sa>@<project>.iam.gserviceaccount.com` email), service_account.id (the local
 * part of the email) and service_account.email.
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

/** Google's token issuer. */
export const GOOGLE_ISSUER = 'https://accounts.google.com';

const ATTRIBUTES = new Set([
  'project_id',
  'project_number',
  'zone',
  'instance_id',
  'instance_name',
  'service_account.id',
  'service_account.email',
]);

const TYPE = 'gcp_iit';

/** The gcp_iit attestor factory. */
export const gcpIitAttestor: AttestorFactory = {
  type: TYPE,
  hasAttribute: (name) => ATTRIBUTES.has(name),
  create(config: unknown, ctx: AttestorContext): Attestor | undefined {
    const r = new ConfigReader(config, ctx);
    const ks = readKeySource(r);
    const allowNonCompute = r.boolean('allowNonComputeTokens') ?? false;
    const allowedProjects = r.strings('allowedProjectIDs');
    r.finish();
    if (r.failed) return undefined;
    const issuer = ks.issuer ?? GOOGLE_ISSUER;
    const audience = ks.audience ?? ctx.trustDomain.idString();
    const keys = ctx.jwks.keys(locationOf(issuer, ks));
    return {
      type: TYPE,
      async attest(evidence) {
        const t = await verifyToken(evidence, { type: TYPE, issuer, audience, keys, now: ctx.clock.now() });
        const c = t.claims;
        const email = claimString(c.email);
        if (email === undefined || !/^[^@\s]+@[^@\s]+$/.test(email)) {
          throw new ServerlessDenial('attestation_failed', `${TYPE}: token has no service account email`);
        }
        if (c.email_verified === false) {
          throw new ServerlessDenial(
            'attestation_failed',
            `${TYPE}: token service account email is not verified`,
          );
        }
        const attrs = new Map<string, string>();
        const at = email.indexOf('@');
        attrs.set('service_account.email', email);
        attrs.set('service_account.id', email.slice(0, at));
        const ce = claimObject(claimObject(c.google)?.compute_engine);
        if (ce === undefined) {
          if (!allowNonCompute) {
            throw new ServerlessDenial(
              'policy_denied',
              `${TYPE}: token has no google.compute_engine claims and allowNonComputeTokens is false`,
            );
          }
          const m = /^[^@]+@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/.exec(email);
          if (m?.[1] !== undefined) attrs.set('project_id', m[1]);
        } else {
          for (const name of ['project_id', 'project_number', 'zone', 'instance_id', 'instance_name']) {
            const v = claimString(ce[name]);
            if (v !== undefined) attrs.set(name, v);
          }
          if (!attrs.has('project_id')) {
            throw new ServerlessDenial(
              'attestation_failed',
              `${TYPE}: token has no google.compute_engine.project_id`,
            );
          }
        }
        if (allowedProjects !== undefined) {
          const p = attrs.get('project_id');
          if (p === undefined || !allowedProjects.includes(p)) {
            throw new ServerlessDenial(
              'policy_denied',
              `${TYPE}: project_id ${JSON.stringify(p ?? '')} is not in allowedProjectIDs`,
            );
          }
        }
        return { attributes: attrs, replayKeys: t.replayKeys, expiresAt: t.expiresAt };
      },
    };
  },
};
