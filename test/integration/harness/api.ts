/**
 * Small in-process clients of a running server, over the generated API: the admin socket, and the agent API
 * over TLS (SPIFFE-verified server) for join_token attestation and mTLS calls with an agent SVID.
 *
 * @module
 */
import { X509Certificate } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import {
  AgentService,
  AttestAgentRequest,
  type AttestAgentResponse,
  BundleService,
  EntryService,
  GetBundleRequest,
  makeClient,
  SVIDService,
  type TypedClient,
} from '@tessera/common/api';
import { buildCsr, generateKey } from '@tessera/common/x509';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { X509Svid } from '@tessera/spiffe/svid';
import { authorizeId } from '@tessera/spiffe/tls';
import { createSpiffeGrpcChannelCredentials } from '@tessera/spiffe/tls/grpc';
import type { TesseraServer } from './server.js';

/** Admin clients over the server's Unix socket. */
export function adminClients(server: TesseraServer): {
  entry: TypedClient<typeof EntryService>;
  bundle: TypedClient<typeof BundleService>;
  svid: TypedClient<typeof SVIDService>;
  agent: TypedClient<typeof AgentService>;
  close(): void;
} {
  const target = `unix://${server.socketPath}`;
  const creds = credentials.createInsecure();
  const entry = makeClient(EntryService, target, creds);
  const bundle = makeClient(BundleService, target, creds);
  const svid = makeClient(SVIDService, target, creds);
  const agent = makeClient(AgentService, target, creds);
  return {
    entry,
    bundle,
    svid,
    agent,
    close() {
      for (const c of [entry, bundle, svid, agent]) c.close();
    },
  };
}

/** The server's current X.509 bundle, read over the admin socket. */
export async function currentBundle(server: TesseraServer): Promise<X509Bundle> {
  const c = adminClients(server);
  try {
    const b = await c.bundle.getBundle(GetBundleRequest.fromPartial({}));
    return X509Bundle.fromAuthorities(
      TrustDomain.fromString(server.trustDomain),
      b.x509Authorities.map((a) => new X509Certificate(a.asn1)),
    );
  } finally {
    c.close();
  }
}

/** Channel credentials that verify the server's SVID (spiffe://<td>/spire/server) and optionally present `svid`. */
export function agentApiCredentials(server: TesseraServer, bundle: X509Bundle, svid?: X509Svid) {
  const serverId = SpiffeId.fromPath(TrustDomain.fromString(server.trustDomain), '/spire/server');
  return createSpiffeGrpcChannelCredentials(
    svid === undefined ? undefined : { getX509Svid: () => svid },
    bundle,
    authorizeId(serverId),
  );
}

/** An agent API client for `AgentService` (optionally authenticated with an agent SVID). */
export function agentClient(
  server: TesseraServer,
  bundle: X509Bundle,
  svid?: X509Svid,
): TypedClient<typeof AgentService> {
  return makeClient(AgentService, `127.0.0.1:${server.port}`, agentApiCredentials(server, bundle, svid));
}

/** An agent API client for `EntryService` authenticated with an agent SVID. */
export function agentEntryClient(
  server: TesseraServer,
  bundle: X509Bundle,
  svid: X509Svid,
): TypedClient<typeof EntryService> {
  return makeClient(EntryService, `127.0.0.1:${server.port}`, agentApiCredentials(server, bundle, svid));
}

/**
 * Attests with the join_token method (payload: the token's UTF-8 bytes) and a fresh P-256 key; resolves to the
 * agent X509-SVID, or rejects with the server's error.
 */
export async function attestJoinToken(
  client: TypedClient<typeof AgentService>,
  token: string,
): Promise<X509Svid> {
  const key = generateKey('ec-p256');
  const csr = buildCsr(key.privateKey);
  const stream = client.attestAgent();
  const response = new Promise<AttestAgentResponse>((resolve, reject) => {
    stream.once('data', (r: AttestAgentResponse) => resolve(r));
    stream.once('error', reject);
    stream.once('end', () => reject(new Error('attestation stream ended without a response')));
  });
  stream.write(
    AttestAgentRequest.fromPartial({
      params: { data: { type: 'join_token', payload: Buffer.from(token) }, params: { csr } },
    }),
  );
  try {
    const r = await response;
    const chain = r.result?.svid?.certChain ?? [];
    if (chain.length === 0) throw new Error('attestation answered without an SVID');
    return X509Svid.parseDer(Buffer.concat(chain), key.privateKey.export({ format: 'der', type: 'pkcs8' }));
  } finally {
    stream.end();
  }
}
