// The chart's own life on a real cluster, with devcluster's pinned helm, as a user installs it: `helm install` → the
// stack Ready (the services as pods on the devcluster nodes) → every CRD Established → `kubectl explain` reads the
// schemas → `helm upgrade` with a changed value that shows on the cluster → `helm uninstall` removes the release and
// keeps the CRDs. The first e2e file (sequencer.ts orders them by name): it ends with no release installed and puts
// back what the install changed, and the 01-… files install the chart again through ensureStack.
import { execFile } from 'node:child_process';
import { rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  ApiregistrationV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1CustomResourceDefinition,
  type V1Pod,
} from '@kubernetes/client-node';
import {
  devclusterState,
  eventually,
  kubeConfigFromEnv,
  restoreServiceAccounts,
} from '@kubevirt-ts/devcluster/testing';
import {
  API_SERVICE,
  CHART_NAMESPACE,
  CHART_RELEASE,
  MUTATING_WEBHOOK,
  STACK_WORKLOADS,
  VALIDATING_WEBHOOK,
  chartDir,
  chartStatus,
  installChart,
  uninstallChart,
  waitForStack,
  type HelmOptions,
} from '@kubevirt-ts/devcluster/stack';
import type { ClusterState } from '@kubevirt-ts/devcluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_HOOK_TIMEOUT_MS, E2E_TEST_TIMEOUT_MS, REPO_ROOT, type CommandResult } from './support/stack.ts';

/** The CRDs the chart installs (its crd-*.yaml templates, generated from packages/schema). */
const CRDS = [
  'kubevirts.kubevirt.io',
  'virtualmachineclusterinstancetypes.instancetype.kubevirt.io',
  'virtualmachineclusterpreferences.instancetype.kubevirt.io',
  'virtualmachineinstancemigrations.kubevirt.io',
  'virtualmachineinstancereplicasets.kubevirt.io',
  'virtualmachineinstances.kubevirt.io',
  'virtualmachineinstancetypes.instancetype.kubevirt.io',
  'virtualmachinepreferences.instancetype.kubevirt.io',
  'virtualmachines.kubevirt.io',
];
const OUR_GROUPS = new Set(['kubevirt.io', 'instancetype.kubevirt.io']);
const OUR_PODS = 'app.kubernetes.io/name=kubevirt-ts';
/** The handler's --state-dir (a hostPath on the node, mapped into each devcluster node's root). */
const HANDLER_STATE_DIR = '/var/lib/kubevirt-ts/handler';
/** The values `helm upgrade` changes: one in the KubeVirt CR (through its hook), one on every object and pod. */
const UPGRADE_LABEL = 'kubevirt-ts-e2e-chart';
const UPGRADED_RATIO = 4;
const STACK_TIMEOUT_MS = 600_000;

let state: ClusterState;
let kc: KubeConfig;
let helm: HelmOptions;
let nodes: string[];

const apps = (): AppsV1Api => kc.makeApiClient(AppsV1Api);
const core = (): CoreV1Api => kc.makeApiClient(CoreV1Api);
const crdApi = (): ApiextensionsV1Api => kc.makeApiClient(ApiextensionsV1Api);

function kubectl(args: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      join(state.binDir, 'kubectl'),
      args,
      { env: { ...process.env, KUBECONFIG: helm.kubeconfig }, timeout: 120_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

const live = (pods: V1Pod[]): V1Pod[] => pods.filter((p) => !p.metadata?.deletionTimestamp);
const isReady = (p: V1Pod): boolean =>
  p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const component = (p: V1Pod): string | undefined => p.metadata?.labels?.['app.kubernetes.io/component'];

/** The chart's pods, terminating ones included. */
async function allOurPods(): Promise<V1Pod[]> {
  return (await core().listNamespacedPod({ namespace: CHART_NAMESPACE, labelSelector: OUR_PODS })).items;
}

/** The chart's pods that are not terminating. */
async function ourPods(): Promise<V1Pod[]> {
  return live(await allOurPods());
}

async function ourCrds(): Promise<V1CustomResourceDefinition[]> {
  const list = await crdApi().listCustomResourceDefinition();
  return list.items.filter((crd) => OUR_GROUPS.has(crd.spec.group));
}

const established = (crd: V1CustomResourceDefinition): boolean =>
  crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;

async function kubevirtConfiguration(): Promise<Record<string, unknown> | undefined> {
  const cr = (await kc
    .makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace: CHART_NAMESPACE,
      plural: 'kubevirts',
      name: 'kubevirt',
    })
    .catch(() => undefined)) as
    { spec?: { configuration?: { developerConfiguration?: unknown } } } | undefined;
  return cr?.spec?.configuration?.developerConfiguration as Record<string, unknown> | undefined;
}

beforeAll(async () => {
  state = await devclusterState();
  kc = kubeConfigFromEnv();
  helm = { helm: join(state.binDir, 'helm'), kubeconfig: process.env.KUBECONFIG ?? state.kubeconfigs.admin };
  nodes = state.nodes?.nodes.map((n) => n.name) ?? [];
  if (nodes.length < 2) {
    throw new Error(
      `the chart test needs a devcluster with 2 nodes; this one has ${nodes.length} (devcluster down, then run the suite through make integration)`,
    );
  }
  // A devcluster kept from an earlier run may still have the release: start from none, so install is an install.
  await uninstallChart({ ...helm, wait: true });
  // An earlier handler's empty checkpoint folder would let the hostPath check below pass without this install's
  // handler writing anything; one holding checkpoints stays (rmdir refuses), and so does the check's meaning.
  for (const node of state.nodes?.nodes ?? []) {
    await rmdir(join(node.root, HANDLER_STATE_DIR, 'ghost-records')).catch(() => undefined);
  }
}, E2E_HOOK_TIMEOUT_MS);

afterAll(async () => {
  // Leave no release behind even when a test failed half-way, and put back what the install took over or made:
  // devcluster's service accounts (the chart adopts and then deletes them), the KubeVirt CR its hook created and
  // the certificate Secrets virt-controller issued. The CRDs stay, as they do after any uninstall.
  if (!helm) return;
  await uninstallChart({ ...helm, wait: true });
  await eventually(async () => (await allOurPods()).length === 0, {
    timeoutMs: 180_000,
    description: `the pods of the chart in ${CHART_NAMESPACE} to be gone`,
  });
  await kc
    .makeApiClient(CustomObjectsApi)
    .deleteNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace: CHART_NAMESPACE,
      plural: 'kubevirts',
      name: 'kubevirt',
    })
    .catch(() => undefined);
  await core().deleteCollectionNamespacedSecret({
    namespace: CHART_NAMESPACE,
    labelSelector: 'app.kubernetes.io/managed-by=virt-controller,app.kubernetes.io/part-of=kubevirt-ts',
  });
  await restoreServiceAccounts();
}, E2E_HOOK_TIMEOUT_MS);

describe('the Helm chart on devcluster', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('helm install succeeds and the stack becomes ready, its services running as pods on the devcluster nodes', async () => {
    expect(await chartStatus(helm)).toBeUndefined();
    await installChart({ ...helm, chartDir: chartDir(REPO_ROOT), set: { useEmulation: true } });
    expect(await chartStatus(helm)).toMatchObject({ status: 'deployed', revision: 1 });

    await waitForStack(kc, { nodes, timeoutMs: STACK_TIMEOUT_MS });
    const pods = await ourPods();
    for (const pod of pods) {
      expect(nodes, `pod ${pod.metadata?.name} runs on a devcluster node`).toContain(pod.spec?.nodeName);
    }
    const ready = pods.filter(isReady);
    expect(ready.filter((p) => component(p) === 'controller')).toHaveLength(2);
    expect(ready.filter((p) => component(p) === 'api')).toHaveLength(2);
    const handlerNodes = ready.filter((p) => component(p) === 'handler').map((p) => p.spec?.nodeName);
    expect(handlerNodes.sort()).toEqual([...nodes].sort());

    // The handler's state folder is a hostPath: on each node (under the devcluster node's root) the handler made
    // its checkpoint folder there, where it outlives the handler pod.
    for (const node of state.nodes?.nodes ?? []) {
      const records = await stat(join(node.root, HANDLER_STATE_DIR, 'ghost-records'));
      expect(records.isDirectory(), `${HANDLER_STATE_DIR}/ghost-records on ${node.name}`).toBe(true);
    }
  });

  it('every CRD of the chart becomes Established', async () => {
    const crds = await eventually(
      async () => {
        const now = await ourCrds();
        return now.length === CRDS.length && now.every(established) ? now : undefined;
      },
      { timeoutMs: 60_000, description: 'the CRDs of the chart to be Established' },
    );
    expect(crds.map((c) => c.metadata?.name).sort()).toEqual(CRDS);
    for (const crd of crds) {
      expect(crd.metadata?.annotations?.['helm.sh/resource-policy'], crd.metadata?.name).toBe('keep');
    }
  });

  it('kubectl explain vm.spec.runStrategy shows the field from the CRD schema', async () => {
    const r = await kubectl(['explain', 'vm.spec.runStrategy']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/KIND:\s+VirtualMachine/);
    expect(r.stdout).toMatch(/VERSION:\s+v1/);
    expect(r.stdout).toMatch(/FIELD:\s+runStrategy <string>/);
    expect(r.stdout).toContain('RerunOnFailure');
  });

  it('helm upgrade with changed values: a new revision, the values on the cluster, the stack ready again', async () => {
    const before = await kubevirtConfiguration();
    expect(before).toMatchObject({ useEmulation: true, cpuAllocationRatio: 10 });

    await installChart({
      ...helm,
      chartDir: chartDir(REPO_ROOT),
      set: {
        useEmulation: true,
        'kubevirt.cpuAllocationRatio': UPGRADED_RATIO,
        [`global.commonLabels.${UPGRADE_LABEL}`]: 'upgraded',
      },
    });
    expect(await chartStatus(helm)).toMatchObject({ status: 'deployed', revision: 2 });

    // The post-upgrade hook replaced the KubeVirt CR with the new configuration.
    expect(await kubevirtConfiguration()).toMatchObject({
      useEmulation: true,
      cpuAllocationRatio: UPGRADED_RATIO,
    });
    // The workloads carry the new label, and their pods were replaced by ones that carry it too.
    for (const name of [STACK_WORKLOADS.controller, STACK_WORKLOADS.api]) {
      const d = await apps().readNamespacedDeployment({ name, namespace: CHART_NAMESPACE });
      expect(d.metadata?.labels?.[UPGRADE_LABEL], name).toBe('upgraded');
    }
    const ds = await apps().readNamespacedDaemonSet({
      name: STACK_WORKLOADS.handler,
      namespace: CHART_NAMESPACE,
    });
    expect(ds.spec?.template.metadata?.labels?.[UPGRADE_LABEL]).toBe('upgraded');
    await eventually(
      async () => {
        const pods = await ourPods();
        const upgraded = pods.filter((p) => p.metadata?.labels?.[UPGRADE_LABEL] === 'upgraded');
        return pods.length > 0 &&
          upgraded.length === pods.length &&
          upgraded.filter((p) => component(p) === 'handler' && isReady(p)).length === nodes.length
          ? upgraded
          : undefined;
      },
      {
        timeoutMs: STACK_TIMEOUT_MS,
        intervalMs: 2_000,
        description: 'every pod of the chart to be replaced by one of the upgraded revision',
      },
    );
    await waitForStack(kc, { nodes, timeoutMs: STACK_TIMEOUT_MS });
  });

  it('helm uninstall removes the release and everything it installed except the CRDs', async () => {
    expect(await uninstallChart({ ...helm, wait: true })).toBe(true);
    expect(await chartStatus(helm)).toBeUndefined();

    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const gone = async (read: () => Promise<unknown>): Promise<boolean> =>
      read().then(
        () => false,
        () => true,
      );
    await eventually(
      async () =>
        (await gone(() =>
          apps().readNamespacedDeployment({ name: STACK_WORKLOADS.controller, namespace: CHART_NAMESPACE }),
        )) &&
        (await gone(() =>
          apps().readNamespacedDeployment({ name: STACK_WORKLOADS.api, namespace: CHART_NAMESPACE }),
        )) &&
        (await gone(() =>
          apps().readNamespacedDaemonSet({ name: STACK_WORKLOADS.handler, namespace: CHART_NAMESPACE }),
        )) &&
        (await gone(() => admission.readMutatingWebhookConfiguration({ name: MUTATING_WEBHOOK }))) &&
        (await gone(() => admission.readValidatingWebhookConfiguration({ name: VALIDATING_WEBHOOK }))) &&
        (await gone(() => kc.makeApiClient(ApiregistrationV1Api).readAPIService({ name: API_SERVICE }))),
      {
        timeoutMs: 120_000,
        description: `the workloads, webhooks and APIService of release ${CHART_RELEASE} to be deleted`,
      },
    );
    await eventually(async () => (await allOurPods()).length === 0, {
      timeoutMs: 180_000,
      intervalMs: 1_000,
      description: `the pods of the chart in ${CHART_NAMESPACE} to be gone`,
    });

    // The CRDs stay (helm.sh/resource-policy: keep), still serving, so no VM a user stored is lost.
    const crds = await ourCrds();
    expect(crds.map((c) => c.metadata?.name).sort()).toEqual(CRDS);
    expect(crds.every(established)).toBe(true);
    const r = await kubectl(['get', 'vm', '--all-namespaces']);
    expect(r.stderr).not.toMatch(/the server doesn't have a resource type/);
    expect(r.code).toBe(0);
  });
});
