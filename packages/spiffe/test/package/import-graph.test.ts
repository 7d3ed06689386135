import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

/**
 * Imports `specifiers` in a fresh node process and lists which of the heavy optional dependencies got
 * loaded. @grpc/grpc-js and undici are CommonJS, so once anything imports them they sit in the CommonJS
 * module cache, which the child reads after its imports.
 */
function loadedHeavyDeps(specifiers: readonly string[]): string[] {
  const script = `
    import { createRequire } from 'node:module';
    for (const s of ${JSON.stringify(specifiers)}) await import(s);
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const found = ['@grpc/grpc-js', 'undici'].filter((d) =>
      cache.some((k) => k.includes(\`/node_modules/\${d}/\`)),
    );
    process.stdout.write(JSON.stringify(found));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('.', import.meta.url),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

describe('package import graph', () => {
  const light = [
    '@tessera/spiffe',
    '@tessera/spiffe/errors',
    '@tessera/spiffe/spiffeid',
    '@tessera/spiffe/bundle',
    '@tessera/spiffe/svid',
    '@tessera/spiffe/tls',
  ];
  for (const specifier of light) {
    it(`importing ${specifier} loads neither @grpc/grpc-js nor undici`, () => {
      assert.deepEqual(loadedHeavyDeps([specifier]), []);
    });
  }

  it('detects @grpc/grpc-js when a subpath does load it (control: /workloadapi and /tls/grpc)', () => {
    assert.deepEqual(loadedHeavyDeps(['@tessera/spiffe/workloadapi']), ['@grpc/grpc-js']);
    assert.deepEqual(loadedHeavyDeps(['@tessera/spiffe/tls/grpc']), ['@grpc/grpc-js']);
  });

  it('detects undici when a subpath does load it (control: /tls/undici)', () => {
    assert.ok(loadedHeavyDeps(['@tessera/spiffe/tls/undici']).includes('undici'));
  });
});
