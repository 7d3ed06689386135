/**
 * Demo service 2: an https client that presents its X509-SVID from the agent and accepts only the demo
 * server's SPIFFE ID. It sends a request over a new connection every `--interval` seconds, so every request
 * shows the SVIDs in use at that moment, and reports the first success and the first success after each
 * rotation.
 *
 * Run: `SPIFFE_ENDPOINT_SOCKET=unix:///path/api.sock node packages/demo/dist/client.js --hint demo-client
 * --self spiffe://td/demo/client --peer spiffe://td/demo/server --port 8443`.
 *
 * @module
 */
import * as https from 'node:https';
import type { TLSSocket } from 'node:tls';
import {
  authorizeId,
  createSpiffeHttpsAgent,
  mtlsClientOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { onShutdown, openIdentity, parseDemoArgs, shortSerial } from './identity.js';

interface Reply {
  readonly server: string;
  readonly serial: string;
  readonly peer: string;
}

function isReply(v: unknown): v is Reply {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.server === 'string' && typeof r.serial === 'string' && typeof r.peer === 'string';
}

async function main(): Promise<void> {
  const args = parseDemoArgs('demo-client');
  if (args.port === 0) {
    console.error('demo-client: --port is required');
    process.exit(2);
  }
  const source = await openIdentity('client', args);
  const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(source, source, authorizeId(args.peer)), {
    keepAlive: false,
  });

  let okOnce = false;
  let lastPair = '';
  let lastError = '';
  const request = () =>
    new Promise<void>((resolve) => {
      const req = https.get({ host: '127.0.0.1', port: args.port, path: '/', agent }, (res) => {
        const serverId = peerIdFromSocket(res.socket as TLSSocket).toString();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => {
          let reply: unknown;
          try {
            reply = JSON.parse(body);
          } catch {
            reply = undefined;
          }
          if (res.statusCode !== 200 || !isReply(reply)) {
            console.log(`demo: unexpected answer from ${serverId}: ${res.statusCode} ${body.slice(0, 200)}`);
            resolve();
            return;
          }
          lastError = '';
          const pair = `${shortSerial(source.getX509Svid())}/${reply.serial}`;
          if (!okOnce) {
            okOnce = true;
            console.log(
              `demo: mTLS OK client ${args.self} -> server ${serverId} (the server authenticated ${reply.peer})`,
            );
          } else if (pair !== lastPair) {
            console.log(
              `demo: mTLS still OK with the new SVIDs (client serial ${pair.replace('/', ', server serial ')})`,
            );
          }
          lastPair = pair;
          resolve();
        });
      });
      req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
      req.on('error', (err) => {
        if (err.message !== lastError) console.log(`demo: request failed: ${err.message}`);
        lastError = err.message;
        resolve();
      });
    });

  let stopped = false;
  let inflight: Promise<void> = request();
  const timer = setInterval(() => {
    if (!stopped) inflight = inflight.then(request);
  }, args.interval * 1000);
  onShutdown(async () => {
    stopped = true;
    clearInterval(timer);
    await inflight;
    agent.destroy();
    await source.close();
  });
}

main().catch((err: unknown) => {
  console.error(`demo: client failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
