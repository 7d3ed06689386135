#!/usr/bin/env node
// Runs every compiled *.test.js file with node's test runner (Node 20's --test takes no globs).
// Usage: node scripts/run-tests.mjs [filter]   (filter: substring of the file path)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

const roots = ['packages', 'test'];
const files = [];
function walk(dir, inDist) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, inDist || name === 'dist');
    else if (inDist && name.endsWith('.test.js')) files.push(p);
  }
}
for (const r of roots) walk(r, false);
const filter = process.argv[2];

// Some suites run workloads as uid 65534 (setpriv) that load code from this checkout: warn when a directory
// above it is closed to others, which makes those suites fail with ERR_MODULE_NOT_FOUND.
for (let d = process.cwd(); d !== dirname(d); d = dirname(d)) {
  if ((statSync(d).mode & 0o001) === 0) {
    console.error(
      `run-tests: warning: ${d} is not traversable by other users; tests that run workloads as another uid will ` +
        `fail (chmod o+x each directory above the checkout, as .ci/run does)`,
    );
    break;
  }
}
const selected = files.filter((f) => !filter || f.includes(filter)).sort();
if (selected.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
// --test-timeout bounds any single test; --test-force-exit ends a file's process once its tests are done even if
// something left a handle open, so one leaked socket cannot hang the whole run.
const timeout = process.env.TESSERA_TEST_TIMEOUT_MS ?? '300000';
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', `--test-timeout=${timeout}`, '--test-force-exit', ...selected],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
