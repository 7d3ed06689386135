/**
 * Scale check on SQLite: 100,000 entries created in batches and streamed back for the in-memory index. The
 * bound is generous (a slow CI machine must pass); it catches a per-row query or a quadratic load, not noise.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { openDatastore } from './index.js';
import type { NewRegistrationEntry } from './types.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-ds-scale-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('creates and streams back 100,000 entries in seconds', async () => {
  const ds = await openDatastore(`sqlite:${join(dir, 'scale.sqlite3')}`);
  try {
    const n = 100_000;
    const make = (i: number): NewRegistrationEntry => ({
      spiffeId: `spiffe://example.org/ns/${i % 100}/sa/${i}`,
      parentId: `spiffe://example.org/spire/agent/x509pop/node-${i % 1000}`,
      selectors: [
        { type: 'k8s', value: `ns:${i % 100}` },
        { type: 'k8s', value: `sa:${i}` },
      ],
      x509SvidTtl: 3600,
      jwtSvidTtl: 300,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      storeSvid: false,
      hint: '',
      expiresAt: undefined,
    });
    for (let i = 0; i < n; i += 10_000) {
      await ds.createEntries(Array.from({ length: 10_000 }, (_, j) => make(i + j)));
    }
    const t0 = process.hrtime.bigint();
    let count = 0;
    for await (const batch of ds.listAllEntriesForIndex()) count += batch.length;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    assert.equal(count, n);
    assert.ok(seconds < 10, `loading ${n} entries took ${seconds.toFixed(2)} s`);
    const byParent = await ds.listEntries({ byParentId: 'spiffe://example.org/spire/agent/x509pop/node-7' });
    assert.equal(byParent.items.length, 100);
    assert.equal(
      await ds.countEntries({ bySelectors: { selectors: [{ type: 'k8s', value: 'ns:7' }], match: 'any' } }),
      1000,
    );
  } finally {
    await ds.close();
  }
});
