/**
 * Federation relationships declared in the configuration file (`federation.federates_with`).
 *
 * @module
 */
import type { ServerConfig } from '../config/load.js';
import type { FederationRelationship } from '../datastore/types.js';

/**
 * The relationships of `federation.federates_with`, in the datastore's record shape.
 *
 * @example
 * ```ts
 * createFederationPoller({ ..., staticRelationships: relationshipsFromConfig(config.federation) });
 * ```
 */
export function relationshipsFromConfig(federation: ServerConfig['federation']): FederationRelationship[] {
  const out: FederationRelationship[] = [];
  for (const [trustDomain, f] of federation?.federatesWith ?? []) {
    const p = f.bundleEndpointProfile;
    out.push({
      trustDomain,
      bundleEndpointUrl: f.bundleEndpointUrl.toString(),
      profile: p.type,
      endpointSpiffeId: p.type === 'https_spiffe' ? p.config.endpointSpiffeId.toString() : undefined,
    });
  }
  return out;
}
