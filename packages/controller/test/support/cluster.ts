// What the controller's integration suites need from the devcluster they run in (`devcluster test`, as `make
// integration` runs them): the CRDs, the chart's RBAC for virt-controller and virt-handler (so the controllers run
// as their own ServiceAccount with exactly the permissions the chart grants), and clients.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { applyCrds, devclusterState, kubeConfigFromEnv } from '@kubevirt-ts/devcluster/testing';
import { crdYaml, crds } from '@kubevirt-ts/schema';
import { parseAllDocuments } from 'yaml';

export const integration = ['1', 'true'].includes(process.env.KUBEVIRT_TS_INTEGRATION ?? '');
export const needsCluster =
  '(needs a running devcluster: run under `devcluster test`, as make integration does)';

/** The namespace the chart's ServiceAccounts live in on devcluster. */
export const SERVICE_NAMESPACE = 'kubevirt';
const FIELD_MANAGER = 'kubevirt-ts-controller-tests';
const CHART_DIR = join(import.meta.dirname, '../../../../charts/kubevirt-ts');

export function adminKubeConfig(): KubeConfig {
  return kubeConfigFromEnv();
}

/** The kubeconfig devcluster wrote for one of our ServiceAccounts (virt-controller, virt-handler, virt-api). */
export async function serviceAccountKubeConfig(
  account: 'virt-controller' | 'virt-handler' | 'virt-api',
): Promise<KubeConfig> {
  const state = await devclusterState();
  const path = state.kubeconfigs.services[account];
  if (path === undefined)
    throw new Error(`devcluster wrote no kubeconfig for ServiceAccount ${account}; run devcluster up again`);
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** Applies the CRDs of @kubevirt-ts/schema (server-side, so repeating it is harmless) and waits until Established. */
export async function ensureCRDs(admin: KubeConfig): Promise<void> {
  await applyCrds(admin, { yaml: crdYaml(), names: crds().map((c) => c.metadata.name) });
}

/** Renders templates of the chart with the pinned helm (on PATH inside `devcluster test`, else the cache's). */
export async function renderChart(
  templates: string[],
  namespace = SERVICE_NAMESPACE,
): Promise<KubernetesObject[]> {
  const state = await devclusterState();
  const helm = process.env.HELM ?? join(state.binDir, 'helm');
  const args = [
    'template',
    'kt',
    CHART_DIR,
    '--namespace',
    namespace,
    '--kube-version',
    '1.35.0',
    ...templates.flatMap((t) => ['--show-only', t]),
  ];
  const r = spawnSync(helm, args, { encoding: 'utf8', env: { ...process.env, HELM_NO_PLUGINS: '1' } });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`helm ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  }
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

/** Server-side applies objects as the admin (idempotent; the test suites share one field manager). */
export async function apply(admin: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(admin);
  for (const obj of objects) {
    await api.patch(obj, undefined, undefined, FIELD_MANAGER, true, 'application/apply-patch+yaml');
  }
}

/** The chart's RBAC for virt-controller and virt-handler, bound to devcluster's ServiceAccounts. */
export async function applyChartRBAC(admin: KubeConfig): Promise<void> {
  const objects = await renderChart(['templates/controller-rbac.yaml', 'templates/handler-rbac.yaml']);
  // devcluster created the ServiceAccounts (with the tokens in its kubeconfigs); applying them again is harmless.
  await apply(admin, objects);
}

/**
 * What the chart's Role grants virt-controller in its install namespace, granted in a test namespace instead, so a
 * suite can use that namespace as the controllers' install namespace (its own KubeVirt CR, its own Lease) without
 * touching the shared `kubevirt` namespace.
 */
export async function grantInstallNamespaceRole(admin: KubeConfig, namespace: string): Promise<void> {
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const name = 'virt-controller-test-install';
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name, namespace },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'] },
        { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['kubevirt.io'], resources: ['kubevirts/status'], verbs: ['update', 'patch'] },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name: 'virt-controller', namespace: SERVICE_NAMESPACE }],
    },
  });
}
