// The kubevirt-ts chart on a devcluster, installed the way a user installs it on any cluster (`helm upgrade
// --install`), and a wait until the stack serves: both Deployments and the DaemonSet Ready on every node, the
// certificates issued (the webhooks carry a CA bundle) and the aggregated API Available. While waiting it says
// what it is waiting for, and when a pod of ours is failing it says why, with the pod's last log lines.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import {
  ApiregistrationV1Api,
  AppsV1Api,
  AdmissionregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { DevclusterError, errorMessage } from '../errors.ts';

export const CHART_RELEASE = 'kubevirt-ts';
export const CHART_NAMESPACE = 'kubevirt';
export const API_SERVICE = 'v1.subresources.kubevirt.io';
export const MUTATING_WEBHOOK = 'virt-api-mutator';
export const VALIDATING_WEBHOOK = 'virt-api-validator';
/** The chart's workloads, by the names its templates give them. */
export const STACK_WORKLOADS = {
  controller: 'virt-controller',
  api: 'virt-api',
  handler: 'virt-handler',
} as const;

/** The chart in a working tree. */
export function chartDir(repoRoot: string): string {
  return join(repoRoot, 'charts', 'kubevirt-ts');
}

export interface HelmOptions {
  /** The helm binary (devcluster's pinned one: `<binDir>/helm`). */
  helm: string;
  /** A kubeconfig that reaches the cluster from where this process runs. */
  kubeconfig: string;
  release?: string;
  namespace?: string;
}

export interface InstallChartOptions extends HelmOptions {
  chartDir: string;
  /** `--set` values, e.g. `{ useEmulation: true }`. */
  set?: Record<string, string | number | boolean>;
  timeoutMs?: number;
}

export interface HelmResult {
  stdout: string;
  stderr: string;
}

async function runHelm(options: HelmOptions, args: string[], timeoutMs = 300_000): Promise<HelmResult> {
  const argv = [...args, '--kubeconfig', options.kubeconfig];
  return new Promise((resolve, reject) => {
    execFile(
      options.helm,
      argv,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, HELM_KUBECONTEXT: '' } },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(
            new DevclusterError(
              `helm not found at ${options.helm}`,
              'run `make setup` (it fetches the pinned helm)',
            ),
          );
          return;
        }
        reject(
          new DevclusterError(
            `helm ${args.slice(0, 2).join(' ')} failed: ${(stderr || errorMessage(err)).trim()}`,
            'see the message above; `helm status kubevirt-ts -n kubevirt` shows the release',
          ),
        );
      },
    );
  });
}

function setFlags(set: Record<string, string | number | boolean> = {}): string[] {
  return Object.entries(set).flatMap(([key, value]) =>
    typeof value === 'string' ? ['--set-string', `${key}=${value}`] : ['--set', `${key}=${String(value)}`],
  );
}

/**
 * `helm upgrade --install` of the chart. `--take-ownership` because devcluster creates the `kubevirt` namespace's
 * ServiceAccounts before any chart exists (to mint the tokens of services run from source): the chart adopts them
 * instead of refusing to install, and `--force-conflicts` lets helm's server-side apply take over the label
 * (`app.kubernetes.io/managed-by`) that devcluster's field manager set on them. Helm's own wait stays off; waitForStack() waits and says what for.
 */
export async function installChart(options: InstallChartOptions): Promise<HelmResult> {
  const release = options.release ?? CHART_RELEASE;
  const namespace = options.namespace ?? CHART_NAMESPACE;
  return runHelm(
    options,
    [
      'upgrade',
      '--install',
      release,
      options.chartDir,
      '--namespace',
      namespace,
      '--create-namespace',
      '--take-ownership',
      '--force-conflicts',
      ...setFlags(options.set),
    ],
    options.timeoutMs,
  );
}

/**
 * `helm template` of the chart: the manifests an install would apply (hooks included), as one YAML stream, for
 * callers that run some components from source instead of as the chart's pods (the control-plane benchmark).
 */
export async function renderChart(options: InstallChartOptions): Promise<string> {
  const { stdout } = await runHelm(
    options,
    [
      'template',
      options.release ?? CHART_RELEASE,
      options.chartDir,
      '--namespace',
      options.namespace ?? CHART_NAMESPACE,
      ...setFlags(options.set),
    ],
    options.timeoutMs,
  );
  return stdout;
}

/** `helm uninstall` (the CRDs and the KubeVirt CR stay, as the chart documents); false when nothing was installed. */
export async function uninstallChart(options: HelmOptions & { wait?: boolean }): Promise<boolean> {
  if (!(await chartStatus(options))) return false;
  await runHelm(options, [
    'uninstall',
    options.release ?? CHART_RELEASE,
    '--namespace',
    options.namespace ?? CHART_NAMESPACE,
    ...(options.wait ? ['--wait'] : []),
  ]);
  return true;
}

export interface ChartStatus {
  status: string;
  revision: number;
  chartVersion: string;
}

/** The release's status, or undefined when it is not installed. */
export async function chartStatus(options: HelmOptions): Promise<ChartStatus | undefined> {
  const release = options.release ?? CHART_RELEASE;
  const namespace = options.namespace ?? CHART_NAMESPACE;
  const { stdout } = await runHelm(options, ['list', '--namespace', namespace, '--output', 'json']);
  const list = JSON.parse(stdout || '[]') as {
    name: string;
    status: string;
    revision: string;
    chart: string;
  }[];
  const entry = list.find((r) => r.name === release);
  return entry
    ? { status: entry.status, revision: Number(entry.revision), chartVersion: entry.chart }
    : undefined;
}

export interface StackReadiness {
  ready: boolean;
  /** One line per part that is not ready yet, saying what is missing. */
  waitingFor: string[];
  /** Pods of ours that are failing, with the reason (image, crash, probe). */
  failing: { pod: string; node: string | undefined; reason: string }[];
}

interface Clients {
  apps: AppsV1Api;
  core: CoreV1Api;
  registration: ApiregistrationV1Api;
  admission: AdmissionregistrationV1Api;
}

function clients(kc: KubeConfig): Clients {
  return {
    apps: kc.makeApiClient(AppsV1Api),
    core: kc.makeApiClient(CoreV1Api),
    registration: kc.makeApiClient(ApiregistrationV1Api),
    admission: kc.makeApiClient(AdmissionregistrationV1Api),
  };
}

/** Why a pod is not working, as kubectl would summarise it; undefined for a pod that is fine or just starting. */
export function podTrouble(pod: V1Pod): string | undefined {
  for (const status of [
    ...(pod.status?.initContainerStatuses ?? []),
    ...(pod.status?.containerStatuses ?? []),
  ]) {
    const waiting = status.state?.waiting;
    if (waiting?.reason && waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') {
      return `${status.name}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`;
    }
    const last = status.lastState?.terminated;
    if (status.restartCount > 0 && last) {
      return `${status.name}: restarted ${status.restartCount}x, last exit ${last.exitCode}${last.reason ? ` ${last.reason}` : ''}`;
    }
  }
  const unschedulable = pod.status?.conditions?.find(
    (c) => c.type === 'PodScheduled' && c.status === 'False',
  );
  if (unschedulable?.message) return `not scheduled: ${unschedulable.message}`;
  return undefined;
}

/** Where the stack stands now (one round of reads; pure apart from them). */
export async function stackReadiness(
  kc: KubeConfig,
  options: { namespace?: string; nodes: number | string[] },
): Promise<StackReadiness> {
  const namespace = options.namespace ?? CHART_NAMESPACE;
  const c = clients(kc);
  const waitingFor: string[] = [];
  for (const name of [STACK_WORKLOADS.controller, STACK_WORKLOADS.api]) {
    const d = await c.apps.readNamespacedDeployment({ name, namespace }).catch(() => undefined);
    if (!d) {
      waitingFor.push(`Deployment ${name} to exist`);
      continue;
    }
    const want = d.spec?.replicas ?? 1;
    const ready = d.status?.readyReplicas ?? 0;
    const updated = d.status?.updatedReplicas ?? 0;
    if (ready < want || updated < want) waitingFor.push(`${name}: ${ready}/${want} pods Ready`);
  }
  // Counted per node from the pods, not from the DaemonSet's totals: a Node object some other suite left behind
  // (never Ready, no agent) must not keep the stack from being ready on the nodes that exist.
  const ds = await c.apps
    .readNamespacedDaemonSet({ name: STACK_WORKLOADS.handler, namespace })
    .catch(() => undefined);
  if (!ds) waitingFor.push(`DaemonSet ${STACK_WORKLOADS.handler} to exist`);
  else {
    const handlers = await c.core.listNamespacedPod({
      namespace,
      labelSelector: 'app.kubernetes.io/name=kubevirt-ts,app.kubernetes.io/component=handler',
    });
    const readyOn = new Set(
      handlers.items
        .filter(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            p.status?.conditions?.some((cond) => cond.type === 'Ready' && cond.status === 'True'),
        )
        .map((p) => p.spec?.nodeName ?? ''),
    );
    const want = typeof options.nodes === 'number' ? undefined : options.nodes;
    const missing = want ? want.filter((n) => !readyOn.has(n)) : [];
    const count = typeof options.nodes === 'number' ? options.nodes : options.nodes.length;
    if (readyOn.size < count || missing.length > 0) {
      waitingFor.push(
        `${STACK_WORKLOADS.handler}: Ready on ${readyOn.size}/${count} nodes${missing.length > 0 ? ` (not on ${missing.join(', ')})` : ''}`,
      );
    }
  }
  const hook = await c.admission
    .readMutatingWebhookConfiguration({ name: MUTATING_WEBHOOK })
    .catch(() => undefined);
  if (!hook?.webhooks?.every((w) => Boolean(w.clientConfig.caBundle))) {
    waitingFor.push('virt-controller to issue the certificates (CA bundle in the webhooks)');
  }
  const apiService = await c.registration.readAPIService({ name: API_SERVICE }).catch(() => undefined);
  const available = apiService?.status?.conditions?.find((cond) => cond.type === 'Available');
  if (available?.status !== 'True') {
    waitingFor.push(
      `APIService ${API_SERVICE} to be Available${available?.message ? ` (now: ${available.message})` : ''}`,
    );
  }
  const pods = await c.core.listNamespacedPod({
    namespace,
    labelSelector: 'app.kubernetes.io/name=kubevirt-ts',
  });
  const failing = pods.items.flatMap((pod) => {
    const reason = podTrouble(pod);
    return reason ? [{ pod: pod.metadata?.name ?? '?', node: pod.spec?.nodeName, reason }] : [];
  });
  return { ready: waitingFor.length === 0, waitingFor, failing };
}

export interface WaitForStackOptions {
  namespace?: string;
  /** The nodes that must each run a Ready virt-handler: their names, or how many. */
  nodes: number | string[];
  timeoutMs?: number;
  /** Called with a line whenever what is being waited for changes. */
  progress?: (line: string) => void;
}

/** Resolves once the stack serves; rejects after the deadline naming what never became ready. */
export async function waitForStack(kc: KubeConfig, options: WaitForStackOptions): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  let last = '';
  for (;;) {
    let now: StackReadiness;
    try {
      now = await stackReadiness(kc, options);
    } catch (err) {
      now = { ready: false, waitingFor: [`the API server (${errorMessage(err)})`], failing: [] };
    }
    if (now.ready) return;
    const lines = [
      `waiting for ${now.waitingFor.join('; ')}`,
      ...now.failing.map((f) => `  pod ${f.pod}${f.node ? ` on ${f.node}` : ''}: ${f.reason}`),
    ];
    const text = lines.join('\n');
    if (text !== last) options.progress?.(text);
    last = text;
    if (Date.now() > deadline) {
      throw new DevclusterError(
        `the kubevirt-ts stack did not become ready: ${lines.join('; ')}`,
        `kubectl -n ${options.namespace ?? CHART_NAMESPACE} get pods,ds,deploy; kubectl -n ${options.namespace ?? CHART_NAMESPACE} logs POD`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

export interface EnsureStackOptions {
  /** The devcluster's binaries folder (helm). */
  binDir: string;
  kubeconfig: string;
  kc: KubeConfig;
  repoRoot: string;
  /** The nodes that must each run a Ready virt-handler: their names, or how many. */
  nodes: number | string[];
  /** Root of the devcluster cache: the nodes' image store is its `images/` folder. */
  cacheRoot: string;
  progress?: (line: string) => void;
  timeoutMs?: number;
}

/** The test guest's image as the examples name it. */
export const TEST_GUEST_IMAGE = 'registry.kubevirt-ts.dev/test-guest:latest';

/**
 * The stack on a devcluster, ready for VMs: the test guest in the nodes' image store, the chart installed (only
 * when the release is not deployed: an upgrade replaces the KubeVirt CR through its hook, which briefly puts the
 * services on built-in defaults) with useEmulation=true, and everything Ready. Returns whether it installed.
 */
export async function ensureStack(options: EnsureStackOptions): Promise<boolean> {
  const { ensureTestGuestImage } = await import('../node/images.ts');
  await ensureTestGuestImage(
    join(options.cacheRoot, 'images'),
    TEST_GUEST_IMAGE,
    options.progress ?? (() => undefined),
  );
  const helm = { helm: join(options.binDir, 'helm'), kubeconfig: options.kubeconfig };
  const status = await chartStatus(helm);
  const install = status?.status !== 'deployed';
  if (install) {
    options.progress?.(`helm install ${CHART_RELEASE} (namespace ${CHART_NAMESPACE}, useEmulation=true)`);
    await installChart({ ...helm, chartDir: chartDir(options.repoRoot), set: { useEmulation: true } });
  }
  await waitForStack(options.kc, {
    nodes: options.nodes,
    timeoutMs: options.timeoutMs ?? 300_000,
    ...(options.progress ? { progress: options.progress } : {}),
  });
  return install;
}
