/** Test helpers for Tessera packages. */

export {
  type FakeJwtSvid,
  type FakeJwtSvidHandler,
  type FakeRpc,
  type FakeStatus,
  type FakeValidateHandler,
  FakeWorkloadApi,
  type FakeWorkloadApiOptions,
  type FakeX509Svid,
} from './fake-workload-api.js';
export {
  generateJwtKeyPair,
  JWT_TEST_HMAC_SECRET,
  JWT_TEST_NOW,
  type JwtKeyType,
  type JwtOmittable,
  type MintOptions,
  type MintRawOptions,
  signJws,
  TestJwtAuthority,
  type TestJwtAuthorityOptions,
  type TestJwtKey,
} from './jwt.js';
export { type SelfSignedCertOptions, selfSignedCertArgs } from './openssl.js';
export { freePort } from './ports.js';
export {
  PYTHON,
  PYTHON_CLIENT_PRELUDE,
  PYTHON_CLIENT_SKIP_REASON,
  pythonGrpcAvailable,
  type RunPythonClientParams,
  runPythonClient,
} from './python-client.js';
export {
  type IssuedChain,
  type IssuedX509Svid,
  type LeafOptions,
  type PemFiles,
  TestCa,
  type TestCaOptions,
} from './test-ca.js';
