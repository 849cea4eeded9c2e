// CustomResourceDefinitions for integration suites: applied the way the chart's would be, and waited for.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ApiextensionsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { devclusterState, eventually } from './harness.ts';

/**
 * Server-side applies CustomResourceDefinitions (YAML, e.g. @kubevirt-ts/schema's crdYaml()) with the cluster's
 * kubectl and waits until each named one is Established. kubectl rather than client-node: the latter serializes
 * through its typed models and drops the `x-kubernetes-*` keys (int-or-string fields then fail validation).
 */
export async function applyCrds(
  kc: KubeConfig,
  crds: { yaml: string; names: readonly string[]; fieldManager?: string },
): Promise<void> {
  const kubectl = join((await devclusterState()).binDir, 'kubectl');
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      kubectl,
      [
        'apply',
        '--server-side',
        `--field-manager=${crds.fieldManager ?? 'kubevirt-ts-tests'}`,
        '--force-conflicts',
        '-f',
        '-',
      ],
      { env: process.env, timeout: 120_000 },
      (err, _stdout, stderr) =>
        err ? reject(new Error(`kubectl apply of the CRDs failed: ${stderr}`)) : resolve(),
    );
    child.stdin?.end(crds.yaml);
  });
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of crds.names) {
    await eventually(
      async () =>
        (await api.readCustomResourceDefinition({ name })).status?.conditions?.some(
          (c) => c.type === 'Established' && c.status === 'True',
        ) ?? false,
      { timeoutMs: 60_000, description: `CRD ${name} to be Established` },
    );
  }
}
