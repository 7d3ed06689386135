import type { Suite } from '../harness.js';

/** Every benchmark suite, in the order they run. */
export const suites: Suite[] = [];
