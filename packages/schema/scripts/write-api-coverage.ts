// Writes docs/api-coverage.md from the schema definitions, formatted as the repo's prettier would, so
// `prettier --check .` and this script agree. `--check` writes nothing and fails when the file differs (run it in
// lint).
//   node --conditions=@kubevirt-ts/source packages/schema/scripts/write-api-coverage.ts [--check]
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { apiCoverageMarkdown } from '../src/index.ts';

export const API_COVERAGE_PATH = fileURLToPath(new URL('../../../docs/api-coverage.md', import.meta.url));

/** The file's content: the generated markdown, through prettier with the repo's settings. */
export async function formattedApiCoverage(): Promise<string> {
  const options = (await resolveConfig(API_COVERAGE_PATH)) ?? {};
  return format(apiCoverageMarkdown(), { ...options, filepath: API_COVERAGE_PATH });
}

async function main(): Promise<void> {
  const wanted = await formattedApiCoverage();
  const current = await readFile(API_COVERAGE_PATH, 'utf8').catch(() => undefined);
  if (process.argv.includes('--check')) {
    if (current !== wanted) {
      console.error(
        `docs/api-coverage.md is ${current === undefined ? 'missing' : 'out of date'}; ` +
          'run `pnpm --filter @kubevirt-ts/schema coverage` and commit the result.',
      );
      process.exitCode = 1;
    }
  } else if (current !== wanted) {
    await writeFile(API_COVERAGE_PATH, wanted);
    console.log('wrote docs/api-coverage.md');
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
