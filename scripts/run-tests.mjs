#!/usr/bin/env node
// Runs every compiled *.test.js file with node's test runner (Node 20's --test takes no globs).
// Usage: node scripts/run-tests.mjs [filter]   (filter: substring of the file path)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

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

/** Runs node's test runner on `files`, echoing its TAP output; resolves to its exit code and the failed files. */
function run(files) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--test', '--test-concurrency=2', `--test-timeout=${timeout}`, '--test-force-exit', ...files],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const failed = new Set();
    let inFailure = false;
    let pending = '';
    const scan = (line) => {
      if (/^\s*not ok \d+/.test(line)) inFailure = true;
      else if (/^\s*ok \d+/.test(line)) inFailure = false;
      if (!inFailure) return;
      const m = /location: '(.+?\.test\.js):\d+:\d+'/.exec(line);
      if (m?.[1]) failed.add(relative(process.cwd(), m[1]));
    };
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) scan(l);
    });
    child.on('close', (code) => {
      scan(pending);
      resolve({ code: code ?? 1, failed: [...failed].filter((f) => files.includes(f)) });
    });
  });
}

// The integration suites drive real processes (servers, agents, nginx) on a shared machine, where a rare timing
// flake can happen: a run with failures re-runs only the failed files once, and says so loudly. A file that fails
// twice fails the run. TESSERA_TEST_RETRY=0 turns the retry off.
const first = await run(selected);
if (first.code === 0) process.exit(0);
const retryable =
  process.env.TESSERA_TEST_RETRY !== '0' && first.failed.length > 0 && first.failed.length <= 5;
if (!retryable) process.exit(first.code);
console.error(
  `run-tests: ${first.failed.length} file(s) failed; running them once more:\n  ${first.failed.join('\n  ')}`,
);
const second = await run(first.failed);
if (second.code === 0) {
  console.error(`run-tests: FLAKY (failed, then passed on retry):\n  ${first.failed.join('\n  ')}`);
}
process.exit(second.code);
