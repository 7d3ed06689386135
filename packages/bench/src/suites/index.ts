import type { Suite } from '../harness.js';
import { jwtSvidValidate, spiffeIdParse, x509SvidVerify } from './library.js';

/** Every benchmark suite, in the order they run. */
export const suites: Suite[] = [spiffeIdParse, x509SvidVerify, jwtSvidValidate];
