// Keeps the Helm chart in step with the versions changesets gives each package: every service's version becomes
// its default image tag in values.yaml, the chart's own package version becomes Chart.yaml `version`, and the
// controller's version becomes `appVersion`. Edits go through yaml's Document API so every comment survives.
//
//   node scripts/chart-versions.ts           write the versions into the chart
//   node scripts/chart-versions.ts --check   exit 1 (and say what differs) when the chart is out of date
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isScalar, parseDocument } from 'yaml';
import type { Document } from 'yaml';

/** The services whose images the chart deploys: values.yaml block name → workspace package folder. */
export const SERVICES = ['controller', 'api', 'handler', 'launcher'] as const;
export type Service = (typeof SERVICES)[number];

export const CHART_DIR = join('charts', 'kubevirt-ts');

// Output as prettier formats YAML (the repo's formatter checks these files), so a rewrite changes only the tags.
const YAML_OUTPUT = { flowCollectionPadding: false, lineWidth: 0 } as const;

/** One value in the chart that does not match the package versions. */
export interface Drift {
  file: string;
  path: string;
  current: string | undefined;
  wanted: string;
}

export interface ChartVersionsResult {
  /** Every value that was (or, in check mode, would be) changed. Empty when the chart is up to date. */
  drift: Drift[];
}

function readVersion(root: string, packageDir: string): string {
  const file = join(root, packageDir, 'package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || pkg.version === '') {
    throw new Error(`${relative(root, file)} has no "version"; every service and the chart need one`);
  }
  return pkg.version;
}

function loadYaml(file: string): Document {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  if (doc.errors.length > 0) {
    throw new Error(`${file} is not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  return doc;
}

/**
 * Sets a string scalar at `path`, keeping the node (so its comment and quoting style stay), and records drift.
 * The key must already exist: a missing key means the chart's layout changed and this script must follow it.
 */
function setString(doc: Document, path: string[], wanted: string, file: string, drift: Drift[]): void {
  const node = doc.getIn(path, true);
  if (!isScalar(node)) {
    throw new Error(
      `${file} has no scalar at ${path.join('.')}; the chart layout and scripts/chart-versions.ts disagree`,
    );
  }
  // A scalar holds a string, number, boolean or null; a tag written unquoted (e.g. 1.0) parses as a number.
  const value: unknown = node.value;
  const current =
    typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'boolean'
        ? `${value}`
        : undefined;
  if (current === wanted) return;
  drift.push({ file, path: path.join('.'), current, wanted });
  node.value = wanted;
}

/** Brings the chart under `root` in line with the package versions; writes only when `check` is false. */
export function syncChartVersions(root: string, options: { check: boolean }): ChartVersionsResult {
  const drift: Drift[] = [];

  const valuesFile = join(CHART_DIR, 'values.yaml');
  const values = loadYaml(join(root, valuesFile));
  for (const service of SERVICES) {
    setString(
      values,
      [service, 'image', 'tag'],
      readVersion(root, join('packages', service)),
      valuesFile,
      drift,
    );
  }

  const chartFile = join(CHART_DIR, 'Chart.yaml');
  const chart = loadYaml(join(root, chartFile));
  setString(chart, ['version'], readVersion(root, CHART_DIR), chartFile, drift);
  setString(chart, ['appVersion'], readVersion(root, join('packages', 'controller')), chartFile, drift);

  if (!options.check) {
    if (drift.some((d) => d.file === valuesFile))
      writeFileSync(join(root, valuesFile), values.toString(YAML_OUTPUT));
    if (drift.some((d) => d.file === chartFile))
      writeFileSync(join(root, chartFile), chart.toString(YAML_OUTPUT));
  }
  return { drift };
}

function main(argv: string[]): number {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    console.error(
      `chart-versions: unknown argument(s) ${unknown.join(' ')}; usage: chart-versions.ts [--check]`,
    );
    return 2;
  }
  const check = argv.includes('--check');
  const root = join(import.meta.dirname, '..');
  const { drift } = syncChartVersions(root, { check });
  for (const d of drift) {
    console.log(`chart-versions: ${d.file} ${d.path}: ${d.current ?? '(empty)'} -> ${d.wanted}`);
  }
  if (check && drift.length > 0) {
    console.error(
      'chart-versions: the chart is out of date with the package versions; run `pnpm chart:versions`',
    );
    return 1;
  }
  if (drift.length === 0) console.log('chart-versions: the chart matches the package versions');
  return 0;
}

if (import.meta.main) process.exit(main(process.argv.slice(2)));
