import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type ClientDuplexStream,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  type DiscoveryRequest,
  type DiscoveryResponse,
  decodeAny,
  SECRET_ANY,
  SECRET_TYPE_URL,
  SecretDiscoveryServiceService,
  SPIFFE_CERT_VALIDATOR_CONFIG_ANY,
} from '@tessera/common/api';
import { TestCa } from '@tessera/testing';
import {
  eventually,
  expectStreamEndsAtRotation,
  type Harness,
  handOverConnection,
  rawClient,
  rawUnary,
  startHarness,
} from '../test-support/harness.js';

const WEB = 'spiffe://example.org/web';
const DB = 'spiffe://example.org/db';

type SdsClient = {
  streamSecrets(): ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  fetchSecrets(req: DiscoveryRequest, cb: (err: ServiceError | null, res?: DiscoveryResponse) => void): void;
  close(): void;
};

function request(names: string[], extra: Partial<DiscoveryRequest> = {}): DiscoveryRequest {
  return {
    versionInfo: '',
    node: undefined,
    resourceNames: names,
    typeUrl: SECRET_TYPE_URL,
    responseNonce: '',
    errorDetail: undefined,
    ...extra,
  };
}

/** A stream with a queue of received responses. */
class Stream {
  readonly responses: DiscoveryResponse[] = [];
  error: ServiceError | undefined;
  readonly call: ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  constructor(client: SdsClient) {
    this.call = client.streamSecrets();
    this.call.on('data', (r: DiscoveryResponse) => this.responses.push(r));
    this.call.on('error', (e: ServiceError) => {
      this.error = e;
    });
  }
  send(req: DiscoveryRequest): void {
    this.call.write(req);
  }
  async next(count: number): Promise<DiscoveryResponse> {
    assert.ok(await eventually(() => this.responses.length >= count), `response #${count} arrived`);
    return this.responses[count - 1]!;
  }
  /** Asserts that no response beyond `count` arrives within a short while. */
  async quiet(count: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(this.responses.length, count);
  }
}

function secrets(res: DiscoveryResponse) {
  return res.resources.map((a) => decodeAny(SECRET_ANY, a));
}

describe('Envoy SDS v3 over the peer-tracked Unix socket', () => {
  let h: Harness;
  let client: SdsClient;
  const logs: { msg: string; fields: Record<string, unknown> }[] = [];
  const capture = (fields: Record<string, unknown>, msg: string): void => {
    logs.push({ msg, fields });
  };

  before(async () => {
    h = await startHarness({ logger: { debug: capture, info: capture, warn: capture, error: capture } });
    const Ctor = makeGenericClientConstructor(SecretDiscoveryServiceService, 'SecretDiscoveryService');
    client = new Ctor(h.address, credentials.createInsecure()) as unknown as SdsClient;
    h.provider.setEntries([
      { id: 'e-web', spiffeId: WEB, selectors: [h.selfSelectors[0]!], federatesWith: ['partner.org'] },
      { id: 'e-db', spiffeId: DB, selectors: [h.selfSelectors[1]!] },
    ]);
    h.provider.setFederatedBundle('partner.org', [TestCa.create({ trustDomain: 'partner.org' }).certificate]);
  });
  after(async () => {
    client.close();
    await h.close();
  });

  it('serves "default" as the first SVID with a PEM chain and PKCS#8 key, version 1 and an 8-hex nonce', async () => {
    const s = new Stream(client);
    s.send(request(['default']));
    const res = await s.next(1);
    assert.equal(res.versionInfo, '1');
    assert.match(res.nonce, /^[0-9a-f]{8}$/);
    assert.equal(res.typeUrl, SECRET_TYPE_URL);
    const [secret] = secrets(res);
    assert.equal(secret?.name, 'default');
    const chain = secret!.tlsCertificate!.certificateChain!.inlineBytes!.toString();
    const leaf = new X509Certificate(chain);
    assert.equal(leaf.subjectAltName, `URI:${WEB}`);
    assert.deepEqual(leaf.raw, new X509Certificate(h.provider.svidOf('e-web')!.chainDer).raw);
    assert.match(
      secret!.tlsCertificate!.privateKey!.inlineBytes!.toString(),
      /^-----BEGIN PRIVATE KEY-----\n/,
    );
    s.call.end();
  });

  it('does not answer an ACK, resends on rotation with a new version and nonce, and ignores stale nonces', async () => {
    const s = new Stream(client);
    s.send(request(['default']));
    const first = await s.next(1);
    s.send(request(['default'], { versionInfo: first.versionInfo, responseNonce: first.nonce }));
    await s.quiet(1);

    h.provider.rotate();
    const second = await s.next(2);
    assert.equal(second.versionInfo, '2');
    assert.notEqual(second.nonce, first.nonce);
    assert.notDeepEqual(secrets(second)[0]!.tlsCertificate, secrets(first)[0]!.tlsCertificate);

    // A request carrying the superseded nonce is stale: ignored even though it asks for other names.
    s.send(request([DB], { versionInfo: first.versionInfo, responseNonce: first.nonce }));
    await s.quiet(2);

    // New names with the current nonce: answered at once.
    s.send(request([DB], { versionInfo: second.versionInfo, responseNonce: second.nonce }));
    const third = await s.next(3);
    assert.deepEqual(
      secrets(third).map((x) => x.name),
      [DB],
    );
    s.call.end();
  });

  it('logs a NACK and sends nothing more', async () => {
    const s = new Stream(client);
    s.send(request(['ROOTCA']));
    const first = await s.next(1);
    logs.length = 0;
    s.send(
      request(['ROOTCA'], {
        versionInfo: '0',
        responseNonce: first.nonce,
        errorDetail: { code: 3, message: 'bad secret', details: [] },
      }),
    );
    await s.quiet(1);
    assert.ok(logs.some((l) => l.msg === 'Envoy rejected the last secrets (NACK)'));
    assert.ok(
      logs.some((l) => l.msg === 'Envoy reported errors applying secrets' && l.fields.error === 'bad secret'),
    );
    s.call.end();
  });

  it('does not resend when an update leaves the requested secrets unchanged', async () => {
    const s = new Stream(client);
    s.send(request(['ROOTCA']));
    const first = await s.next(1);
    s.send(request(['ROOTCA'], { versionInfo: first.versionInfo, responseNonce: first.nonce }));
    h.provider.rotate(); // SVIDs change, the bundle does not
    await s.quiet(1);
    h.provider.rotateCa();
    const second = await s.next(2);
    assert.equal(second.versionInfo, '2');
    s.call.end();
  });

  it('serves ROOTCA and the trust domain ID as the SPIFFE validator config of the own trust domain only', async () => {
    const s = new Stream(client);
    s.send(request(['ROOTCA', 'spiffe://example.org', 'spiffe://partner.org']));
    const res = await s.next(1);
    const got = secrets(res);
    assert.deepEqual(
      got.map((x) => x.name),
      ['spiffe://example.org', 'ROOTCA', 'spiffe://partner.org'],
    );
    const expected = ['example.org', 'example.org', 'partner.org'];
    got.forEach((x, i) => {
      assert.equal(x.validationContext!.trustedCa, undefined);
      const custom = x.validationContext!.customValidatorConfig!;
      assert.equal(custom.name, 'envoy.tls.cert_validator.spiffe');
      const config = decodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, custom.typedConfig!);
      // One trust domain each: a leaf of another trust domain does not pass, even when its CA is trusted.
      assert.deepEqual(
        config.trustDomains.map((t) => t.name),
        [expected[i]],
      );
      if (i < 2) {
        const ca = new X509Certificate(config.trustDomains[0]!.trustBundle!.inlineBytes!);
        assert.equal(ca.fingerprint256, h.provider.ca.certificate.fingerprint256);
      }
    });
    s.call.end();
  });

  it('serves ROOTCA and the trust domain ID as trusted_ca when the SPIFFE validator is off', async () => {
    const s = new Stream(client);
    s.send(
      request(['ROOTCA', 'spiffe://example.org'], {
        node: {
          id: 'e',
          cluster: 'c',
          metadata: { disable_spiffe_cert_validation: true },
          userAgentName: 'envoy',
          clientFeatures: [],
        },
      }),
    );
    const got = secrets(await s.next(1));
    assert.deepEqual(
      got.map((x) => x.name),
      ['spiffe://example.org', 'ROOTCA'],
    );
    for (const x of got) {
      const ca = new X509Certificate(x.validationContext!.trustedCa!.inlineBytes!);
      assert.equal(ca.fingerprint256, h.provider.ca.certificate.fingerprint256);
      assert.equal(x.validationContext!.customValidatorConfig, undefined);
    }
    s.call.end();
  });

  it('serves ALL as the SPIFFE certificate validator config with every bundle sorted by trust domain', async () => {
    const s = new Stream(client);
    s.send(request(['ALL']));
    const [secret] = secrets(await s.next(1));
    assert.equal(secret?.name, 'ALL');
    const custom = secret!.validationContext!.customValidatorConfig!;
    assert.equal(custom.name, 'envoy.tls.cert_validator.spiffe');
    const config = decodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, custom.typedConfig!);
    assert.deepEqual(
      config.trustDomains.map((t) => t.name),
      ['example.org', 'partner.org'],
    );
    assert.match(config.trustDomains[0]!.trustBundle!.inlineBytes!.toString(), /BEGIN CERTIFICATE/);
    s.call.end();
  });

  const refusedAll: { name: string; node: DiscoveryRequest['node'] }[] = [
    {
      name: 'Envoy 1.17',
      node: {
        id: 'e',
        cluster: 'c',
        metadata: undefined,
        userAgentName: 'envoy',
        userAgentBuildVersion: {
          version: { majorNumber: 1, minorNumber: 17, patch: 0 },
          metadata: undefined,
        },
        clientFeatures: [],
      },
    },
    {
      name: 'node metadata disable_spiffe_cert_validation "True"',
      node: {
        id: 'e',
        cluster: 'c',
        metadata: { disable_spiffe_cert_validation: 'True' },
        userAgentName: 'envoy',
        clientFeatures: [],
      },
    },
  ];
  for (const tc of refusedAll) {
    it(`refuses ALL with Internal for ${tc.name}`, async () => {
      const s = new Stream(client);
      s.send(request(['ALL'], { node: tc.node }));
      assert.ok(await eventually(() => s.error !== undefined));
      assert.equal(s.error?.code, status.INTERNAL);
      assert.equal(s.error?.details, 'unable to use "SPIFFE validator" on Envoy below 1.17');
    });
  }

  it('serves ALL to Envoy 1.18', async () => {
    const s = new Stream(client);
    s.send(
      request(['ALL'], {
        node: {
          id: 'e',
          cluster: 'c',
          metadata: { disable_spiffe_cert_validation: 'nonsense' },
          userAgentName: 'envoy',
          userAgentBuildVersion: {
            version: { majorNumber: 1, minorNumber: 18, patch: 0 },
            metadata: undefined,
          },
          clientFeatures: [],
        },
      }),
    );
    assert.equal(secrets(await s.next(1))[0]?.name, 'ALL');
    s.call.end();
  });

  it('omits unknown resource names instead of failing', async () => {
    const s = new Stream(client);
    s.send(request(['default', 'spiffe://example.org/not-mine', 'nonsense', '']));
    const res = await s.next(1);
    assert.deepEqual(
      secrets(res).map((x) => x.name),
      ['default'],
    );
    s.call.end();
  });

  it('serves every bundle by trust domain ID and every SVID by SPIFFE ID for an empty name list', async () => {
    const s = new Stream(client);
    s.send(request([]));
    const res = await s.next(1);
    assert.deepEqual(
      secrets(res).map((x) => x.name),
      ['spiffe://example.org', 'spiffe://partner.org', WEB, DB],
    );
    s.call.end();
  });

  it('answers FetchSecrets with no version and no nonce, without the Workload API header', async () => {
    const res = await new Promise<DiscoveryResponse>((resolve, reject) =>
      client.fetchSecrets(request([WEB, 'ROOTCA']), (err, r) => (err ? reject(err) : resolve(r!))),
    );
    assert.equal(res.versionInfo, '');
    assert.equal(res.nonce, '');
    assert.deepEqual(
      secrets(res).map((x) => x.name),
      ['ROOTCA', WEB],
    );
  });

  it('answers a malformed request with InvalidArgument, on FetchSecrets and on StreamSecrets', async () => {
    const c = rawClient(h.address);
    try {
      // Field 4 (resource_names) declared as 100 bytes long with only 2 present.
      const garbage = Buffer.from([0x22, 0x64, 0x61, 0x62]);
      const unary = await rawUnary(
        c,
        '/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets',
        garbage,
        undefined,
      );
      assert.equal(unary.code, status.INVALID_ARGUMENT);
      assert.match(unary.details, /^malformed request: /);
      const streamed = await new Promise<{ code: number; details: string }>((resolve) => {
        const call = c.makeBidiStreamRequest(
          '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
          (b: Buffer) => b,
          (b: Buffer) => b,
        );
        call.on('data', () => {});
        call.on('error', (e: { code: number; details: string }) => resolve(e));
        call.write(garbage);
      });
      assert.equal(streamed.code, status.INVALID_ARGUMENT);
      assert.match(streamed.details, /^malformed request: /);
    } finally {
      c.close();
    }
  });

  it('answers Unavailable when the caller cannot be attested', async () => {
    h.attestFailure = new Error('gone');
    try {
      const s = new Stream(client);
      s.send(request(['default']));
      assert.ok(await eventually(() => s.error !== undefined));
      assert.equal(s.error?.code, status.UNAVAILABLE);
      assert.equal(s.error?.details, 'workload attestation failed');
      const err = await new Promise<ServiceError | null>((resolve) =>
        client.fetchSecrets(request(['default']), (e) => resolve(e)),
      );
      assert.equal(err?.code, status.UNAVAILABLE);
    } finally {
      h.attestFailure = undefined;
    }
  });

  it('closes every subscription when streams end', async () => {
    assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
  });
});

describe('SDS while an SVID of the caller is being issued', () => {
  let h: Harness;
  let client: SdsClient;
  before(async () => {
    h = await startHarness();
    const Ctor = makeGenericClientConstructor(SecretDiscoveryServiceService, 'SecretDiscoveryService');
    client = new Ctor(h.address, credentials.createInsecure()) as unknown as SdsClient;
  });
  after(async () => {
    client.close();
    await h.close();
  });

  it('StreamSecrets and FetchSecrets answer once the set is complete, so "default" is the oldest entry', async () => {
    h.provider.setEntries([
      { id: 'e-old', spiffeId: WEB, selectors: [h.selfSelectors[0]!], issued: false },
      { id: 'e-newer', spiffeId: DB, selectors: [h.selfSelectors[0]!] },
    ]);
    const s = new Stream(client);
    s.send(request(['default']));
    let fetched: DiscoveryResponse | undefined;
    client.fetchSecrets(request(['default']), (err, res) => {
      if (err === null) fetched = res;
    });
    await s.quiet(0);
    assert.equal(fetched, undefined);
    h.provider.issue('e-old');
    const [secret] = secrets(await s.next(1));
    const chain = secret!.tlsCertificate!.certificateChain!.inlineBytes!.toString();
    assert.match(new X509Certificate(chain).subjectAltName ?? '', /URI:spiffe:\/\/example\.org\/web/);
    assert.ok(await eventually(() => fetched !== undefined));
    const [unary] = secrets(fetched!);
    assert.equal(unary!.tlsCertificate!.certificateChain!.inlineBytes!.toString(), chain);
    s.call.end();
    assert.ok(await eventually(() => h.provider.openSubscriptions === 0));
  });
});

describe('SDS stream on a connection that outlives the attested process', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('ends StreamSecrets at the next update instead of sending secrets to the process that inherited the connection', async () => {
    h.provider.setEntries([{ id: 'e-web', spiffeId: WEB, selectors: [h.selfSelectors[0]!] }]);
    // Process A opens StreamSecrets for "default" over raw HTTP/2, hands its socket to a child B (fd 3) after the
    // first response and exits; B keeps the connection open but is not the process the agent attested.
    const script = `
      import http2 from 'node:http2';
      import net from 'node:net';
      import { spawn } from 'node:child_process';
      import { SecretDiscoveryServiceService as S } from '@tessera/common/api';
      const body = S.streamSecrets.requestSerialize({ versionInfo: '', node: undefined, resourceNames: ['default'],
        typeUrl: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret', responseNonce: '', errorDetail: undefined });
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      let sock;
      const session = http2.connect('http://localhost', { createConnection: () => (sock = net.connect(process.argv[1])) });
      const req = session.request({ ':method': 'POST', ':path': '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
        'content-type': 'application/grpc', te: 'trailers' });
      req.write(frame);
      req.once('data', () => {
        const b = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: ['ignore', 'ignore', 'ignore', sock] });
        process.stdout.write(String(b.pid) + '\\n', () => process.exit(0));
      });`;
    const childPid = await handOverConnection(
      ['--input-type=module', '-e', script, h.socketPath],
      fileURLToPath(new URL('.', import.meta.url)),
    );
    await expectStreamEndsAtRotation(h, childPid);
  });
});
