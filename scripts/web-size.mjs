// Prints what the dashboard's first page downloads (index.html and the files it references),
// gzipped, and fails the build above the budget of 1 MB.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 1024 * 1024;
const root = new URL('../dist/web/', import.meta.url).pathname;
const html = readFileSync(join(root, 'index.html'), 'utf8');
const files = ['index.html', ...[...html.matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((match) => match[1])];
let total = 0;
for (const file of files) {
  const size = gzipSync(readFileSync(join(root, file)), { level: 9 }).length;
  total += size;
  console.log(`  ${file.padEnd(36)} ${(size / 1024).toFixed(1).padStart(8)} kB gzipped`);
}
console.log(`dashboard first page: ${(total / 1024).toFixed(1)} kB gzipped (budget ${BUDGET_BYTES / 1024} kB)`);
if (total > BUDGET_BYTES) {
  console.error('the first page is over its budget');
  process.exit(1);
}
