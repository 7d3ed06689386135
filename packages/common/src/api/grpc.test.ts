import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  credentials,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  AgentService,
  type ApiLogger,
  type AttestAgentRequest,
  type AttestAgentResponse,
  anyCodec,
  decodeAny,
  Entry,
  EntryService,
  encodeAny,
  type GetEntryRequest,
  GrpcStatusError,
  invalidArgument,
  isGrpcStatusError,
  makeClient,
  SECRET_ANY,
  SECRET_TYPE_URL,
  Secret,
  SPIFFE_CERT_VALIDATOR_CONFIG_ANY,
  SyncService,
  toGrpcError,
  type WatchAuthorizedEntriesRequest,
  type WatchAuthorizedEntriesResponse,
} from './index.js';

interface LogLine {
  level: 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

function capturingLogger(): ApiLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    warn: (fields, msg) => lines.push({ level: 'warn', fields, msg }),
    error: (fields, msg) => lines.push({ level: 'error', fields, msg }),
  };
}

describe('toGrpcError', () => {
  it('sends only the message for Internal and logs the detail at error level', () => {
    const log = capturingLogger();
    const cause = new Error('SQLITE_BUSY: database is locked at /var/lib/tessera/datastore.sqlite3');
    const err = toGrpcError(log, status.INTERNAL, 'failed to create entry', cause);
    assert.equal(err.code, status.INTERNAL);
    assert.equal(err.details, 'failed to create entry');
    assert.equal(err.message, 'failed to create entry');
    assert.doesNotMatch(err.details, /SQLITE|var\/lib/);
    assert.equal(err.cause, cause);
    assert.deepEqual(log.lines, [
      { level: 'error', fields: { code: 'INTERNAL', err: cause }, msg: 'failed to create entry' },
    ]);
  });

  const hidden = [
    status.NOT_FOUND,
    status.PERMISSION_DENIED,
    status.UNAUTHENTICATED,
    status.UNKNOWN,
    status.DATA_LOSS,
  ];
  for (const code of hidden) {
    it(`keeps the inner detail out of ${status[code]} statuses`, () => {
      const log = capturingLogger();
      const err = toGrpcError(log, code, 'entry not found', new Error('no row with id "secret-id-42"'));
      assert.equal(err.details, 'entry not found');
      assert.equal(log.lines.length, 1);
    });
  }

  it('appends the validation detail for InvalidArgument and logs at warn level', () => {
    const log = capturingLogger();
    const err = toGrpcError(
      log,
      status.INVALID_ARGUMENT,
      'invalid spiffe_id',
      new Error('spiffeid: path cannot contain dot segments'),
    );
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.equal(err.details, 'invalid spiffe_id: spiffeid: path cannot contain dot segments');
    assert.equal(log.lines[0]?.level, 'warn');
  });

  it('keeps the code and details of an error built by invalidArgument', () => {
    const log = capturingLogger();
    const err = toGrpcError(
      log,
      status.INTERNAL,
      'failed to validate entry',
      invalidArgument('entries[0].ttl', 'must not be negative'),
    );
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.equal(err.details, 'invalid entries[0].ttl: must not be negative');
    assert.equal(err.field, 'entries[0].ttl');
    assert.deepEqual(log.lines[0]?.fields.field, 'entries[0].ttl');
    assert.equal(log.lines[0]?.level, 'warn');
  });

  it('builds a status without an underlying error', () => {
    const log = capturingLogger();
    const err = toGrpcError(log, status.PERMISSION_DENIED, 'caller is not an active agent');
    assert.equal(err.details, 'caller is not an active agent');
    assert.deepEqual(log.lines[0]?.fields, { code: 'PERMISSION_DENIED' });
  });

  it('rejects OK and out-of-range codes as programmer errors', () => {
    assert.throws(() => toGrpcError(capturingLogger(), status.OK, 'x'), RangeError);
    assert.throws(() => new GrpcStatusError(99 as status, 'x'), {
      name: 'RangeError',
      message: /99 is not a gRPC error status code/,
    });
  });

  it('recognizes its errors with isGrpcStatusError', () => {
    assert.equal(isGrpcStatusError(invalidArgument('csr', 'empty')), true);
    assert.equal(isGrpcStatusError(new Error('x')), false);
    assert.equal(isGrpcStatusError({ code: 3, details: 'x' }), false);
  });
});

describe('Any codecs', () => {
  const secret: Secret = {
    name: 'default',
    tlsCertificate: {
      certificateChain: { inlineString: 'pem' },
      privateKey: { inlineBytes: Buffer.from('k') },
    },
  };

  it('uses the type URLs Envoy expects', () => {
    assert.equal(SECRET_TYPE_URL, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
    assert.equal(SECRET_ANY.typeUrl, SECRET_TYPE_URL);
    assert.equal(
      SPIFFE_CERT_VALIDATOR_CONFIG_ANY.typeUrl,
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
    );
  });

  it('round-trips a secret through Any', () => {
    const any = encodeAny(SECRET_ANY, secret);
    assert.equal(any.typeUrl, SECRET_TYPE_URL);
    assert.ok(Buffer.isBuffer(any.value));
    assert.deepEqual(decodeAny(SECRET_ANY, any), Secret.fromPartial(secret));
  });

  it('accepts another type URL host for the same message name', () => {
    const any = {
      ...encodeAny(SECRET_ANY, secret),
      typeUrl: 'example.com/envoy.extensions.transport_sockets.tls.v3.Secret',
    };
    assert.deepEqual(decodeAny(SECRET_ANY, any), Secret.fromPartial(secret));
  });

  const wrong = [
    { name: 'another message type', typeUrl: SPIFFE_CERT_VALIDATOR_CONFIG_ANY.typeUrl },
    { name: 'a name without a host', typeUrl: 'envoy.extensions.transport_sockets.tls.v3.Secret' },
    { name: 'a name with a suffix', typeUrl: `${SECRET_TYPE_URL}X` },
    { name: 'an empty type URL', typeUrl: '' },
  ];
  for (const tc of wrong) {
    it(`refuses to unpack ${tc.name}`, () => {
      const any = { typeUrl: tc.typeUrl, value: Buffer.alloc(0) };
      assert.throws(() => decodeAny(SECRET_ANY, any), {
        name: 'TypeError',
        message:
          /^api: Any holds ".*", expected "type\.googleapis\.com\/envoy\.extensions\.transport_sockets\.tls\.v3\.Secret"$/,
      });
    });
  }

  it('rejects names that are not fully-qualified message names', () => {
    assert.throws(() => anyCodec('Secret', Entry), {
      name: 'TypeError',
      message: /"Secret" is not a fully-qualified/,
    });
    assert.throws(() => anyCodec('a..b', Entry), TypeError);
  });
});

describe('makeClient against a grpc-js server on a Unix socket', () => {
  let dir: string;
  let server: Server;
  let target: string;
  const log = capturingLogger();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-api-'));
    target = `unix://${join(dir, 'api.sock')}`;
    server = new Server();
    const getEntry: handleUnaryCall<GetEntryRequest, Entry> = (call, callback) => {
      if (call.request.id === '') return callback(invalidArgument('id', 'must not be empty'));
      if (call.request.id === 'boom') {
        return callback(
          toGrpcError(log, status.INTERNAL, 'failed to fetch entry', new Error('disk on fire')),
        );
      }
      if (call.request.id === 'slow') return; // never answers
      callback(null, Entry.fromPartial({ id: call.request.id, revisionNumber: 2n ** 62n }));
    };
    server.addService(EntryService, { getEntry });
    const watchAuthorizedEntries: handleServerStreamingCall<
      WatchAuthorizedEntriesRequest,
      WatchAuthorizedEntriesResponse
    > = (call) => {
      call.write({ revision: 1n });
      call.write({ revision: 2n });
      call.end();
    };
    server.addService(SyncService, { watchAuthorizedEntries });
    const attestAgent: handleBidiStreamingCall<AttestAgentRequest, AttestAgentResponse> = (call) => {
      let step = 0;
      call.on('data', (req: AttestAgentRequest) => {
        step += 1;
        if (step === 1) {
          assert.equal(req.params?.data?.type, 'test');
          call.write({ challenge: Buffer.from('c1') });
        } else {
          assert.equal(req.challengeResponse?.toString(), 'c1-answer');
          call.write({ result: { svid: undefined, reattestable: false } });
          call.end();
        }
      });
    };
    server.addService(AgentService, { attestAgent });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(target, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  });

  after(() => {
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes unary calls that resolve with decoded messages (int64 as bigint)', async () => {
    const client = makeClient(EntryService, target, credentials.createInsecure());
    try {
      const entry = await client.getEntry({ id: 'e1', outputMask: undefined });
      assert.equal(entry.id, 'e1');
      assert.equal(entry.revisionNumber, 2n ** 62n);
    } finally {
      client.close();
    }
  });

  it('surfaces InvalidArgument with the field named and Internal without detail', async () => {
    const client = makeClient(EntryService, target, credentials.createInsecure());
    try {
      await assert.rejects(client.getEntry({ id: '', outputMask: undefined }), (err: ServiceError) => {
        assert.equal(err.code, status.INVALID_ARGUMENT);
        assert.equal(err.details, 'invalid id: must not be empty');
        return true;
      });
      await assert.rejects(client.getEntry({ id: 'boom', outputMask: undefined }), (err: ServiceError) => {
        assert.equal(err.code, status.INTERNAL);
        assert.equal(err.details, 'failed to fetch entry');
        return true;
      });
      assert.equal(log.lines.at(-1)?.level, 'error');
    } finally {
      client.close();
    }
  });

  it('cancels a unary call when its signal aborts', async () => {
    const client = makeClient(EntryService, target, credentials.createInsecure());
    try {
      const ac = new AbortController();
      const p = client.getEntry({ id: 'slow', outputMask: undefined }, { signal: ac.signal });
      setImmediate(() => ac.abort());
      await assert.rejects(p, { code: status.CANCELLED });
    } finally {
      client.close();
    }
  });

  it('fails a unary call at its deadline', async () => {
    const client = makeClient(EntryService, target, credentials.createInsecure());
    try {
      await assert.rejects(
        client.getEntry({ id: 'slow', outputMask: undefined }, { deadline: Date.now() + 50 }),
        {
          code: status.DEADLINE_EXCEEDED,
        },
      );
    } finally {
      client.close();
    }
  });

  it('reads a server stream', async () => {
    const client = makeClient(SyncService, target, credentials.createInsecure());
    try {
      const revisions: bigint[] = [];
      for await (const res of client.watchAuthorizedEntries({})) revisions.push(res.revision);
      assert.deepEqual(revisions, [1n, 2n]);
    } finally {
      client.close();
    }
  });

  it('runs a bidirectional challenge/response stream', async () => {
    const client = makeClient(AgentService, target, credentials.createInsecure());
    try {
      const call = client.attestAgent();
      call.write({
        params: { data: { type: 'test', payload: Buffer.alloc(0) }, params: { csr: Buffer.alloc(0) } },
      });
      const steps: string[] = [];
      for await (const res of call) {
        if (res.challenge !== undefined) {
          steps.push(`challenge:${res.challenge.toString()}`);
          call.write({ challengeResponse: Buffer.from(`${res.challenge.toString()}-answer`) });
        } else if (res.result !== undefined) {
          steps.push('result');
          call.end();
        }
      }
      assert.deepEqual(steps, ['challenge:c1', 'result']);
    } finally {
      client.close();
    }
  });

  it('refuses an empty service definition', () => {
    assert.throws(() => makeClient({}, target, credentials.createInsecure()), {
      name: 'TypeError',
      message: /no methods/,
    });
  });
});

describe('generated code', () => {
  it('is up to date with proto/ (scripts/generate.sh --check)', () => {
    const root = fileURLToPath(new URL('../../../../', import.meta.url));
    const r = spawnSync('bash', ['scripts/generate.sh', '--check'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});
