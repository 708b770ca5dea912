// Keeps the repository's copy of the contract vectors (test/fixtures/public-vectors.json, what the
// tests read) in step with the contract's (../shared/vectors/public.json, or CBLOSS_VECTORS):
//   node scripts/sync-vectors.js          copies the contract's file over the fixture when they differ
//   node scripts/sync-vectors.js --check  only compares them (exit 1 when they differ)
// Either way it checks that the file parses and has cases, and prints the case count.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const source = process.env.CBLOSS_VECTORS || path.join(__dirname, '..', '..', 'shared', 'vectors', 'public.json');
const fixture = path.join(__dirname, '..', 'test', 'fixtures', 'public-vectors.json');
const checkOnly = process.argv.includes('--check');

function cases(file) {
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed.cases) || parsed.cases.length === 0) throw new Error(`${file}: no "cases" array`);
  return parsed.cases.length;
}

if (!fs.existsSync(source)) {
  console.log(`the contract's vectors are not here (${source}): the fixture (${cases(fixture)} cases) stays as it is`);
  process.exit(checkOnly ? 0 : 1);
}
const n = cases(source);
const same = fs.existsSync(fixture) && Buffer.compare(fs.readFileSync(source), fs.readFileSync(fixture)) === 0;
if (same) {
  console.log(`test/fixtures/public-vectors.json is the contract's ${source} (${n} cases)`);
} else if (checkOnly) {
  console.log(`test/fixtures/public-vectors.json differs from ${source}: run node scripts/sync-vectors.js`);
  process.exit(1);
} else {
  fs.copyFileSync(source, fixture);
  console.log(`copied ${source} (${n} cases) to test/fixtures/public-vectors.json`);
}
