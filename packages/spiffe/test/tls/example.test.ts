import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// test/dist/tls/example.test.js -> packages/spiffe/examples/dist/https-mtls.js
const example = fileURLToPath(new URL('../../../examples/dist/https-mtls.js', import.meta.url));

function runExample(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.SPIFFE_ENDPOINT_SOCKET;
    const p = spawn(process.execPath, [example, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples/https-mtls', () => {
  it('authenticates both sides by SPIFFE ID and keeps working across SVID rotations', async () => {
    assert.ok(existsSync(example), `compiled example missing at ${example}: run npx tsc -b`);
    const r = await runExample(['--duration', '5', '--rotate', '2'], 30_000);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const exchanges = lines
      .map((l) =>
        /^client: server spiffe:\/\/example\.org\/server \(cert (\w+)\) says: hello spiffe:\/\/example\.org\/client \(client cert (\w+)\)$/.exec(
          l,
        ),
      )
      .filter((m) => m !== null);
    assert.ok(exchanges.length >= 4, r.stdout);
    assert.ok(new Set(exchanges.map((m) => m[1])).size >= 2, `server SVID never rotated:\n${r.stdout}`);
    assert.ok(new Set(exchanges.map((m) => m[2])).size >= 2, `client SVID never rotated:\n${r.stdout}`);
    assert.ok(lines.some((l) => l === 'fake workload api: rotated SVIDs'));
    assert.ok(!r.stdout.includes('request failed'), r.stdout);
    assert.ok(!r.stdout.includes('refused'), r.stdout);
    assert.equal(lines.filter((l) => l !== '').at(-1), 'done');
  });
});
