/**
 * azure_msi: Azure managed identity access tokens (Microsoft Entra ID). The token's `tid` selects a configured
 * tenant; its issuer must be that tenant's (`https://sts.windows.net/<tenantID>/` unless overridden), its
 * audience the tenant's `audience` (else the attestor's, else the trust domain ID) and, when the tenant names a
 * `principalID`, its `oid` must be that principal.
 *
 * Attributes: tenant.id (`tid`) and principal.id (`oid`).
 *
 * @module
 */
import type { IssuerKeys } from '../jwks.js';
import { verifyToken } from '../token.js';
import { type Attestor, ServerlessDenial } from '../types.js';
import {
  type AttestorContext,
  type AttestorFactory,
  ConfigReader,
  claimString,
  locationOf,
  readKeySource,
} from './attestor.js';

const TYPE = 'azure_msi';
const ATTRIBUTES = new Set(['tenant.id', 'principal.id']);

/** The default issuer of a tenant's v1 access tokens. */
export function azureIssuer(tenantId: string): string {
  return `https://sts.windows.net/${tenantId}/`;
}

interface Tenant {
  readonly tenantId: string;
  readonly principalId: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  readonly keys: IssuerKeys;
}

function decodePayload(token: string): Record<string, unknown> | undefined {
  const seg = token.split('.')[1];
  if (seg === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The azure_msi attestor factory. */
export const azureMsiAttestor: AttestorFactory = {
  type: TYPE,
  hasAttribute: (name) => ATTRIBUTES.has(name),
  create(config: unknown, ctx: AttestorContext): Attestor | undefined {
    const r = new ConfigReader(config, ctx);
    const ks = readKeySource(r);
    const rawTenants = r.list('tenants');
    r.finish();
    if (rawTenants === undefined) r.error('tenants', 'is required');
    if (ks.issuer !== undefined) r.error('issuer', 'is set per tenant (tenants[].issuer)');
    const tenants = new Map<string, Tenant>();
    (rawTenants ?? []).forEach((raw, i) => {
      const tr = new ConfigReader(raw, ctx, `${ctx.path}.tenants[${i}]`);
      const tenantId = tr.string('tenantID');
      const principalId = tr.string('principalID');
      const audience = tr.string('audience');
      const issuer = tr.string('issuer', { url: true });
      tr.finish();
      if (tenantId === undefined) {
        tr.error('tenantID', 'is required');
        return;
      }
      if (tenants.has(tenantId)) {
        tr.error('tenantID', `${JSON.stringify(tenantId)} is listed twice`);
        return;
      }
      const iss = issuer ?? azureIssuer(tenantId);
      tenants.set(tenantId, {
        tenantId,
        principalId,
        issuer: iss,
        audience: audience ?? ks.audience ?? ctx.trustDomain.idString(),
        keys: ctx.jwks.keys(locationOf(iss, ks)),
      });
    });
    if (r.failed) return undefined;
    return {
      type: TYPE,
      async attest(evidence) {
        // The tenant is chosen from the unverified tid; everything is then verified against that tenant only.
        const tid = claimString(decodePayload(evidence)?.tid);
        const tenant = tid === undefined ? undefined : tenants.get(tid);
        if (tenant === undefined) {
          if (tid === undefined) {
            throw new ServerlessDenial('attestation_failed', `${TYPE}: token has no tenant ID (tid)`);
          }
          throw new ServerlessDenial(
            'policy_denied',
            `${TYPE}: tenant.id ${JSON.stringify(tid)} is not a configured tenant`,
          );
        }
        const t = await verifyToken(evidence, {
          type: TYPE,
          issuer: tenant.issuer,
          audience: tenant.audience,
          keys: tenant.keys,
          now: ctx.clock.now(),
        });
        const oid = claimString(t.claims.oid);
        if (claimString(t.claims.tid) !== tenant.tenantId || oid === undefined) {
          throw new ServerlessDenial('attestation_failed', `${TYPE}: token has no principal ID (oid)`);
        }
        if (tenant.principalId !== undefined && oid !== tenant.principalId) {
          throw new ServerlessDenial(
            'policy_denied',
            `${TYPE}: principal.id ${JSON.stringify(oid)} is not the principalID of tenant ${JSON.stringify(tenant.tenantId)}`,
          );
        }
        const attrs = new Map([
          ['tenant.id', tenant.tenantId],
          ['principal.id', oid],
        ]);
        return { attributes: attrs, replayKeys: t.replayKeys, expiresAt: t.expiresAt };
      },
    };
  },
};
