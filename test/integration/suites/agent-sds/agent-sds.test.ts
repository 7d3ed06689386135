/**
 * agent-sds: an Envoy-style SDS v3 client (grpc-js with the generated SDS types) asks the BUILT agent, joined to
 * the BUILT server, for "default", "ROOTCA" and "ALL" over its public socket; the PEMs it gets verify (with the
 * library and with openssl) against the server's bundle.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ClientDuplexStream,
  credentials,
  makeGenericClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  type DiscoveryRequest,
  type DiscoveryResponse,
  decodeAny,
  SECRET_ANY,
  SECRET_TYPE_URL,
  type Secret,
  SecretDiscoveryServiceService,
  SPIFFE_CERT_VALIDATOR_CONFIG_ANY,
} from '@tessera/common/api';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509SvidSync, X509Svid } from '@tessera/spiffe/svid';
import { selfSignedCertArgs } from '@tessera/testing';
import { createEntries, createJoinToken, TesseraAgent } from '../../harness/agent.js';
import { currentBundle } from '../../harness/api.js';
import { TesseraServer } from '../../harness/server.js';

const TD = TrustDomain.fromString('example.org');
const WORKLOAD_ID = 'spiffe://example.org/it/envoy';

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

function secretsOf(res: DiscoveryResponse): Secret[] {
  assert.equal(res.typeUrl, SECRET_TYPE_URL);
  return res.resources.map((a) => decodeAny(SECRET_ANY, a));
}

function byName(secrets: readonly Secret[], name: string): Secret {
  const s = secrets.find((x) => x.name === name);
  assert.ok(s, `no secret "${name}" among [${secrets.map((x) => x.name).join(', ')}]`);
  return s;
}

function openssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('agent-sds: Envoy SDS v3 (default, ROOTCA, ALL) from the built agent', () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let bundle: X509Bundle;
  let client: SdsClient;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-it-sds-'));
    server = await TesseraServer.start();
    bundle = await currentBundle(server);
    const t = await createJoinToken(server);
    await createEntries(server, [
      { parentId: t.agentId, spiffeId: WORKLOAD_ID, selectors: [`unix:uid:${process.getuid?.() ?? 0}`] },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: t.token });
    const Ctor = makeGenericClientConstructor(SecretDiscoveryServiceService, 'SecretDiscoveryService');
    client = new Ctor(agent.address, credentials.createInsecure()) as unknown as SdsClient;
  });
  after(async () => {
    client?.close();
    await agent?.stop();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('01 StreamSecrets: "default", "ROOTCA" and "ALL" in one response; the SVID verifies against both bundles', async () => {
    const call = client.streamSecrets();
    const responses: DiscoveryResponse[] = [];
    call.on('data', (r: DiscoveryResponse) => responses.push(r));
    call.on('error', () => {});
    const first = new Promise<DiscoveryResponse>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.write(request(['default', 'ROOTCA', 'ALL', 'no-such-secret']));
    const res = await first;
    assert.equal(res.versionInfo, '1');
    assert.match(res.nonce, /^[0-9a-f]{8}$/);
    const secrets = secretsOf(res);
    assert.deepEqual(
      secrets.map((s) => s.name).sort(),
      ['ALL', 'ROOTCA', 'default'],
      'unknown names omitted',
    );

    // default: the workload's SVID as a PEM chain and a PKCS#8 key.
    const tls = byName(secrets, 'default').tlsCertificate;
    const chainPem = tls?.certificateChain?.inlineBytes?.toString('utf8') ?? '';
    const keyPem = tls?.privateKey?.inlineBytes?.toString('utf8') ?? '';
    assert.match(chainPem, /^-----BEGIN CERTIFICATE-----\n/);
    assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const svid = X509Svid.parse(chainPem, keyPem);
    assert.equal(svid.id.toString(), WORKLOAD_ID);
    assert.ok(svid.certificates[0]?.checkPrivateKey(svid.privateKey));

    // ROOTCA: the SPIFFE certificate validator config of the own trust domain only, with the server's bundle.
    const vc = byName(secrets, 'ROOTCA').validationContext;
    assert.equal(vc?.trustedCa, undefined);
    assert.equal(vc?.customValidatorConfig?.name, 'envoy.tls.cert_validator.spiffe');
    const rootCfg = decodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, vc!.customValidatorConfig!.typedConfig!);
    assert.deepEqual(
      rootCfg.trustDomains.map((t) => t.name),
      ['example.org'],
    );
    const rootPem = rootCfg.trustDomains[0]?.trustBundle?.inlineBytes?.toString('utf8') ?? '';
    const rootca = X509Bundle.parse(TD, rootPem);
    assert.ok(rootca.equals(bundle), 'ROOTCA is the server bundle');
    assert.equal(verifyX509SvidSync([...svid.certificates], rootca).id.toString(), WORKLOAD_ID);

    // ALL: the SPIFFE certificate validator config with every trust domain's bundle.
    const custom = byName(secrets, 'ALL').validationContext?.customValidatorConfig;
    assert.equal(custom?.name, 'envoy.tls.cert_validator.spiffe');
    assert.ok(custom?.typedConfig);
    const cfg = decodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, custom.typedConfig);
    assert.deepEqual(
      cfg.trustDomains.map((t) => t.name),
      ['example.org'],
    );
    const allPem = cfg.trustDomains[0]?.trustBundle?.inlineBytes?.toString('utf8') ?? '';
    const all = X509Bundle.parse(TD, allPem);
    assert.ok(all.equals(bundle), 'ALL carries the server bundle for example.org');
    assert.equal(verifyX509SvidSync([...svid.certificates], all).id.toString(), WORKLOAD_ID);

    // An independent verifier: openssl, with the ROOTCA PEM as the only trust anchor.
    const leafFile = join(dir, 'leaf.pem');
    const chainFile = join(dir, 'chain.pem');
    const caFile = join(dir, 'rootca.pem');
    const leaf = svid.certificates[0] as X509Certificate;
    await writeFile(leafFile, leaf.toString());
    await writeFile(
      chainFile,
      `${svid.certificates
        .slice(1)
        .map((c) => c.toString())
        .join('')}\n`,
    );
    await writeFile(caFile, rootPem);
    const args = ['verify', '-CAfile', caFile, '-purpose', 'sslclient'];
    if (svid.certificates.length > 1) args.push('-untrusted', chainFile);
    const ok = openssl([...args, leafFile]);
    assert.equal(ok.status, 0, ok.out);
    assert.match(ok.out, /: OK/);
    // And openssl refuses the same leaf against an unrelated CA (the check above can fail).
    const otherKey = join(dir, 'other.key');
    const otherCa = join(dir, 'other.pem');
    const made = openssl(
      selfSignedCertArgs({ keyPath: otherKey, certPath: otherCa, subject: '/CN=other', days: 1 }),
    );
    assert.equal(made.status, 0, made.out);
    assert.notEqual(openssl(['verify', '-CAfile', otherCa, leafFile]).status, 0);

    // ACK: no further response while nothing changes.
    call.write(
      request(['default', 'ROOTCA', 'ALL', 'no-such-secret'], {
        versionInfo: res.versionInfo,
        responseNonce: res.nonce,
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(responses.length, 1);
    call.end();
  });

  it('02 FetchSecrets (unary) serves the same three secrets, each name on its own', async () => {
    for (const name of ['default', 'ROOTCA', 'ALL']) {
      const res = await new Promise<DiscoveryResponse>((resolve, reject) =>
        client.fetchSecrets(request([name]), (err, r) => (err || r === undefined ? reject(err) : resolve(r))),
      );
      const secrets = secretsOf(res);
      assert.deepEqual(
        secrets.map((s) => s.name),
        [name],
      );
      const s = secrets[0] as Secret;
      if (name === 'default') {
        const svid = X509Svid.parse(
          s.tlsCertificate?.certificateChain?.inlineBytes?.toString('utf8') ?? '',
          s.tlsCertificate?.privateKey?.inlineBytes?.toString('utf8') ?? '',
        );
        assert.equal(verifyX509SvidSync([...svid.certificates], bundle).id.toString(), WORKLOAD_ID);
      } else {
        // ROOTCA and ALL: the SPIFFE certificate validator config (one trust domain here for both).
        const typed = s.validationContext?.customValidatorConfig?.typedConfig;
        assert.ok(typed);
        const cfg = decodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, typed);
        assert.ok(
          X509Bundle.parse(TD, cfg.trustDomains[0]?.trustBundle?.inlineBytes?.toString('utf8') ?? '').equals(
            bundle,
          ),
        );
      }
    }
  });
});
