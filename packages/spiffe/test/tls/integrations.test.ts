import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import {
  authorizeAny,
  authorizeId,
  createSpiffeHttp2SecureServer,
  createSpiffeHttpsServer,
  mtlsClientOptions,
  mtlsServerOptions,
  peerIdFromSocket,
} from '@tessera/spiffe/tls';
import { createSpiffeGrpcChannelCredentials, serveGrpcOverSpiffeTls } from '@tessera/spiffe/tls/grpc';
import { createSpiffeUndiciAgent } from '@tessera/spiffe/tls/undici';
import { TestCa } from '@tessera/testing';
import { request } from 'undici';
import { listen, MutableBundles, MutableSvidSource, svid } from './fixtures.js';

const ca = TestCa.create({ trustDomain: 'example.org' });
const bundles = new MutableBundles(ca);
const serverId = SpiffeId.require('spiffe://example.org/server');
const clientId = SpiffeId.require('spiffe://example.org/client');
const serverSvid = new MutableSvidSource(svid(ca, serverId.toString()));
const clientSvid = new MutableSvidSource(svid(ca, clientId.toString()));

describe('SPIFFE TLS integrations', () => {
  it('round-trips over http2', async () => {
    let calls = 0;
    const server = createSpiffeHttp2SecureServer(
      mtlsServerOptions(serverSvid, bundles, authorizeId(clientId)),
      {},
      (req, res) => {
        calls++;
        res.end(`h2 hello ${peerIdFromSocket(req.socket as unknown as TLSSocket).toString()}`);
      },
    );
    const port = await listen(server);
    try {
      const session = http2.connect(
        `https://127.0.0.1:${port}`,
        mtlsClientOptions(clientSvid, bundles, authorizeId(serverId)),
      );
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/' });
        let data = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => {
          data += d;
        });
        req.on('end', () => resolve(data));
        req.on('error', reject);
        req.end();
      });
      session.close();
      assert.equal(body, `h2 hello ${clientId.toString()}`);

      const wrong = http2.connect(
        `https://127.0.0.1:${port}`,
        mtlsClientOptions(clientSvid, bundles, authorizeId(SpiffeId.require('spiffe://example.org/x'))),
      );
      const err = await new Promise<Error & { code?: string }>((resolve) => wrong.on('error', resolve));
      assert.equal(err.code, 'ERR_TLS_AUTHORIZATION_FAILED');
      assert.equal(calls, 1);
    } finally {
      server.close();
    }
  });

  it('round-trips with an undici dispatcher and refuses an unauthorized server', async () => {
    const server = createSpiffeHttpsServer(
      mtlsServerOptions(serverSvid, bundles, authorizeAny()),
      {},
      (req, res) => {
        res.end(`undici hello ${peerIdFromSocket(req.socket as TLSSocket).toString()}`);
      },
    );
    const port = await listen(server);
    try {
      const dispatcher = createSpiffeUndiciAgent(() =>
        mtlsClientOptions(clientSvid, bundles, authorizeId(serverId)),
      );
      const res = await request(`https://127.0.0.1:${port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), `undici hello ${clientId.toString()}`);
      await dispatcher.close();

      const refusing = createSpiffeUndiciAgent(() =>
        mtlsClientOptions(clientSvid, bundles, authorizeId(SpiffeId.require('spiffe://example.org/x'))),
      );
      await assert.rejects(
        request(`https://127.0.0.1:${port}/`, { dispatcher: refusing }),
        (err: Error & { code?: string; cause?: { code?: string } }) => {
          const code = err.code === 'ERR_TLS_AUTHORIZATION_FAILED' ? err.code : err.cause?.code;
          assert.equal(code, 'ERR_TLS_AUTHORIZATION_FAILED');
          return true;
        },
      );
      await refusing.close();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('round-trips over grpc-js and refuses an unauthorized client before the handler', async () => {
    const identity = (b: Buffer) => b;
    const service: grpc.ServiceDefinition = {
      echo: {
        path: '/tessera.test.Echo/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    };
    let calls = 0;
    const grpcServer = new grpc.Server();
    grpcServer.addService(service, {
      echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        calls++;
        cb(null, Buffer.concat([Buffer.from('echo '), call.request]));
      },
    });
    const tlsServer = serveGrpcOverSpiffeTls(
      grpcServer,
      mtlsServerOptions(serverSvid, bundles, authorizeId(clientId)),
    );
    const port = await listen(tlsServer);
    const Client = grpc.makeGenericClientConstructor(service, 'Echo');
    const call = (client: grpc.Client) =>
      new Promise<Buffer>((resolve, reject) => {
        const c = client as unknown as {
          echo(
            req: Buffer,
            opts: grpc.CallOptions,
            cb: (err: grpc.ServiceError | null, res?: Buffer) => void,
          ): void;
        };
        c.echo(Buffer.from('ping'), { deadline: Date.now() + 5000 }, (err, res) =>
          err ? reject(err) : resolve(res as Buffer),
        );
      });
    try {
      const ok = new Client(
        `127.0.0.1:${port}`,
        createSpiffeGrpcChannelCredentials(clientSvid, bundles, authorizeId(serverId)),
      );
      assert.equal((await call(ok)).toString(), 'echo ping');
      ok.close();

      const intruder = new MutableSvidSource(svid(ca, 'spiffe://example.org/intruder'));
      const bad = new Client(
        `127.0.0.1:${port}`,
        createSpiffeGrpcChannelCredentials(intruder, bundles, authorizeId(serverId)),
      );
      await assert.rejects(call(bad), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.UNAVAILABLE);
        return true;
      });
      bad.close();

      const wrongServer = new Client(
        `127.0.0.1:${port}`,
        createSpiffeGrpcChannelCredentials(
          clientSvid,
          bundles,
          authorizeId(SpiffeId.require('spiffe://example.org/x')),
        ),
      );
      await assert.rejects(call(wrongServer), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.UNAVAILABLE);
        assert.match(err.details, /unexpected ID "spiffe:\/\/example\.org\/server"/);
        return true;
      });
      wrongServer.close();
      assert.equal(calls, 1);
    } finally {
      tlsServer.close();
      grpcServer.forceShutdown();
    }
  });
});
