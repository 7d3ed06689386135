/**
 * Demo service 1: an https server that presents its X509-SVID from the agent and accepts only the demo client's
 * SPIFFE ID (mutual TLS, the client verified before any handler runs).
 *
 * Run: `SPIFFE_ENDPOINT_SOCKET=unix:///path/api.sock node packages/demo/dist/server.js --hint demo-server
 * --self spiffe://td/demo/server --peer spiffe://td/demo/client [--port 0]`.
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  authorizeId,
  createSpiffeHttpsServer,
  mtlsServerOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { onShutdown, openIdentity, parseDemoArgs, shortSerial } from './identity.js';

async function main(): Promise<void> {
  const args = parseDemoArgs('demo-server');
  const source = await openIdentity('server', args);
  const server = createSpiffeHttpsServer(
    mtlsServerOptions(source, source, authorizeId(args.peer)),
    {},
    (req, res) => {
      const peer = peerIdFromSocket(req.socket as TLSSocket).toString();
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ server: args.self.toString(), serial: shortSerial(source.getX509Svid()), peer }),
      );
    },
  );
  server.on('tlsClientError', (err) => console.log(`demo: server refused a connection: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  console.log(`demo: server ${args.self} listening on https://127.0.0.1:${port}`);
  onShutdown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await source.close();
  });
}

main().catch((err: unknown) => {
  console.error(`demo: server failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
