import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHART_DIR, SERVICES, syncChartVersions } from './chart-versions.ts';

const repoRoot = join(import.meta.dirname, '..');
const script = join(import.meta.dirname, 'chart-versions.ts');

/** A throwaway copy of what the script reads: the chart and each service's package.json. */
function makeFixture(): string {
  const root = mkdtempSync(join(tmpdir(), 'chart-versions-'));
  cpSync(join(repoRoot, CHART_DIR), join(root, CHART_DIR), {
    recursive: true,
    filter: (src) => !src.includes('node_modules') && !src.includes(`${CHART_DIR}/test`),
  });
  for (const service of SERVICES) {
    mkdirSync(join(root, 'packages', service), { recursive: true });
    cpSync(
      join(repoRoot, 'packages', service, 'package.json'),
      join(root, 'packages', service, 'package.json'),
    );
  }
  return root;
}

function setVersion(root: string, packageDir: string, version: string): void {
  const file = join(root, packageDir, 'package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...pkg, version }, null, 2));
}

/** Lines of `after` that differ from `before` (both files keep their line count when only values change). */
function changedLines(before: string, after: string): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  expect(b).toHaveLength(a.length);
  return b.filter((line, i) => line !== a[i]);
}

describe('chart-versions', () => {
  let root: string;
  beforeEach(() => {
    root = makeFixture();
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('finds the repository chart in step with the package versions', () => {
    expect(syncChartVersions(repoRoot, { check: true }).drift).toEqual([]);
  });

  it('writes a bumped service version into that service image tag only, keeping every comment', () => {
    const valuesFile = join(root, CHART_DIR, 'values.yaml');
    const before = readFileSync(valuesFile, 'utf8');
    setVersion(root, 'packages/handler', '3.4.5');

    const { drift } = syncChartVersions(root, { check: false });

    expect(drift.map((d) => [d.path, d.wanted])).toEqual([['handler.image.tag', '3.4.5']]);
    const after = readFileSync(valuesFile, 'utf8');
    expect(changedLines(before, after)).toEqual([`    tag: '3.4.5'`]);
    expect(after.match(/^\s*#.*$/gm)).toEqual(before.match(/^\s*#.*$/gm));
    expect(syncChartVersions(root, { check: true }).drift).toEqual([]);
  });

  it('keeps Chart.yaml version on the chart package and appVersion on the controller', () => {
    const chartFile = join(root, CHART_DIR, 'Chart.yaml');
    const before = readFileSync(chartFile, 'utf8');
    setVersion(root, CHART_DIR, '2.0.0');
    setVersion(root, 'packages/controller', '1.7.0');

    const { drift } = syncChartVersions(root, { check: false });

    expect(drift.map((d) => d.path).sort()).toEqual(['appVersion', 'controller.image.tag', 'version']);
    expect(changedLines(before, readFileSync(chartFile, 'utf8'))).toEqual([
      `version: '2.0.0'`,
      `appVersion: '1.7.0'`,
    ]);
  });

  it('only reports in check mode, writing nothing', () => {
    const valuesFile = join(root, CHART_DIR, 'values.yaml');
    const before = readFileSync(valuesFile, 'utf8');
    setVersion(root, 'packages/launcher', '0.9.0');

    const { drift } = syncChartVersions(root, { check: true });

    expect(drift).toEqual([
      { file: join(CHART_DIR, 'values.yaml'), path: 'launcher.image.tag', current: '0.1.0', wanted: '0.9.0' },
    ]);
    expect(readFileSync(valuesFile, 'utf8')).toBe(before);
  });

  it('names the missing key when the chart layout no longer has an image tag', () => {
    const valuesFile = join(root, CHART_DIR, 'values.yaml');
    writeFileSync(valuesFile, readFileSync(valuesFile, 'utf8').replace(/^api:$/m, 'apiServer:'));
    expect(() => syncChartVersions(root, { check: true })).toThrow(
      /values\.yaml has no scalar at api\.image\.tag/,
    );
  });

  it('names the package whose version is missing', () => {
    const file = join(root, 'packages', 'api', 'package.json');
    writeFileSync(file, JSON.stringify({ name: '@kubevirt-ts/api' }));
    expect(() => syncChartVersions(root, { check: true })).toThrow(
      /packages\/api\/package\.json has no "version"/,
    );
  });

  it('exits 0 from the command line with --check on the repository, 2 on an unknown flag', () => {
    const ok = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(ok.status, ok.stderr).toBe(0);
    const bad = spawnSync(process.execPath, [script, '--chek'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown argument(s) --chek');
  });
});
