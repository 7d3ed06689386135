/**
 * The `aws_secretsmanager` SVIDStore, on the official AWS SDK v3 client (loaded only when this store is
 * configured). As SPIRE's plugin: the secret is found by `aws_secretsmanager:arn:<arn>` or
 * `aws_secretsmanager:secretname:<name>`, created (with `aws_secretsmanager:kmskeyid:<id>` when given) and
 * tagged `spire-svid: true`, or updated with PutSecretValue (restored first when scheduled for deletion); the
 * document goes in SecretBinary. A secret without the tag is never written or deleted. Deletion schedules
 * the secret for deletion with a 7-day recovery window.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import type { SecretsManagerClient, Tag } from '@aws-sdk/client-secrets-manager';
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

/** Configuration of the `aws_secretsmanager` store (`svid_stores.aws_secretsmanager`). */
export interface AwsSvidStoreConfig {
  /** AWS region of the secrets. */
  readonly region: string;
  /** Endpoint override (private endpoints, tests); default the SDK's regional endpoint. */
  readonly endpoint?: URL;
  /** PEM CA certificates trusted for the endpoint instead of the system roots. */
  readonly caFile?: string;
  /** Static credentials (tests); default the SDK's credential provider chain (env, profile, IMDS, …). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Per-request timeout. Default 30 s. */
  readonly requestTimeoutMs?: number;
}

/** Tag SPIRE puts on the secrets it creates; Tessera uses the same so either can take over the other's secrets. */
export const AWS_OWNER_TAG = { key: 'spire-svid', value: 'true' } as const;
const RECOVERY_WINDOW_DAYS = 7;

type Sdk = typeof import('@aws-sdk/client-secrets-manager');

interface Target {
  readonly id: string;
  readonly name: string | undefined;
  readonly kmsKeyId: string | undefined;
}

function targetOf(selectors: readonly StoreSelector[]): Target {
  const md = parseStoreSelectors('aws_secretsmanager', selectors, ['secretname', 'arn', 'kmskeyid']);
  const name = metadataValue(md, 'secretname');
  const arn = metadataValue(md, 'arn');
  const id = arn ?? name;
  if (id === undefined) {
    throw new SvidStoreError(
      'ERR_SVIDSTORE_INVALID',
      'svidstore: aws_secretsmanager needs an "aws_secretsmanager:secretname:<name>" or "aws_secretsmanager:arn:<arn>" selector',
    );
  }
  if (arn !== undefined && !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/.test(arn)) {
    throw new SvidStoreError(
      'ERR_SVIDSTORE_INVALID',
      `svidstore: "${arn}" is not a Secrets Manager secret ARN`,
    );
  }
  if (name !== undefined && !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) {
    throw new SvidStoreError('ERR_SVIDSTORE_INVALID', `svidstore: "${name}" is not a valid secret name`);
  }
  return { id, name, kmsKeyId: metadataValue(md, 'kmskeyid') };
}

function isOwned(tags: readonly Tag[] | undefined): boolean {
  return (tags ?? []).some((t) => t.Key === AWS_OWNER_TAG.key && t.Value === AWS_OWNER_TAG.value);
}

const errName = (err: unknown): string | undefined => (err as { name?: unknown }).name as string | undefined;

function failed(op: string, id: string, err: unknown): SvidStoreError {
  const name = errName(err);
  return new SvidStoreError(
    'ERR_SVIDSTORE_FAILED',
    `svidstore: aws_secretsmanager ${op} of "${id}" failed: ${name === undefined ? '' : `${name}: `}${errorMessage(err)}`,
    { cause: err },
  );
}

/**
 * Creates the `aws_secretsmanager` store. The SDK is imported on first use.
 *
 * @example
 * ```ts
 * const store = createAwsSvidStore({ region: 'us-east-1' });
 * await store.put(secret, [{ type: 'aws_secretsmanager', value: 'secretname:db-svid' }]);
 * ```
 */
export function createAwsSvidStore(config: AwsSvidStoreConfig): SvidStore {
  if (config.region === '') throw new TypeError('svidstore: aws_secretsmanager needs a region');
  let clientP: Promise<{ sdk: Sdk; client: SecretsManagerClient }> | undefined;
  const client = () => {
    clientP ??= (async () => {
      const sdk = await import('@aws-sdk/client-secrets-manager');
      const ca = config.caFile === undefined ? undefined : await readFile(config.caFile, 'utf8');
      const c = new sdk.SecretsManagerClient({
        region: config.region,
        ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint.toString() }),
        ...(config.credentials === undefined ? {} : { credentials: { ...config.credentials } }),
        requestHandler: {
          requestTimeout: config.requestTimeoutMs ?? 30_000,
          ...(ca === undefined ? {} : { httpsAgent: new Agent({ ca, keepAlive: true }) }),
        },
        maxAttempts: 1, // the SVIDStore service retries with its own backoff
      });
      return { sdk, client: c };
    })();
    clientP.catch(() => {
      clientP = undefined;
    });
    return clientP;
  };
  /** DescribeSecret; undefined when the secret does not exist. */
  const describe = async (t: Target) => {
    const { sdk, client: c } = await client();
    try {
      return await c.send(new sdk.DescribeSecretCommand({ SecretId: t.id }));
    } catch (err) {
      if (errName(err) === 'ResourceNotFoundException') return undefined;
      throw failed('DescribeSecret', t.id, err);
    }
  };
  const notOwned = (t: Target) =>
    new SvidStoreError(
      'ERR_SVIDSTORE_NOT_OWNED',
      `svidstore: secret "${t.id}" does not carry the "${AWS_OWNER_TAG.key}: ${AWS_OWNER_TAG.value}" tag; refusing to touch it`,
    );
  return {
    name: 'aws_secretsmanager',
    validate(selectors) {
      targetOf(selectors);
    },
    async put(secret: StoredSvid, selectors) {
      const t = targetOf(selectors);
      const { sdk, client: c } = await client();
      const body = Buffer.from(marshalStoredSvid(secret));
      const desc = await describe(t);
      if (desc === undefined) {
        if (t.name === undefined) {
          throw new SvidStoreError(
            'ERR_SVIDSTORE_INVALID',
            `svidstore: secret "${t.id}" does not exist and creating one needs an "aws_secretsmanager:secretname:<name>" selector`,
          );
        }
        try {
          await c.send(
            new sdk.CreateSecretCommand({
              Name: t.name,
              SecretBinary: body,
              Tags: [{ Key: AWS_OWNER_TAG.key, Value: AWS_OWNER_TAG.value }],
              ...(t.kmsKeyId === undefined ? {} : { KmsKeyId: t.kmsKeyId }),
            }),
          );
        } catch (err) {
          throw failed('CreateSecret', t.id, err);
        }
        return;
      }
      if (!isOwned(desc.Tags)) throw notOwned(t);
      const arn = desc.ARN ?? t.id;
      if (desc.DeletedDate !== undefined) {
        try {
          await c.send(new sdk.RestoreSecretCommand({ SecretId: arn }));
        } catch (err) {
          throw failed('RestoreSecret', t.id, err);
        }
      }
      try {
        await c.send(new sdk.PutSecretValueCommand({ SecretId: arn, SecretBinary: body }));
      } catch (err) {
        throw failed('PutSecretValue', t.id, err);
      }
    },
    async delete(selectors) {
      const t = targetOf(selectors);
      const { sdk, client: c } = await client();
      const desc = await describe(t);
      if (desc === undefined) return;
      if (!isOwned(desc.Tags)) throw notOwned(t);
      if (desc.DeletedDate !== undefined) return; // already scheduled for deletion
      try {
        await c.send(
          new sdk.DeleteSecretCommand({
            SecretId: desc.ARN ?? t.id,
            RecoveryWindowInDays: RECOVERY_WINDOW_DAYS,
          }),
        );
      } catch (err) {
        if (errName(err) === 'ResourceNotFoundException') return;
        throw failed('DeleteSecret', t.id, err);
      }
    },
    async close() {
      const p = clientP;
      clientP = undefined;
      if (p !== undefined) (await p.catch(() => undefined))?.client.destroy();
    },
  };
}
