import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

describe('@tessera/spiffe/federation import graph', () => {
  it('loads neither @grpc/grpc-js nor undici', () => {
    const script = `
      import { createRequire } from 'node:module';
      const m = await import('@tessera/spiffe/federation');
      const cache = Object.keys(createRequire(import.meta.url).cache);
      const found = ['@grpc/grpc-js', 'undici'].filter((d) => cache.some((k) => k.includes(\`/node_modules/\${d}/\`)));
      process.stdout.write(JSON.stringify({ found, exports: Object.keys(m).sort() }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('.', import.meta.url),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { found: string[]; exports: string[] };
    assert.deepEqual(out.found, []);
    for (const name of ['createBundleHandler', 'fetchBundle', 'watchBundle'])
      assert.ok(out.exports.includes(name));
  });
});
