/**
 * The `gcp_secretmanager` SVIDStore, on the official `@google-cloud/secret-manager` client (gRPC; loaded only
 * when this store is configured). As SPIRE's plugin: the secret `projects/<projectid>/secrets/<name>` comes
 * from the `gcp_secretmanager:name:<name>` and `gcp_secretmanager:projectid:<p>` selectors (the project
 * defaults to `project_id` in the configuration), is created with automatic replication and the label
 * `spire-svid=<hex SHA-1 of the trust domain name>`, and every push adds a secret version. A secret without
 * that label (created by someone else, or by a deployment of another trust domain) is never written or deleted.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { protos, v1 } from '@google-cloud/secret-manager';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import {
  errorMessage,
  marshalStoredSvid,
  metadataValue,
  parseStoreSelectors,
  type StoredSvid,
  type StoreSelector,
  type SvidStore,
  SvidStoreError,
} from './store.js';

/** Configuration of the `gcp_secretmanager` store (`svid_stores.gcp_secretmanager`). */
export interface GcpSvidStoreConfig {
  /** The agent's trust domain name: the ownership label's value is derived from it, as in SPIRE. */
  readonly trustDomain: string;
  /** Project of secrets whose entries have no `projectid` selector. */
  readonly projectId?: string;
  /** `host:port` endpoint override (private endpoints, emulators, tests); default the Google endpoint. */
  readonly endpoint?: string;
  /**
   * PEM CA certificates trusted for the endpoint. With it, the channel uses exactly these roots and sends no
   * Google credentials (emulators and test endpoints); without it, Application Default Credentials are used.
   */
  readonly caFile?: string;
  /** Per-call timeout. Default 30 s. */
  readonly requestTimeoutMs?: number;
}

/** Label key SPIRE and Tessera put on the secrets they create. */
export const GCP_OWNER_LABEL = 'spire-svid';

/** The ownership label value for `trustDomain`: hex SHA-1 of its name (labels cannot hold dots), as SPIRE. */
export function gcpOwnerLabelValue(trustDomain: string): string {
  return createHash('sha1').update(trustDomain).digest('hex');
}

type Client = InstanceType<typeof v1.SecretManagerServiceClient>;

const SECRET_ID = /^[A-Za-z0-9_-]{1,255}$/;
const PROJECT_ID = /^[A-Za-z0-9][A-Za-z0-9.:-]{0,99}$/;
const GRPC_NOT_FOUND = 5;

function secretNameOf(selectors: readonly StoreSelector[], defaultProject: string | undefined) {
  const md = parseStoreSelectors('gcp_secretmanager', selectors, ['name', 'projectid']);
  const name = metadataValue(md, 'name');
  const project = metadataValue(md, 'projectid') ?? defaultProject;
  if (name === undefined) {
    throw new SvidStoreError(
      'ERR_SVIDSTORE_INVALID',
      'svidstore: gcp_secretmanager needs a "gcp_secretmanager:name:<name>" selector',
    );
  }
  if (!SECRET_ID.test(name)) {
    throw new SvidStoreError(
      'ERR_SVIDSTORE_INVALID',
      `svidstore: "${name}" is not a valid secret ID (letters, digits, "_", "-")`,
    );
  }
  if (project === undefined) {
    throw new SvidStoreError(
      'ERR_SVIDSTORE_INVALID',
      'svidstore: gcp_secretmanager needs a "gcp_secretmanager:projectid:<project>" selector (or project_id in the configuration)',
    );
  }
  if (!PROJECT_ID.test(project)) {
    throw new SvidStoreError('ERR_SVIDSTORE_INVALID', `svidstore: "${project}" is not a valid project ID`);
  }
  return { parent: `projects/${project}`, id: name, name: `projects/${project}/secrets/${name}` };
}

function failed(op: string, name: string, err: unknown): SvidStoreError {
  const code = (err as { code?: unknown }).code;
  return new SvidStoreError(
    'ERR_SVIDSTORE_FAILED',
    `svidstore: gcp_secretmanager ${op} of "${name}" failed${typeof code === 'number' ? ` (grpc code ${code})` : ''}: ${errorMessage(err)}`,
    { cause: err },
  );
}

/**
 * Creates the `gcp_secretmanager` store. The client library is imported on first use.
 *
 * @example
 * ```ts
 * const store = createGcpSvidStore({ trustDomain: 'example.org', projectId: 'my-project' });
 * await store.put(secret, [{ type: 'gcp_secretmanager', value: 'name:db-svid' }]);
 * ```
 */
export function createGcpSvidStore(config: GcpSvidStoreConfig): SvidStore {
  const owner = gcpOwnerLabelValue(config.trustDomain);
  const timeout = config.requestTimeoutMs ?? 30_000;
  let clientP: Promise<Client> | undefined;
  const client = () => {
    clientP ??= (async () => {
      const sdk = await import('@google-cloud/secret-manager');
      let endpoint: { apiEndpoint: string; port: number } | undefined;
      if (config.endpoint !== undefined) {
        const m = /^(.+):(\d{1,5})$/.exec(config.endpoint);
        if (m === null) throw new TypeError(`svidstore: gcp endpoint "${config.endpoint}" must be host:port`);
        endpoint = { apiEndpoint: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
      }
      const ca = config.caFile === undefined ? undefined : await readFile(config.caFile);
      return new sdk.v1.SecretManagerServiceClient({
        ...(endpoint ?? {}),
        // With a CA file no Google credentials are used: name the universe so the auth library does not probe
        // the GCE metadata server for it.
        ...(ca === undefined
          ? {}
          : { sslCreds: grpcCredentials.createSsl(ca), universeDomain: 'googleapis.com' }),
        ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
      });
    })();
    clientP.catch(() => {
      clientP = undefined;
    });
    return clientP;
  };
  const callOpts = { timeout, maxRetries: 0 } as const;
  /** GetSecret with the ownership check; undefined when it does not exist. */
  const getOwned = async (c: Client, name: string) => {
    let secret: protos.google.cloud.secretmanager.v1.ISecret;
    try {
      [secret] = await c.getSecret({ name }, callOpts);
    } catch (err) {
      if ((err as { code?: unknown }).code === GRPC_NOT_FOUND) return undefined;
      throw failed('GetSecret', name, err);
    }
    const labels = secret.labels ?? {};
    if (labels[GCP_OWNER_LABEL] !== owner) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_NOT_OWNED',
        `svidstore: secret "${name}" does not carry the label "${GCP_OWNER_LABEL}=${owner}" of this trust domain; refusing to touch it`,
      );
    }
    return secret;
  };
  return {
    name: 'gcp_secretmanager',
    validate(selectors) {
      secretNameOf(selectors, config.projectId);
    },
    async put(secret: StoredSvid, selectors) {
      const t = secretNameOf(selectors, config.projectId);
      const c = await client();
      const existing = await getOwned(c, t.name);
      let name = existing?.name ?? t.name;
      if (existing === undefined) {
        try {
          const [created] = await c.createSecret(
            {
              parent: t.parent,
              secretId: t.id,
              secret: { replication: { automatic: {} }, labels: { [GCP_OWNER_LABEL]: owner } },
            },
            callOpts,
          );
          name = created.name ?? t.name;
        } catch (err) {
          throw failed('CreateSecret', t.name, err);
        }
      }
      try {
        await c.addSecretVersion(
          { parent: name, payload: { data: Buffer.from(marshalStoredSvid(secret)) } },
          callOpts,
        );
      } catch (err) {
        throw failed('AddSecretVersion', t.name, err);
      }
    },
    async delete(selectors) {
      const t = secretNameOf(selectors, config.projectId);
      const c = await client();
      const existing = await getOwned(c, t.name);
      if (existing === undefined) return;
      try {
        await c.deleteSecret({ name: existing.name ?? t.name, etag: existing.etag ?? '' }, callOpts);
      } catch (err) {
        if ((err as { code?: unknown }).code === GRPC_NOT_FOUND) return;
        throw failed('DeleteSecret', t.name, err);
      }
    },
    async close() {
      const p = clientP;
      clientP = undefined;
      if (p !== undefined) await (await p.catch(() => undefined))?.close();
    },
  };
}
