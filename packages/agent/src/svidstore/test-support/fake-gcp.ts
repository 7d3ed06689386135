/**
 * A local Google Cloud Secret Manager endpoint for tests: a grpc-js server with TLS serving
 * `google.cloud.secretmanager.v1.SecretManagerService` (GetSecret, CreateSecret, AddSecretVersion,
 * DeleteSecret) with its own minimal protobuf codec written from the service's .proto field numbers, so the
 * official client library is exercised over the real wire format.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

// ---------------------------------------------------------------------------------------------------------
// Minimal protobuf wire codec (varint and length-delimited fields only, which these messages use).

type Field = { readonly no: number; readonly varint?: bigint; readonly bytes?: Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new Error('truncated varint');
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

function decode(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const no = Number(tag >> 3n);
    const wt = Number(tag & 7n);
    if (wt === 0) {
      const [v, p2] = readVarint(buf, pos);
      pos = p2;
      out.push({ no, varint: v });
    } else if (wt === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw new Error('truncated field');
      out.push({ no, bytes: buf.subarray(p2, end) });
      pos = end;
    } else if (wt === 1) {
      pos += 8;
    } else if (wt === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wt}`);
    }
  }
  return out;
}

function varint(n: bigint | number): Buffer {
  let v = BigInt(n);
  const bytes: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    bytes.push(b);
  } while (v > 0n);
  return Buffer.from(bytes);
}

function lenField(no: number, data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
}

function intField(no: number, v: number): Buffer {
  return Buffer.concat([varint(no << 3), varint(v)]);
}

const str = (fields: Field[], no: number): string =>
  fields.find((f) => f.no === no)?.bytes?.toString('utf8') ?? '';
const msg = (fields: Field[], no: number): Field[] | undefined => {
  const b = fields.find((f) => f.no === no)?.bytes;
  return b === undefined ? undefined : decode(b);
};

// ---------------------------------------------------------------------------------------------------------

/** One secret held by the fake. */
export interface FakeGcpSecret {
  readonly name: string;
  labels: Record<string, string>;
  etag: string;
  /** Payloads of every version, oldest first. */
  versions: Buffer[];
  /** Whether the create request asked for automatic replication. */
  automaticReplication: boolean;
}

function encodeSecret(s: FakeGcpSecret): Buffer {
  const parts = [lenField(1, s.name)];
  if (s.automaticReplication) parts.push(lenField(2, lenField(1, Buffer.alloc(0))));
  for (const [k, v] of Object.entries(s.labels))
    parts.push(lenField(4, Buffer.concat([lenField(1, k), lenField(2, v)])));
  parts.push(lenField(8, s.etag));
  return Buffer.concat(parts);
}

const identity = (b: Buffer) => b;

function method(name: string) {
  return {
    path: `/google.cloud.secretmanager.v1.SecretManagerService/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

const SERVICE = {
  GetSecret: method('GetSecret'),
  CreateSecret: method('CreateSecret'),
  AddSecretVersion: method('AddSecretVersion'),
  DeleteSecret: method('DeleteSecret'),
} as unknown as ServiceDefinition;

/** The fake endpoint; see the module comment. */
export class FakeGcpSecretManager {
  readonly secrets: Map<string, FakeGcpSecret>;
  /** RPCs received, in order. */
  readonly calls: string[];
  readonly #server: Server;
  readonly port: number;

  private constructor(server: Server, port: number, secrets: Map<string, FakeGcpSecret>, calls: string[]) {
    this.#server = server;
    this.port = port;
    this.secrets = secrets;
    this.calls = calls;
  }

  /** Starts the endpoint with TLS on 127.0.0.1 and a free port. */
  static async start(opts: {
    readonly certPem: string;
    readonly keyPem: string;
  }): Promise<FakeGcpSecretManager> {
    const server = new Server();
    const secrets = new Map<string, FakeGcpSecret>();
    const calls: string[] = [];
    const unary =
      (name: string, fn: (req: Field[]) => Buffer): handleUnaryCall<Buffer, Buffer> =>
      (call, cb) => {
        calls.push(name);
        try {
          cb(null, fn(decode(call.request)));
        } catch (err) {
          const e = err as { code?: number; message: string };
          cb({ code: e.code ?? status.INTERNAL, details: e.message }, null);
        }
      };
    const rpcError = (code: number, message: string) => Object.assign(new Error(message), { code });
    const impl: UntypedServiceImplementation = {
      GetSecret: unary('GetSecret', (req) => {
        const s = secrets.get(str(req, 1));
        if (s === undefined) throw rpcError(status.NOT_FOUND, `Secret [${str(req, 1)}] not found.`);
        return encodeSecret(s);
      }),
      CreateSecret: unary('CreateSecret', (req) => {
        const parent = str(req, 1);
        const id = str(req, 2);
        const secret = msg(req, 3) ?? [];
        if (!/^projects\/[^/]+$/.test(parent) || id === '')
          throw rpcError(status.INVALID_ARGUMENT, 'bad parent or id');
        const name = `${parent}/secrets/${id}`;
        if (secrets.has(name)) throw rpcError(status.ALREADY_EXISTS, `Secret [${name}] already exists.`);
        const replication = msg(secret, 2);
        const labels: Record<string, string> = {};
        for (const f of secret.filter((x) => x.no === 4)) {
          const entry = decode(f.bytes as Buffer);
          labels[str(entry, 1)] = str(entry, 2);
        }
        if (replication === undefined) throw rpcError(status.INVALID_ARGUMENT, 'replication is required');
        const s: FakeGcpSecret = {
          name,
          labels,
          etag: `"${randomBytes(6).toString('hex')}"`,
          versions: [],
          automaticReplication: replication.some((f) => f.no === 1),
        };
        secrets.set(name, s);
        return encodeSecret(s);
      }),
      AddSecretVersion: unary('AddSecretVersion', (req) => {
        const s = secrets.get(str(req, 1));
        if (s === undefined) throw rpcError(status.NOT_FOUND, `Secret [${str(req, 1)}] not found.`);
        const payload = msg(req, 2);
        const data = payload?.find((f) => f.no === 1)?.bytes;
        if (data === undefined) throw rpcError(status.INVALID_ARGUMENT, 'payload is required');
        s.versions.push(Buffer.from(data));
        return Buffer.concat([lenField(1, `${s.name}/versions/${s.versions.length}`), intField(4, 1)]);
      }),
      DeleteSecret: unary('DeleteSecret', (req) => {
        const s = secrets.get(str(req, 1));
        if (s === undefined) throw rpcError(status.NOT_FOUND, `Secret [${str(req, 1)}] not found.`);
        const etag = str(req, 2);
        if (etag !== '' && etag !== s.etag) throw rpcError(status.ABORTED, 'etag mismatch');
        secrets.delete(s.name);
        return Buffer.alloc(0);
      }),
    };
    server.addService(SERVICE, impl);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync(
        '127.0.0.1:0',
        ServerCredentials.createSsl(null, [
          { cert_chain: Buffer.from(opts.certPem), private_key: Buffer.from(opts.keyPem) },
        ]),
        (err, p) => (err === null ? res(p) : rej(err)),
      ),
    );
    return new FakeGcpSecretManager(server, port, secrets, calls);
  }

  /** `localhost:<port>` */
  get endpoint(): string {
    return `localhost:${this.port}`;
  }

  /** Adds a secret as another party would. */
  seed(name: string, labels: Record<string, string>): FakeGcpSecret {
    const s: FakeGcpSecret = {
      name,
      labels,
      etag: '"seed"',
      versions: [Buffer.from('not ours')],
      automaticReplication: true,
    };
    this.secrets.set(name, s);
    return s;
  }

  close(): Promise<void> {
    return new Promise((r) => this.#server.tryShutdown(() => r()));
  }
}
