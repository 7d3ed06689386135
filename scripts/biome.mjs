#!/usr/bin/env node
// Runs Biome (lint + format). The npm registry reachable here serves Biome's binary package for linux-x64 only,
// and `npm ci` refuses a lock file that lacks the wrapper package's other-platform optional dependencies, so the
// project depends on the platform package directly and calls its binary. BIOME_BINARY overrides the path.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let bin = process.env.BIOME_BINARY;
if (!bin) {
  try {
    bin = join(dirname(require.resolve('@biomejs/cli-linux-x64/package.json')), 'biome');
  } catch {
    bin = undefined;
  }
}
if (!bin || !existsSync(bin)) {
  console.error('biome: no Biome binary for this platform; set BIOME_BINARY to a biome executable');
  process.exit(2);
}
const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' });
process.exit(r.status ?? 1);
