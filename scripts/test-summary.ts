// Prints one summary over every vitest JSON report in a folder (unit, integration, e2e), so CI shows how many
// tests passed, failed and were skipped in total. Exits non-zero if any failed or a report is missing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Report {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  success: boolean;
}

const dir = process.argv[2] ?? '.test-results';
const expected = ['unit.json', 'integration.json'];
let files: string[] = [];
try {
  files = readdirSync(dir).filter((f) => f.endsWith('.json'));
} catch {
  // reported below as missing
}
const totals = { passed: 0, failed: 0, skipped: 0 };
let ok = true;
for (const name of expected) {
  if (!files.includes(name)) {
    console.log(`summary: ${name.replace('.json', '')}: no report (the suite did not run)`);
    ok = false;
  }
}
for (const file of files.sort()) {
  const r = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Report;
  const skipped = r.numPendingTests + r.numTodoTests;
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests;
  totals.skipped += skipped;
  if (!r.success) ok = false;
  console.log(
    `summary: ${file.replace('.json', '').padEnd(12)} ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`,
  );
}
console.log(
  `summary: ${'total'.padEnd(12)} ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`,
);
process.exit(ok && totals.failed === 0 ? 0 : 1);
