import type { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { type BundleHandler, createBundleHandler } from '@tessera/spiffe/federation';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import {
  createSpiffeHttpsServer,
  type TlsSvid,
  type TlsSvidSource,
  tlsServerOptions,
} from '@tessera/spiffe/tls';
import { TestCa } from '@tessera/testing';

export const TD = TrustDomain.fromString('example.org');
export const ENDPOINT_ID = 'spiffe://example.org/spire/server';

/** An SVID source a test can swap. */
export class MutableSvid implements TlsSvidSource {
  constructor(public svid: TlsSvid) {}
  getX509Svid(): TlsSvid {
    return this.svid;
  }
}

export function svidOf(ca: TestCa, spiffeId: string): TlsSvid {
  const s = ca.issueX509Svid({ spiffeId });
  return { certificates: s.certificates, privateKey: s.privateKey };
}

export function bundleOf(
  roots: readonly X509Certificate[],
  sequenceNumber?: number,
  refreshHint?: number,
): SpiffeBundle {
  return SpiffeBundle.fromAuthorities(TD, {
    x509Authorities: roots,
    ...(sequenceNumber === undefined ? {} : { sequenceNumber }),
    ...(refreshHint === undefined ? {} : { refreshHint }),
  });
}

/** A running test server and the number of requests it received. */
export interface Running {
  readonly port: number;
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

async function start(server: http.Server | https.Server, requests: string[]): Promise<Running> {
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function counting(handler: BundleHandler, requests: string[]): BundleHandler {
  return (req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    handler(req, res);
  };
}

/** An https_spiffe bundle endpoint presenting `svid`'s current SVID and serving `next()` on each GET. */
export function startSpiffeEndpoint(svid: TlsSvidSource, next: () => SpiffeBundle): Promise<Running> {
  const requests: string[] = [];
  const handler = createBundleHandler(TD, { getBundleForTrustDomain: () => next() });
  return start(createSpiffeHttpsServer(tlsServerOptions(svid), {}, counting(handler, requests)), requests);
}

/** An https_spiffe server presenting `svid`'s current SVID with a custom handler. */
export function startSpiffeServer(svid: TlsSvidSource, handler: BundleHandler): Promise<Running> {
  const requests: string[] = [];
  return start(createSpiffeHttpsServer(tlsServerOptions(svid), {}, counting(handler, requests)), requests);
}

/** A handler answering every request with a redirect. */
export function redirectTo(to: string, status = 302): BundleHandler {
  return (_req, res) => {
    res.writeHead(status, { location: to });
    res.end();
  };
}

/** An https server with a web PKI certificate and a custom handler. */
export function startWebServer(
  cert: { certPem: string; keyPem: string },
  handler: BundleHandler,
): Promise<Running> {
  const requests: string[] = [];
  return start(
    https.createServer(
      { cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' },
      counting(handler, requests),
    ),
    requests,
  );
}

/** A plain http server (the handler under test without TLS, or an http redirect target). */
export function startHttpServer(handler: BundleHandler): Promise<Running> {
  const requests: string[] = [];
  return start(http.createServer(counting(handler, requests)), requests);
}

/** A web PKI root (no SPIFFE URI SAN) and a server certificate for `localhost` / 127.0.0.1. */
export function webPki(names: { dnsNames?: string[]; ipAddresses?: string[]; uris?: string[] } = {}): {
  root: TestCa;
  certPem: string;
  keyPem: string;
} {
  const root = TestCa.create({ trustDomain: 'web.test', subjectSpiffeId: null });
  const leaf = root.issueX509Svid({
    uris: names.uris ?? [],
    dnsNames: names.dnsNames ?? ['localhost'],
    ipAddresses: names.ipAddresses ?? ['127.0.0.1'],
  });
  return { root, certPem: leaf.certPem, keyPem: leaf.keyPem };
}

/**
 * A `sleep` for watchBundle that never waits: it records each requested delay and aborts the watch after
 * `steps` delays.
 */
export function stepper(steps: number): {
  delays: number[];
  signal: AbortSignal;
  sleep: (ms: number) => Promise<void>;
} {
  const ac = new AbortController();
  const delays: number[] = [];
  return {
    delays,
    signal: ac.signal,
    sleep: async (ms) => {
      delays.push(ms);
      if (delays.length >= steps) ac.abort();
    },
  };
}
