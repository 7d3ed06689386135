/**
 * Example: an https server and an https client that authenticate each other by SPIFFE ID, with SVIDs
 * from the Workload API through `X509Source`, rotating without restart.
 *
 * - With `SPIFFE_ENDPOINT_SOCKET` set (e.g. `unix:///run/spire/agent.sock`), both sides use that
 *   Workload API and authorize peers of their own trust domain.
 * - Without it, the example starts an in-process fake Workload API (from `@tessera/testing`) for two
 *   workloads, `spiffe://example.org/server` and `spiffe://example.org/client`, whose SVIDs it rotates
 *   every `--rotate` seconds (default 3).
 *
 * Run: `node packages/spiffe/examples/dist/https-mtls.js [--duration <s>] [--rotate <s>]`
 * (default duration: until Ctrl-C). Every second the client sends a request over a NEW connection, so
 * each request shows the SVIDs (serial numbers) in use at that moment.
 */
import type { X509Certificate } from 'node:crypto';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import type { SpiffeId } from '@tessera/spiffe/spiffeid';
import {
  type Authorizer,
  authorizeId,
  authorizeMemberOf,
  createSpiffeHttpsAgent,
  createSpiffeHttpsServer,
  mtlsClientOptions,
  mtlsServerOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { X509Source } from '@tessera/spiffe/workloadapi';
import { FakeWorkloadApi, TestCa } from '@tessera/testing';

const { values } = parseArgs({
  options: { duration: { type: 'string' }, rotate: { type: 'string', default: '3' } },
});
const durationSeconds = values.duration === undefined ? undefined : Number(values.duration);
const rotateSeconds = Number(values.rotate);

function serial(cert: X509Certificate | undefined): string {
  return cert?.serialNumber.slice(-8) ?? '?';
}

/** Workload API endpoints of the two workloads, and a way to stop what we started. */
async function endpoints(): Promise<{ server: string; client: string; stop: () => Promise<void> }> {
  const real = process.env.SPIFFE_ENDPOINT_SOCKET;
  if (real !== undefined && real !== '') {
    console.log(`using the Workload API at ${real}`);
    return { server: real, client: real, stop: async () => {} };
  }
  const ca = TestCa.create({ trustDomain: 'example.org' });
  const fakes = await Promise.all([FakeWorkloadApi.start(), FakeWorkloadApi.start()]);
  const ids = ['spiffe://example.org/server', 'spiffe://example.org/client'];
  const issue = () => {
    fakes.forEach((fake, i) => {
      const spiffeId = ids[i] ?? '';
      const svid = ca.issueX509Svid({ spiffeId });
      fake.setX509Svids([{ spiffeId, chainDer: svid.chainDer, keyDer: svid.keyDer, bundleDer: ca.der }]);
    });
  };
  issue();
  const timer = setInterval(() => {
    issue();
    console.log('fake workload api: rotated SVIDs');
  }, rotateSeconds * 1000);
  console.log(`started a fake Workload API rotating SVIDs every ${rotateSeconds}s`);
  return {
    server: fakes[0]?.address ?? '',
    client: fakes[1]?.address ?? '',
    stop: async () => {
      clearInterval(timer);
      await Promise.all(fakes.map((f) => f.close()));
    },
  };
}

async function main(): Promise<void> {
  const ep = await endpoints();
  const serverSource = await X509Source.create({ address: ep.server });
  const clientSource = await X509Source.create({ address: ep.client });
  const serverId = serverSource.getX509Svid().id;
  const clientId = clientSource.getX509Svid().id;
  // Against a real agent both sides usually share one identity: authorize the trust domain then.
  const allow = (expected: SpiffeId, other: SpiffeId): Authorizer =>
    expected.equals(other) ? authorizeMemberOf(expected.trustDomain) : authorizeId(expected);

  // Server: mTLS, clients verified and authorized before the handler runs; new connections use the
  // current SVID and bundle of the source.
  const server = createSpiffeHttpsServer(
    mtlsServerOptions(serverSource, serverSource, allow(clientId, serverId)),
    {},
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = peerIdFromSocket(socket);
      res.end(`hello ${peer.toString()} (client cert ${serial(socket.getPeerX509Certificate())})`);
    },
  );
  server.on('tlsClientError', (err) => console.log(`server: refused a client: ${err.message}`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  console.log(`server: ${serverId.toString()} listening on https://127.0.0.1:${port}`);

  // Client: options are computed per connection, so rotated SVIDs are used without restart.
  const agent = createSpiffeHttpsAgent(
    () => mtlsClientOptions(clientSource, clientSource, allow(serverId, clientId)),
    {
      keepAlive: false,
    },
  );

  let inflight: Promise<void> = Promise.resolve();
  const tick = () => {
    let done = () => {};
    inflight = new Promise<void>((resolve) => {
      done = resolve;
    });
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => {
        const s = res.socket as TLSSocket | null;
        const cert = s?.getPeerX509Certificate();
        console.log(`client: server ${serverId.toString()} (cert ${serial(cert)}) says: ${body}`);
        done();
      });
    });
    req.on('error', (err) => {
      console.log(`client: request failed: ${err.message}`);
      done();
    });
  };
  const timer = setInterval(tick, 1000);
  tick();

  const shutdown = async () => {
    clearInterval(timer);
    await inflight;
    agent.destroy();
    server.closeAllConnections();
    server.close();
    await serverSource.close();
    await clientSource.close();
    await ep.stop();
    console.log('done');
  };
  process.once('SIGINT', () => void shutdown());
  if (durationSeconds !== undefined) setTimeout(() => void shutdown(), durationSeconds * 1000);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
