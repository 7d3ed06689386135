/** Test helpers for Tessera packages. */
export {
  type IssuedChain,
  type IssuedX509Svid,
  type LeafOptions,
  type PemFiles,
  TestCa,
  type TestCaOptions,
} from './test-ca.js';
