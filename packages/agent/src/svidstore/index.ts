/**
 * SVIDStore: the agent pushes the SVIDs of `store_svid` entries into secret stores (disk, AWS Secrets Manager,
 * Google Cloud Secret Manager) for workloads that cannot reach the Workload API.
 *
 * @module
 */
import { type AwsSvidStoreConfig, createAwsSvidStore } from './aws.js';
import { createDiskSvidStore, type DiskSvidStoreConfig } from './disk.js';
import { createGcpSvidStore } from './gcp.js';
import type { SvidStore } from './store.js';

export { AWS_OWNER_TAG, type AwsSvidStoreConfig, createAwsSvidStore } from './aws.js';
export { createDiskSvidStore, type DiskSvidStoreConfig } from './disk.js';
export { createGcpSvidStore, GCP_OWNER_LABEL, type GcpSvidStoreConfig, gcpOwnerLabelValue } from './gcp.js';
export {
  type StoreSvidEntry,
  type StoreSvidSource,
  type StoreSvidState,
  type SvidStoreLogger,
  SvidStoreService,
  type SvidStoreServiceConfig,
} from './service.js';
export {
  errorMessage,
  JWT_AUDIENCE_KEY,
  marshalStoredSvid,
  metadataValue,
  parseStoreSelectors,
  type StoredSvid,
  type StoreMetadata,
  type StoreSelector,
  type SvidStore,
  SvidStoreError,
} from './store.js';

/** The `svid_stores` configuration section, typed. */
export interface SvidStoresConfig {
  readonly disk?: DiskSvidStoreConfig;
  readonly awsSecretsmanager?: Omit<AwsSvidStoreConfig, 'credentials' | 'requestTimeoutMs'>;
  readonly gcpSecretmanager?: {
    readonly projectId?: string;
    readonly endpoint?: string;
    readonly caFile?: string;
  };
}

/**
 * Builds the configured stores (none when the section is empty). Cloud SDKs are not loaded here: each store
 * imports its SDK on first use.
 *
 * @example
 * ```ts
 * const stores = createSvidStores({ disk: { directory: '/var/lib/tessera/svids' } }, 'example.org');
 * ```
 */
export function createSvidStores(config: SvidStoresConfig, trustDomain: string): SvidStore[] {
  const out: SvidStore[] = [];
  if (config.disk !== undefined) out.push(createDiskSvidStore(config.disk));
  if (config.awsSecretsmanager !== undefined) out.push(createAwsSvidStore(config.awsSecretsmanager));
  const g = config.gcpSecretmanager;
  if (g !== undefined) out.push(createGcpSvidStore({ trustDomain, ...g }));
  return out;
}
