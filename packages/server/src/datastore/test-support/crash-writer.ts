/**
 * Child process of the kill -9 test: writes batches of entries, each in one transaction, and after each commit
 * prints `committed <batch> <id> <id> …` on stdout. The parent kills it at an arbitrary point.
 * Usage: node crash-writer.js <connection string> <entries per batch> <round (keeps IDs apart across runs)>
 */
import { openDatastore } from '../sql/open.js';

const [url, perBatchArg, round = '0'] = process.argv.slice(2);
if (url === undefined) throw new TypeError('usage: crash-writer <connection string> [entries per batch]');
const perBatch = Number(perBatchArg ?? '20');
const ds = await openDatastore(url);
process.stdout.write('ready\n');
for (let batch = 0; ; batch++) {
  const created = await ds.createEntries(
    Array.from({ length: perBatch }, (_, i) => ({
      spiffeId: `spiffe://example.org/crash/${round}/${batch}/${i}`,
      parentId: 'spiffe://example.org/spire/agent/crash',
      selectors: [{ type: 'crash', value: `r${round}-b${batch}-${i}` }],
      x509SvidTtl: 0,
      jwtSvidTtl: 0,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      storeSvid: false,
      hint: `r${round}-batch-${batch}`,
      expiresAt: undefined,
    })),
  );
  process.stdout.write(`committed ${batch} ${created.map((e) => e.id).join(' ')}\n`);
}
