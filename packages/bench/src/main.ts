/**
 * `npm run bench [-- --json FILE] [--filter SUBSTRING]`: runs every suite and prints each figure beside
 * its floor; with --json, also writes `{"figures":[{name,value,unit,floor,ratio}]}`.
 */
import { writeFileSync } from 'node:fs';
import type { Figure, Suite } from './harness.js';
import { suites } from './suites/index.js';

function parseArgs(argv: string[]): { json?: string; filter?: string } {
  const out: { json?: string; filter?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') out.json = argv[++i] ?? '';
    else if (a === '--filter') out.filter = argv[++i] ?? '';
    else if (a?.startsWith('--json=')) out.json = a.slice(7);
    else if (a?.startsWith('--filter=')) out.filter = a.slice(9);
    else {
      console.error(`bench: unknown argument "${a}" (use --json FILE, --filter SUBSTRING)`);
      process.exit(2);
    }
  }
  return out;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const selected: Suite[] = suites.filter((s) => !args.filter || s.name.includes(args.filter));
  const figures: Figure[] = [];
  for (const suite of selected) {
    const got = await suite.run();
    for (const f of got) {
      figures.push(f);
      const target = f.target ? `  target ${f.target}` : '';
      console.log(
        `${f.name.padEnd(34)} ${fmt(f.value).padStart(10)} ${f.unit.padEnd(6)} floor ${fmt(f.floor).padStart(10)} ${f.unit.padEnd(6)} (${f.floorName})  ratio ${f.ratio.toFixed(2)}${target}`,
      );
    }
  }
  if (args.json) {
    const doc = {
      figures: figures.map((f) => ({
        name: f.name,
        value: f.value,
        unit: f.unit,
        floor: f.floor,
        ratio: f.ratio,
      })),
    };
    writeFileSync(args.json, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`bench: wrote ${figures.length} figures to ${args.json}`);
  }
}

main().catch((err: unknown) => {
  console.error('bench: failed', err);
  process.exit(1);
});
