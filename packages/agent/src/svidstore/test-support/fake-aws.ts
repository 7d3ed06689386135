/**
 * A local AWS Secrets Manager endpoint for tests: HTTPS, the AWS JSON 1.1 protocol (`POST /`,
 * `X-Amz-Target: secretsmanager.<Operation>`, `application/x-amz-json-1.1`), SigV4 signatures verified against
 * static test credentials, and the operations the SVIDStore uses (DescribeSecret, CreateSecret,
 * PutSecretValue, RestoreSecret, DeleteSecret, GetSecretValue) with the service's error shapes.
 *
 * @module
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One secret held by the fake. */
export interface FakeAwsSecret {
  readonly arn: string;
  readonly name: string;
  tags: { Key: string; Value: string }[];
  kmsKeyId: string | undefined;
  /** Every SecretBinary written, oldest first. */
  versions: Buffer[];
  deletedDate: number | undefined;
  recoveryWindowDays: number | undefined;
}

/** Options of {@link FakeAwsSecretsManager.start}. */
export interface FakeAwsOptions {
  readonly certPem: string;
  readonly keyPem: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

const ACCOUNT = '123456789012';

/** The fake endpoint; see the module comment. */
export class FakeAwsSecretsManager {
  readonly secrets = new Map<string, FakeAwsSecret>();
  /** Operations received, in order (for assertions). */
  readonly calls: string[] = [];
  /** Requests refused for a bad signature. */
  badSignatures = 0;
  /** When set, the next requests of this operation fail with a 500 (`failNext` counts them down). */
  failNext: { op: string; count: number } | undefined;
  readonly #server: Server;
  readonly #opts: FakeAwsOptions;

  private constructor(server: Server, opts: FakeAwsOptions) {
    this.#server = server;
    this.#opts = opts;
  }

  /** Starts the endpoint on 127.0.0.1 and a free port. */
  static async start(opts: FakeAwsOptions): Promise<FakeAwsSecretsManager> {
    let fake: FakeAwsSecretsManager | undefined;
    const server = createServer({ cert: opts.certPem, key: opts.keyPem }, (req, res) => {
      void (fake as FakeAwsSecretsManager).#handle(req, res);
    });
    fake = new FakeAwsSecretsManager(server, opts);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return fake;
  }

  /** `https://localhost:<port>` */
  get url(): URL {
    return new URL(`https://localhost:${(this.#server.address() as AddressInfo).port}`);
  }

  /** Adds a secret as another party would (tags as given). */
  seed(name: string, tags: { Key: string; Value: string }[], value: Buffer): FakeAwsSecret {
    const s: FakeAwsSecret = {
      arn: `arn:aws:secretsmanager:${this.#opts.region}:${ACCOUNT}:secret:${name}-${randomBytes(3).toString('hex')}`,
      name,
      tags,
      kmsKeyId: undefined,
      versions: [value],
      deletedDate: undefined,
      recoveryWindowDays: undefined,
    };
    this.secrets.set(name, s);
    return s;
  }

  /** The secret named or with this ARN. */
  find(id: string): FakeAwsSecret | undefined {
    return this.secrets.get(id) ?? [...this.secrets.values()].find((s) => s.arn === id);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const fail = (status: number, type: string, message: string) => {
      res
        .writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type })
        .end(JSON.stringify({ __type: type, message }));
    };
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.method !== 'POST' || req.url !== '/' || !target.startsWith('secretsmanager.')) {
      return fail(400, 'UnknownOperationException', 'unknown operation');
    }
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
      return fail(400, 'SerializationException', 'bad content type');
    }
    if (!this.#verifySignature(req, body)) {
      this.badSignatures++;
      return fail(403, 'InvalidSignatureException', 'the request signature does not match');
    }
    const op = target.slice('secretsmanager.'.length);
    this.calls.push(op);
    if (this.failNext !== undefined && this.failNext.op === op && this.failNext.count > 0) {
      this.failNext.count--;
      return fail(500, 'InternalServiceError', 'injected failure');
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail(400, 'SerializationException', 'bad json');
    }
    const ok = (out: unknown) => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(out));
    };
    const secret = typeof input.SecretId === 'string' ? this.find(input.SecretId) : undefined;
    const notFound = () =>
      fail(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    switch (op) {
      case 'DescribeSecret':
        if (secret === undefined) return notFound();
        return ok({
          ARN: secret.arn,
          Name: secret.name,
          Tags: secret.tags,
          ...(secret.kmsKeyId === undefined ? {} : { KmsKeyId: secret.kmsKeyId }),
          ...(secret.deletedDate === undefined ? {} : { DeletedDate: secret.deletedDate }),
        });
      case 'CreateSecret': {
        const name = input.Name;
        if (typeof name !== 'string') return fail(400, 'InvalidParameterException', 'Name is required');
        if (this.secrets.has(name)) return fail(400, 'ResourceExistsException', 'the secret already exists');
        if (typeof input.SecretBinary !== 'string')
          return fail(400, 'InvalidParameterException', 'SecretBinary is required');
        const s = this.seed(
          name,
          (input.Tags as { Key: string; Value: string }[] | undefined) ?? [],
          Buffer.from(input.SecretBinary, 'base64'),
        );
        s.kmsKeyId = typeof input.KmsKeyId === 'string' ? input.KmsKeyId : undefined;
        return ok({ ARN: s.arn, Name: s.name, VersionId: randomBytes(8).toString('hex') });
      }
      case 'PutSecretValue':
        if (secret === undefined) return notFound();
        if (secret.deletedDate !== undefined)
          return fail(400, 'InvalidRequestException', 'the secret is marked for deletion');
        if (typeof input.SecretBinary !== 'string')
          return fail(400, 'InvalidParameterException', 'SecretBinary is required');
        secret.versions.push(Buffer.from(input.SecretBinary, 'base64'));
        return ok({ ARN: secret.arn, Name: secret.name, VersionId: randomBytes(8).toString('hex') });
      case 'RestoreSecret':
        if (secret === undefined) return notFound();
        secret.deletedDate = undefined;
        return ok({ ARN: secret.arn, Name: secret.name });
      case 'DeleteSecret':
        if (secret === undefined) return notFound();
        if (secret.deletedDate !== undefined)
          return fail(400, 'InvalidRequestException', 'already scheduled for deletion');
        secret.deletedDate = Math.floor(Date.now() / 1000);
        secret.recoveryWindowDays =
          typeof input.RecoveryWindowInDays === 'number' ? input.RecoveryWindowInDays : 30;
        return ok({ ARN: secret.arn, Name: secret.name, DeletionDate: secret.deletedDate });
      case 'GetSecretValue':
        if (secret === undefined || secret.deletedDate !== undefined) return notFound();
        return ok({
          ARN: secret.arn,
          Name: secret.name,
          SecretBinary: secret.versions.at(-1)?.toString('base64'),
        });
      default:
        return fail(400, 'UnknownOperationException', `unknown operation ${op}`);
    }
  }

  /** Verifies the SigV4 `Authorization` header over the canonical request. */
  #verifySignature(req: IncomingMessage, body: Buffer): boolean {
    const auth = String(req.headers.authorization ?? '');
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    if (m === null) return false;
    const [, akid, date, region, service, signedHeaders, signature] = m as unknown as string[];
    if (akid !== this.#opts.accessKeyId || region !== this.#opts.region || service !== 'secretsmanager')
      return false;
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    if (!amzDate.startsWith(date as string)) return false;
    const names = (signedHeaders as string).split(';');
    if (!names.includes('host') || !names.includes('x-amz-date')) return false;
    const canonicalHeaders = names
      .map((n) => {
        const v = req.headers[n];
        const value = Array.isArray(v) ? v.join(',') : String(v ?? '');
        return `${n}:${value.trim().replace(/\s+/g, ' ')}\n`;
      })
      .join('');
    const payloadHash = createHash('sha256').update(body).digest('hex');
    const claimed = req.headers['x-amz-content-sha256'];
    if (claimed !== undefined && claimed !== payloadHash) return false;
    const canonical = ['POST', '/', '', canonicalHeaders, signedHeaders, payloadHash].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = [
      'AWS4-HMAC-SHA256',
      amzDate,
      scope,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
    let key = hmac(`AWS4${this.#opts.secretAccessKey}`, date as string);
    key = hmac(key, region as string);
    key = hmac(key, service as string);
    key = hmac(key, 'aws4_request');
    return createHmac('sha256', key).update(toSign).digest('hex') === signature;
  }
}
