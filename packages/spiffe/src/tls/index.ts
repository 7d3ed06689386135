/**
 * SPIFFE-authenticated TLS for Node (go-spiffe `spiffetls/tlsconfig`): authorizers, client options for
 * `tls.connect` / `https` / `http2.connect`, SPIFFE servers (tls, https, http2) with client verification
 * before any handler and SVID rotation, and an `https.Agent`. undici and grpc-js integrations live in
 * `@tessera/spiffe/tls/undici` and `@tessera/spiffe/tls/grpc`.
 *
 * @module
 */
export {
  type Authorizer,
  adaptMatcher,
  authorizeAny,
  authorizeId,
  authorizeMatching,
  authorizeMemberOf,
  authorizeOneOf,
} from './authorizer.js';
export { type ClientOptionsFactory, connectSpiffeTls, createSpiffeHttpsAgent } from './client.js';
export {
  createSpiffeHttp2SecureServer,
  createSpiffeHttpsServer,
  createSpiffeTlsServer,
  mtlsServerOptions,
  mtlsWebServerOptions,
  SpiffeServerTlsConfig,
  tlsServerOptions,
  type WebCertificate,
} from './server.js';
export {
  listX509Authorities,
  MIN_TLS_VERSION,
  mtlsClientOptions,
  mtlsWebClientOptions,
  peerIdFromSocket,
  type SpiffeClientOptions,
  type TlsBundleSource,
  type TlsSvid,
  type TlsSvidSource,
  type TlsVerifyOptions,
  tlsClientOptions,
  verifyPeer,
} from './tls-options.js';
