import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AgentService,
  AttestAgentRequest,
  AttestAgentResponse,
  BatchNewX509SVIDRequest,
  BatchNewX509SVIDResponse,
  Bundle,
  BundleService,
  DiscoveryRequest,
  DiscoveryResponse,
  Entry,
  EntryService,
  encodeAny,
  GetAuthorizedEntriesResponse,
  ListEntriesRequest,
  LocalAuthorityService,
  SECRET_ANY,
  SECRET_TYPE_URL,
  Secret,
  SecretDiscoveryServiceService,
  SelectorMatch_MatchBehavior,
  SPIFFE_CERT_VALIDATOR_CONFIG_ANY,
  SPIFFECertValidatorConfig,
  SVIDService,
  SyncService,
  TrustDomainService,
  WatchAuthorizedEntriesResponse,
} from './index.js';

// packages/common/dist/api/ -> repository root
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const PROTO = `${ROOT}proto`;

/** Encodes a text-format message with protoc from our .proto files (an independent protobuf encoder). */
function protocEncode(file: string, type: string, text: string): Buffer {
  const r = spawnSync('protoc', [`-I${PROTO}`, `--encode=${type}`, file], { input: text });
  assert.equal(r.status, 0, `protoc failed: ${r.stderr}`);
  return r.stdout;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

// --- hand-assembled protobuf bytes, from the field numbers in SPIRE's and Envoy's own .proto files -------------

function varint(n: bigint | number): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}
/** A length-delimited field (wire type 2). */
function ld(field: number, payload: Buffer | string): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([varint((field << 3) | 2), varint(p.length), p]);
}
/** A varint field (wire type 0). */
function vf(field: number, value: bigint | number | boolean): Buffer {
  return Buffer.concat([varint(field << 3), varint(typeof value === 'boolean' ? (value ? 1 : 0) : value)]);
}
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

describe('SPIRE server API messages on the wire', () => {
  const entry = Entry.fromPartial({
    id: 'e1',
    spiffeId: { trustDomain: 'example.org', path: '/web' },
    parentId: { trustDomain: 'example.org', path: '/spire/agent/join_token/t' },
    selectors: [
      { type: 'unix', value: 'uid:1000' },
      { type: 'unix', value: 'gid:0' },
    ],
    x509SvidTtl: 3600,
    federatesWith: ['other.org'],
    admin: true,
    downstream: true,
    expiresAt: 1_900_000_000n,
    dnsNames: ['web.local'],
    revisionNumber: 7n,
    storeSvid: true,
    jwtSvidTtl: 300,
    hint: 'internal',
    createdAt: 1_700_000_000n,
  });
  // spire/api/types/entry.proto: id 1, spiffe_id 2, parent_id 3, selectors 4, x509_svid_ttl 5, federates_with 6,
  // admin 7, downstream 8, expires_at 9, dns_names 10, revision_number 11, store_svid 12, jwt_svid_ttl 13,
  // hint 14, created_at 15; SPIFFEID: trust_domain 1, path 2; Selector: type 1, value 2.
  const entryBytes = cat(
    ld(1, 'e1'),
    ld(2, cat(ld(1, 'example.org'), ld(2, '/web'))),
    ld(3, cat(ld(1, 'example.org'), ld(2, '/spire/agent/join_token/t'))),
    ld(4, cat(ld(1, 'unix'), ld(2, 'uid:1000'))),
    ld(4, cat(ld(1, 'unix'), ld(2, 'gid:0'))),
    vf(5, 3600),
    ld(6, 'other.org'),
    vf(7, true),
    vf(8, true),
    vf(9, 1_900_000_000n),
    ld(10, 'web.local'),
    vf(11, 7n),
    vf(12, true),
    vf(13, 300),
    ld(14, 'internal'),
    vf(15, 1_700_000_000n),
  );
  const entryText = `id: "e1"
    spiffe_id { trust_domain: "example.org" path: "/web" }
    parent_id { trust_domain: "example.org" path: "/spire/agent/join_token/t" }
    selectors { type: "unix" value: "uid:1000" }
    selectors { type: "unix" value: "gid:0" }
    x509_svid_ttl: 3600 federates_with: "other.org" admin: true downstream: true expires_at: 1900000000
    dns_names: "web.local" revision_number: 7 store_svid: true jwt_svid_ttl: 300 hint: "internal"
    created_at: 1700000000`;

  it('encodes an Entry to the bytes SPIRE field numbers give', () => {
    assert.equal(hex(Entry.encode(entry).finish()), hex(entryBytes));
  });

  it('encodes an Entry exactly as protoc does from the same .proto', () => {
    const expected = protocEncode('spire/api/types/entry.proto', 'spire.api.types.Entry', entryText);
    assert.equal(hex(Entry.encode(entry).finish()), hex(expected));
  });

  it('decodes protoc-encoded entries back to the same values', () => {
    const text = `entries { ${entryText} } entries { id: "e2" }`;
    const bytes = protocEncode(
      'spire/api/server/entry/v1/entry.proto',
      'spire.api.server.entry.v1.GetAuthorizedEntriesResponse',
      text,
    );
    const decoded = GetAuthorizedEntriesResponse.decode(bytes);
    assert.deepEqual(decoded.entries[0], entry);
    assert.equal(decoded.entries[1]?.id, 'e2');
    assert.equal(decoded.entries[1]?.spiffeId, undefined);
  });

  const csr = Buffer.from([0x30, 0x82, 0x01, 0x00, 0xff]);
  const attestCases: {
    name: string;
    encode: () => Uint8Array;
    expected: Buffer;
    type: string;
    text: string;
  }[] = [
    {
      name: 'AttestAgentRequest params step',
      encode: () =>
        AttestAgentRequest.encode({
          params: { data: { type: 'join_token', payload: Buffer.from('tok') }, params: { csr } },
        }).finish(),
      // step.params 1 { data 1 { type 1, payload 2 }, params 2 { csr 1 } }
      expected: ld(1, cat(ld(1, cat(ld(1, 'join_token'), ld(2, 'tok'))), ld(2, ld(1, csr)))),
      type: 'spire.api.server.agent.v1.AttestAgentRequest',
      text: 'params { data { type: "join_token" payload: "tok" } params { csr: "\\x30\\x82\\x01\\x00\\xff" } }',
    },
    {
      name: 'AttestAgentRequest challenge response step',
      encode: () => AttestAgentRequest.encode({ challengeResponse: Buffer.from('resp') }).finish(),
      expected: ld(2, 'resp'),
      type: 'spire.api.server.agent.v1.AttestAgentRequest',
      text: 'challenge_response: "resp"',
    },
    {
      name: 'AttestAgentResponse result step',
      encode: () =>
        AttestAgentResponse.encode({
          result: {
            svid: {
              certChain: [Buffer.from([1, 2]), Buffer.from([3])],
              id: { trustDomain: 'td', path: '/spire/agent/join_token/t' },
              expiresAt: 1_800_000_000n,
              hint: '',
            },
            reattestable: true,
          },
        }).finish(),
      // result 1 { svid 1 { cert_chain 1 (repeated), id 2, expires_at 3 }, reattestable 2 }
      expected: ld(
        1,
        cat(
          ld(
            1,
            cat(
              ld(1, Buffer.from([1, 2])),
              ld(1, Buffer.from([3])),
              ld(2, cat(ld(1, 'td'), ld(2, '/spire/agent/join_token/t'))),
              vf(3, 1_800_000_000n),
            ),
          ),
          vf(2, true),
        ),
      ),
      type: 'spire.api.server.agent.v1.AttestAgentResponse',
      text: `result { svid { cert_chain: "\\x01\\x02" cert_chain: "\\x03"
        id { trust_domain: "td" path: "/spire/agent/join_token/t" } expires_at: 1800000000 } reattestable: true }`,
    },
    {
      name: 'AttestAgentResponse challenge step',
      encode: () => AttestAgentResponse.encode({ challenge: Buffer.from('nonce') }).finish(),
      expected: ld(2, 'nonce'),
      type: 'spire.api.server.agent.v1.AttestAgentResponse',
      text: 'challenge: "nonce"',
    },
  ];
  for (const tc of attestCases) {
    it(`encodes the ${tc.name} like SPIRE and protoc`, () => {
      const got = hex(tc.encode());
      assert.equal(got, hex(tc.expected));
      assert.equal(got, hex(protocEncode('spire/api/server/agent/v1/agent.proto', tc.type, tc.text)));
    });
  }

  it('encodes BatchNewX509SVID requests and per-item results with SPIRE field numbers', () => {
    const req = BatchNewX509SVIDRequest.encode({ params: [{ entryId: 'e1', csr }] }).finish();
    assert.equal(hex(req), hex(ld(1, cat(ld(1, 'e1'), ld(2, csr)))));
    const res = BatchNewX509SVIDResponse.encode({
      results: [{ status: { code: 3, message: 'invalid csr' }, svid: undefined }],
    }).finish();
    // results 1 { status 1 { code 1, message 2 } }
    assert.equal(hex(res), hex(ld(1, ld(1, cat(vf(1, 3), ld(2, 'invalid csr'))))));
  });

  it('carries optional list filters as google.protobuf wrappers, as SPIRE does', () => {
    const msg = ListEntriesRequest.fromPartial({
      filter: {
        byHint: '',
        byDownstream: false,
        bySelectors: {
          selectors: [{ type: 'unix', value: 'uid:0' }],
          match: SelectorMatch_MatchBehavior.MATCH_SUPERSET,
        },
      },
      pageSize: 50,
      pageToken: 'p',
    });
    const text = `filter { by_selectors { selectors { type: "unix" value: "uid:0" } match: MATCH_SUPERSET }
      by_hint { value: "" } by_downstream { value: false } } page_size: 50 page_token: "p"`;
    const expected = protocEncode(
      'spire/api/server/entry/v1/entry.proto',
      'spire.api.server.entry.v1.ListEntriesRequest',
      text,
    );
    const got = ListEntriesRequest.encode(msg).finish();
    assert.equal(hex(got), hex(expected));
    // A present-but-empty hint filter must survive the round trip (it filters for entries without a hint).
    const back = ListEntriesRequest.decode(got);
    assert.equal(back.filter?.byHint, '');
    assert.equal(back.filter?.byDownstream, false);
    assert.equal(
      ListEntriesRequest.decode(ListEntriesRequest.encode({ ...msg, filter: undefined }).finish()).filter,
      undefined,
    );
  });

  it('encodes bundles with 64-bit sequence numbers without loss', () => {
    const bundle = Bundle.fromPartial({
      trustDomain: 'example.org',
      x509Authorities: [{ asn1: Buffer.from([0x30, 0x00]), tainted: true }],
      jwtAuthorities: [{ publicKey: Buffer.from([0x30]), keyId: 'k1', expiresAt: 1n }],
      refreshHint: 300n,
      sequenceNumber: 18_446_744_073_709_551_615n,
    });
    const expected = cat(
      ld(1, 'example.org'),
      ld(2, cat(ld(1, Buffer.from([0x30, 0x00])), vf(2, true))),
      ld(3, cat(ld(1, Buffer.from([0x30])), ld(2, 'k1'), vf(3, 1))),
      vf(4, 300),
      vf(5, 18_446_744_073_709_551_615n),
    );
    const got = Bundle.encode(bundle).finish();
    assert.equal(hex(got), hex(expected));
    assert.equal(Bundle.decode(got).sequenceNumber, 18_446_744_073_709_551_615n);
  });

  it('encodes the Tessera sync revision as a uint64', () => {
    const got = WatchAuthorizedEntriesResponse.encode({ revision: 2n ** 63n }).finish();
    assert.equal(hex(got), hex(vf(1, 2n ** 63n)));
    const text = 'revision: 9223372036854775808';
    const expected = protocEncode(
      'tessera/api/server/sync/v1/sync.proto',
      'tessera.api.server.sync.v1.WatchAuthorizedEntriesResponse',
      text,
    );
    assert.equal(hex(got), hex(expected));
  });
});

describe('service definitions', () => {
  const cases: { name: string; method: { path: string; requestStream: boolean; responseStream: boolean }; path: string; req: boolean; res: boolean }[] = [
    { name: 'Agent/AttestAgent', method: AgentService.attestAgent, path: '/spire.api.server.agent.v1.Agent/AttestAgent', req: true, res: true },
    { name: 'Agent/RenewAgent', method: AgentService.renewAgent, path: '/spire.api.server.agent.v1.Agent/RenewAgent', req: false, res: false },
    { name: 'Entry/GetAuthorizedEntries', method: EntryService.getAuthorizedEntries, path: '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries', req: false, res: false },
    { name: 'Entry/SyncAuthorizedEntries', method: EntryService.syncAuthorizedEntries, path: '/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries', req: true, res: true },
    { name: 'SVID/BatchNewX509SVID', method: SVIDService.batchNewX509Svid, path: '/spire.api.server.svid.v1.SVID/BatchNewX509SVID', req: false, res: false },
    { name: 'SVID/NewJWTSVID', method: SVIDService.newJwtsvid, path: '/spire.api.server.svid.v1.SVID/NewJWTSVID', req: false, res: false },
    { name: 'Bundle/GetBundle', method: BundleService.getBundle, path: '/spire.api.server.bundle.v1.Bundle/GetBundle', req: false, res: false },
    { name: 'Bundle/ListFederatedBundles', method: BundleService.listFederatedBundles, path: '/spire.api.server.bundle.v1.Bundle/ListFederatedBundles', req: false, res: false },
    { name: 'TrustDomain/RefreshBundle', method: TrustDomainService.refreshBundle, path: '/spire.api.server.trustdomain.v1.TrustDomain/RefreshBundle', req: false, res: false },
    { name: 'LocalAuthority/PrepareX509Authority', method: LocalAuthorityService.prepareX509Authority, path: '/spire.api.server.localauthority.v1.LocalAuthority/PrepareX509Authority', req: false, res: false },
    { name: 'Sync/WatchAuthorizedEntries', method: SyncService.watchAuthorizedEntries, path: '/tessera.api.server.sync.v1.Sync/WatchAuthorizedEntries', req: false, res: true },
    { name: 'SDS StreamSecrets', method: SecretDiscoveryServiceService.streamSecrets, path: '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', req: true, res: true },
    { name: 'SDS FetchSecrets', method: SecretDiscoveryServiceService.fetchSecrets, path: '/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets', req: false, res: false },
  ]; // biome-ignore format: table
  for (const tc of cases) {
    it(`routes ${tc.name} to the path and streaming shape peers expect`, () => {
      assert.equal(tc.method.path, tc.path);
      assert.equal(tc.method.requestStream, tc.req);
      assert.equal(tc.method.responseStream, tc.res);
    });
  }

  it('keeps every RPC of the SPIRE services', () => {
    assert.deepEqual(Object.keys(EntryService).sort(), [
      'batchCreateEntry', 'batchDeleteEntry', 'batchUpdateEntry', 'countEntries', 'getAuthorizedEntries',
      'getEntry', 'listEntries', 'syncAuthorizedEntries',
    ]); // biome-ignore format: list
    assert.deepEqual(Object.keys(AgentService).sort(), [
      'attestAgent', 'banAgent', 'countAgents', 'createJoinToken', 'deleteAgent', 'getAgent', 'listAgents',
      'postStatus', 'renewAgent',
    ]); // biome-ignore format: list
    assert.equal(Object.keys(BundleService).length, 10);
    assert.equal(Object.keys(SVIDService).length, 5);
    assert.equal(Object.keys(TrustDomainService).length, 6);
    assert.equal(Object.keys(LocalAuthorityService).length, 12);
  });
});

describe('Envoy SDS messages on the wire', () => {
  const certPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const keyPem = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

  it('encodes a TLS certificate secret with Envoy field numbers', () => {
    const secret: Secret = {
      name: 'spiffe://example.org/web',
      tlsCertificate: {
        certificateChain: { inlineBytes: Buffer.from(certPem) },
        privateKey: { inlineBytes: Buffer.from(keyPem) },
      },
    };
    // Secret: name 1, tls_certificate 2 { certificate_chain 1, private_key 2 }; DataSource.inline_bytes 2
    const expected = cat(
      ld(1, 'spiffe://example.org/web'),
      ld(2, cat(ld(1, ld(2, certPem)), ld(2, ld(2, keyPem)))),
    );
    assert.equal(hex(Secret.encode(secret).finish()), hex(expected));
  });

  it('encodes a SPIFFE validator secret, with its Any, exactly as protoc does', () => {
    const config: SPIFFECertValidatorConfig = {
      trustDomains: [
        { name: 'example.org', trustBundle: { inlineBytes: Buffer.from(certPem) } },
        { name: 'other.org', trustBundle: { inlineBytes: Buffer.from(certPem) } },
      ],
    };
    const secret: Secret = {
      name: 'ALL',
      validationContext: {
        trustedCa: undefined,
        customValidatorConfig: {
          name: 'envoy.tls.cert_validator.spiffe',
          typedConfig: encodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, config),
        },
      },
    };
    const pem = certPem.replaceAll('\n', '\\n');
    const configBytes = protocEncode(
      'envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.proto',
      'envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
      `trust_domains { name: "example.org" trust_bundle { inline_bytes: "${pem}" } }
       trust_domains { name: "other.org" trust_bundle { inline_bytes: "${pem}" } }`,
    );
    assert.equal(hex(SPIFFECertValidatorConfig.encode(config).finish()), hex(configBytes));
    // validation_context 4 { custom_validator_config 12 { name 1, typed_config 2 { type_url 1, value 2 } } }
    const expected = cat(
      ld(1, 'ALL'),
      ld(
        4,
        ld(
          12,
          cat(
            ld(1, 'envoy.tls.cert_validator.spiffe'),
            ld(
              2,
              cat(
                ld(
                  1,
                  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
                ),
                ld(2, configBytes),
              ),
            ),
          ),
        ),
      ),
    );
    assert.equal(hex(Secret.encode(secret).finish()), hex(expected));
  });

  it('decodes an Envoy DiscoveryRequest NACK with node and error detail', () => {
    const bytes = protocEncode(
      'envoy/service/discovery/v3/discovery.proto',
      'envoy.service.discovery.v3.DiscoveryRequest',
      `version_info: "3" resource_names: "default" resource_names: "ROOTCA" type_url: "${SECRET_TYPE_URL}"
       response_nonce: "n4" error_detail { code: 3 message: "bad cert" }`,
    );
    // Envoy also sends fields we trimmed (Node.locality 4, Node.extensions 9, resource_locators 7): skipped.
    const node = cat(
      ld(1, 'sidecar'),
      ld(4, ld(1, 'eu-west-1')),
      ld(2, 'web'),
      ld(6, 'envoy'),
      ld(9, ld(1, 'envoy.transport_sockets.tls')),
      ld(7, '1.30.1'),
    );
    const req = DiscoveryRequest.decode(cat(bytes, ld(2, node), ld(7, ld(1, 'xdstp://x'))));
    assert.equal(req.versionInfo, '3');
    assert.equal(req.node?.id, 'sidecar');
    assert.equal(req.node?.cluster, 'web');
    assert.equal(req.node?.userAgentName, 'envoy');
    assert.equal(req.node?.userAgentVersion, '1.30.1');
    assert.deepEqual(req.resourceNames, ['default', 'ROOTCA']);
    assert.equal(req.typeUrl, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
    assert.equal(req.responseNonce, 'n4');
    assert.equal(req.errorDetail?.code, 3);
    assert.equal(req.errorDetail?.message, 'bad cert');
  });

  it('decodes the structured Envoy build version and node metadata the SDS server inspects', () => {
    const bytes = protocEncode(
      'envoy/service/discovery/v3/discovery.proto',
      'envoy.service.discovery.v3.DiscoveryRequest',
      `node { id: "n" user_agent_name: "envoy"
         user_agent_build_version { version { major_number: 1 minor_number: 17 patch: 2 } }
         metadata { fields { key: "disable_spiffe_cert_validation" value { bool_value: true } } } }`,
    );
    // Node.user_agent_build_version 8 { version 1 { major_number 1, minor_number 2, patch 3 } }
    const hand = ld(2, cat(ld(1, 'n'), ld(6, 'envoy'), ld(8, ld(1, cat(vf(1, 1), vf(2, 17), vf(3, 2))))));
    const viaHand = DiscoveryRequest.decode(hand);
    assert.deepEqual(viaHand.node?.userAgentBuildVersion?.version, {
      majorNumber: 1,
      minorNumber: 17,
      patch: 2,
    });
    const req = DiscoveryRequest.decode(bytes);
    assert.deepEqual(req.node?.userAgentBuildVersion?.version, { majorNumber: 1, minorNumber: 17, patch: 2 });
    assert.equal(req.node?.userAgentVersion, undefined);
    assert.deepEqual(req.node?.metadata, { disable_spiffe_cert_validation: true });
  });

  it('encodes a DiscoveryResponse with Envoy field numbers', () => {
    const secret: Secret = {
      name: 'default',
      validationContext: { trustedCa: { inlineString: certPem }, customValidatorConfig: undefined },
    };
    const res = DiscoveryResponse.encode({
      versionInfo: '5',
      resources: [encodeAny(SECRET_ANY, secret)],
      typeUrl: SECRET_TYPE_URL,
      nonce: 'n5',
    }).finish();
    // version_info 1, resources 2 (Any), type_url 4, nonce 5; Secret.validation_context 4 { trusted_ca 1 { inline_string 3 } }
    const secretBytes = cat(ld(1, 'default'), ld(4, ld(1, ld(3, certPem))));
    const expected = cat(
      ld(1, '5'),
      ld(2, cat(ld(1, SECRET_TYPE_URL), ld(2, secretBytes))),
      ld(4, SECRET_TYPE_URL),
      ld(5, 'n5'),
    );
    assert.equal(hex(res), hex(expected));
  });
});
