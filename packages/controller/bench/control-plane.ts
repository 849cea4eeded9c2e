// virt-controller's control-plane benchmark (issue 8), on SIMULATED nodes: the devcluster's node agents run in
// simulate mode (`devcluster test --simulate-pods`), so a launcher pod bound to a node goes Running at once and no
// launcher, libvirt or QEMU ever runs. What it measures is the control plane alone: N VMIs created at once, then
// - creation → Scheduled per VMI, P50/P95: as this client saw it through a watch (ms), and from the VMI's own
//   creationTimestamp and phaseTransitionTimestamps (the API's 1-second resolution);
// - API writes per VMI by verb and resource: every client's, from the API server's apiserver_request_total
//   (virt-controller, the node agents' pod status, the scheduler's bindings; admission by virt-api writes nothing),
//   and virt-controller's own count (its kubevirt_controller_api_writes_total);
// - where the time goes: the P50/P95 of each step (controller, scheduler, node agent, controller) from the objects'
//   own timestamps.
// Setup: the chart rendered with `helm template` and applied without its workloads (CRDs, RBAC, webhooks, the
// KubeVirt CR); virt-controller and virt-api run from source as processes with the chart's flags and environment,
// as their own ServiceAccounts; virt-api is reached through a selector-less Service (devcluster's expose). In place
// of virt-handler (whose DaemonSet pods would be simulated too), the bench registers the handler's device-plugin
// resources (kvm, tun, vhost-net) with each node agent and writes the handler's schedulable label and heartbeat on
// each node as the virt-handler ServiceAccount. Nothing here boots a VM; the density benchmark
// (packages/devcluster bench:density) measures real ones.
// Usage: pnpm --filter @kubevirt-ts/controller bench [--count N]   (wraps itself in `devcluster test --simulate-pods`)
//        inside such a devcluster: node --conditions=@kubevirt-ts/source bench/control-plane.ts --count N
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Watch,
  type V1Container,
  type V1Deployment,
} from '@kubernetes/client-node';
import { expose, healthyDevices, nodePaths, SampleDevicePlugin } from '@kubevirt-ts/devcluster';
import {
  CHART_NAMESPACE,
  chartDir,
  formatTable,
  percentile,
  readWriteCounts,
  renderChart,
  writesBetween,
  writesTable,
  API_SERVICE,
  benchVmi,
  MUTATING_WEBHOOK,
} from '@kubevirt-ts/devcluster/stack';
import { devclusterState, eventually, kubeConfigFromEnv } from '@kubevirt-ts/devcluster/testing';
import { mergePatchOptions } from '@kubevirt-ts/runtime';
import { parseAllDocuments } from 'yaml';
import { DEVICE_RESOURCES } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: process.env.KUBEVIRT_TS_CONTROL_PLANE_COUNT ?? '200' },
    'timeout-seconds': { type: 'string', default: '900' },
  },
});
const COUNT = Number(values.count);
if (!Number.isInteger(COUNT) || COUNT < 1)
  throw new Error(`--count must be a positive whole number, not ${values.count}`);
const TIMEOUT_MS = Number(values['timeout-seconds']) * 1000;
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OUT_DIR = join(REPO_ROOT, '.bench', 'control-plane');
/** The chart's health ports of the two services (charts/kubevirt-ts/templates/_helpers.tpl). */
const CONTROLLER_HEALTH = 'http://127.0.0.1:8186';
const API_HEALTH = 'http://127.0.0.1:8187';

const log = (line: string) => process.stderr.write(`control-plane: ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** `kubectl apply --server-side` of manifests (kubectl keeps the CRDs' x-kubernetes-* keys intact). */
function kubectlApply(kubectl: string, docs: Manifest[]): void {
  const input = docs.map((d) => JSON.stringify(d)).join('\n');
  const r = spawnSync(
    kubectl,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=control-plane-bench', '-f', '-'],
    { input, encoding: 'utf8', env: process.env },
  );
  if (r.status !== 0) throw new Error(`kubectl apply failed: ${r.stderr || r.error?.message}`);
}

/** A service's process, started as the chart's Deployment would start its container. */
interface ServiceProcess {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

function startFromChart(
  deployment: V1Deployment,
  kubeconfig: string,
  logFile: string,
  main: string,
): ServiceProcess {
  const container: V1Container | undefined = deployment.spec?.template.spec?.containers[0];
  const name = deployment.metadata?.name ?? '';
  if (!container) throw new Error(`the chart's Deployment ${name} has no container`);
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (field === 'metadata.namespace') env[e.name] = CHART_NAMESPACE;
    else if (field === 'metadata.name') env[e.name] = `${name}-bench`;
  }
  const out = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    ['--conditions=@kubevirt-ts/source', main, ...(container.args ?? []), `--kubeconfig=${kubeconfig}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    if (!stopping) log(`${name} exited (${signal ?? code}); its log: ${logFile}`);
  });
  let stopping = false;
  return {
    name,
    child,
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function ready(url: string): Promise<boolean> {
  return fetch(`${url}/readyz`).then(
    (r) => r.ok,
    () => false,
  );
}

/** virt-controller's own write counter (kubevirt_controller_api_writes_total), keyed "verb resource". */
async function controllerWrites(): Promise<Map<string, number>> {
  const text = await (await fetch(`${CONTROLLER_HEALTH}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('kubevirt_controller_api_writes_total{')) continue;
    const labels = new Map([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
    const key = `${labels.get('verb') ?? ''} ${labels.get('resource') ?? ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

interface VmiEvent {
  metadata?: { name?: string; uid?: string; creationTimestamp?: string | Date };
  status?: {
    phase?: string;
    phaseTransitionTimestamps?: { phase?: string; phaseTransitionTimestamp?: string | Date }[];
  };
}

const PAST_SCHEDULED = new Set(['Scheduled', 'Running', 'Succeeded', 'Failed']);
const seconds = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(2));
const timeOf = (t: string | Date | undefined) => (t === undefined ? Number.NaN : new Date(t).getTime());

async function main(): Promise<number> {
  const state = await devclusterState();
  if (!state.nodes?.simulatePods) {
    throw new Error(
      'the control-plane benchmark needs nodes in simulate mode, or it would start hundreds of real launcher ' +
        'pods: run it with `pnpm --filter @kubevirt-ts/controller bench` (devcluster test --simulate-pods)',
    );
  }
  const nodes = state.nodes.nodes;
  const kc = kubeConfigFromEnv();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const kubectl = join(state.binDir, 'kubectl');
  const serviceKubeconfig = (account: string) => {
    const path = state.kubeconfigs.services[account];
    if (path === undefined) throw new Error(`devcluster wrote no kubeconfig for ${account}`);
    return path;
  };
  await mkdir(OUT_DIR, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];

  try {
    // ---- the chart, without its workloads ----
    log('rendering the chart (useEmulation=true) and applying it without its Deployments and DaemonSet');
    const rendered = parseAllDocuments(
      await renderChart({
        helm: join(state.binDir, 'helm'),
        kubeconfig: process.env.KUBECONFIG ?? state.kubeconfigs.admin,
        chartDir: chartDir(REPO_ROOT),
        set: { useEmulation: true },
      }),
    )
      .map((d) => d.toJS() as Manifest | null)
      .filter((d): d is Manifest => d?.kind !== undefined);
    const deployment = (name: string) => {
      const d = rendered.find((m) => m.kind === 'Deployment' && m.metadata?.name === name);
      if (!d) throw new Error(`the chart renders no Deployment ${name}`);
      return d as V1Deployment;
    };
    const skipped = new Set(['Deployment', 'DaemonSet', 'PodDisruptionBudget', 'APIService']);
    const crds = rendered.filter((m) => m.kind === 'CustomResourceDefinition');
    kubectlApply(kubectl, crds);
    const wait = spawnSync(
      kubectl,
      [
        'wait',
        '--for=condition=Established',
        '--timeout=120s',
        ...crds.map((c) => `crd/${c.metadata?.name}`),
      ],
      { encoding: 'utf8', env: process.env },
    );
    if (wait.status !== 0) throw new Error(`the CRDs did not become Established: ${wait.stderr}`);
    kubectlApply(
      kubectl,
      rendered.filter(
        (m) =>
          m.kind !== 'CustomResourceDefinition' &&
          !skipped.has(m.kind ?? '') &&
          // virt-api's Service selects the chart's pods; expose() below makes one that reaches the process.
          !(m.kind === 'Service' && m.metadata?.name === 'virt-api'),
      ),
    );

    // ---- virt-controller and virt-api from source ----
    const controller = startFromChart(
      deployment('virt-controller'),
      serviceKubeconfig('virt-controller'),
      join(OUT_DIR, 'virt-controller.log'),
      fileURLToPath(new URL('../src/main.ts', import.meta.url)),
    );
    cleanups.push(() => controller.stop());
    const api = startFromChart(
      deployment('virt-api'),
      serviceKubeconfig('virt-api'),
      join(OUT_DIR, 'virt-api.log'),
      fileURLToPath(new URL('../../api/src/main.ts', import.meta.url)),
    );
    cleanups.push(() => api.stop());
    await expose(kc, { name: 'virt-api', namespace: CHART_NAMESPACE, port: 443, targetPort: 8443 });
    const apiService = rendered.filter((m) => m.kind === 'APIService');
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    log('waiting for virt-controller to lead and issue certificates, and for virt-api to serve');
    await eventually(
      async () => {
        const hook = await admission.readMutatingWebhookConfiguration({ name: MUTATING_WEBHOOK });
        return (
          (await ready(CONTROLLER_HEALTH)) &&
          (await ready(API_HEALTH)) &&
          (hook.webhooks ?? []).every((w) => (w.clientConfig.caBundle ?? '') !== '')
        );
      },
      {
        timeoutMs: 180_000,
        intervalMs: 1000,
        description: `virt-controller and virt-api ready (${OUT_DIR})`,
      },
    );
    // Registered only once virt-api answers: an unavailable APIService stalls namespace deletion cluster-wide.
    kubectlApply(kubectl, apiService);
    cleanups.push(() => {
      spawnSync(kubectl, ['delete', 'apiservice', API_SERVICE, '--ignore-not-found'], { env: process.env });
      return Promise.resolve();
    });

    // ---- what virt-handler would do on each node ----
    const handler = new KubeConfig();
    handler.loadFromFile(serviceKubeconfig('virt-handler'));
    const handlerCore = handler.makeApiClient(CoreV1Api);
    for (const node of nodes) {
      for (const resource of Object.values(DEVICE_RESOURCES)) {
        const plugin = new SampleDevicePlugin({
          dir: nodePaths(state.stateDir, node.name).devicePlugins,
          resource,
          endpoint: `${resource.slice(resource.indexOf('/') + 1)}.sock`,
          devices: healthyDevices(1000, node.name),
        });
        await plugin.start();
        cleanups.push(() => plugin.stop());
      }
    }
    const heartbeat = async () => {
      for (const node of nodes) {
        await handlerCore.patchNode(
          {
            name: node.name,
            body: {
              metadata: {
                labels: { 'kubevirt.io/schedulable': 'true' },
                annotations: { 'kubevirt.io/heartbeat': `${new Date().toISOString().slice(0, 19)}Z` },
              },
            },
          },
          mergePatchOptions(),
        );
      }
    };
    await heartbeat();
    await eventually(
      async () =>
        (await core.listNode()).items.filter((n) =>
          // Quantities: 1000 devices read "1k".
          Object.values(DEVICE_RESOURCES).every(
            (r) => !['0', undefined].includes(n.status?.allocatable?.[r]),
          ),
        ).length === nodes.length,
      { timeoutMs: 60_000, description: "the nodes to advertise the handler's device resources" },
    );

    // ---- the run ----
    const namespace = `control-plane-${Math.random().toString(16).slice(2, 8)}`;
    await core.createNamespace({
      body: { metadata: { name: namespace, labels: { 'kubevirt-ts.dev/bench': 'control-plane' } } },
    });
    cleanups.push(async () => {
      log(`deleting namespace ${namespace}`);
      await core.deleteNamespace({ name: namespace });
      await eventually(
        async () => (await core.listNamespace()).items.every((n) => n.metadata?.name !== namespace),
        { timeoutMs: 300_000, intervalMs: 2000, description: `namespace ${namespace} to be gone` },
      ).catch((err: unknown) => log(`cleanup: ${err instanceof Error ? err.message : String(err)}`));
    });
    await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace }), {
      description: 'the default ServiceAccount',
    });

    const created = new Map<string, number>();
    const scheduled = new Map<string, number>();
    let allScheduled: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allScheduled = resolve));
    const watch = await new Watch(kc).watch(
      `/apis/kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances`,
      {},
      (_type: string, vmi: VmiEvent) => {
        const name = vmi.metadata?.name ?? '';
        if (PAST_SCHEDULED.has(vmi.status?.phase ?? '') && !scheduled.has(name)) {
          scheduled.set(name, Date.now());
          if (scheduled.size % 50 === 0 || scheduled.size === COUNT)
            log(`Scheduled ${scheduled.size}/${COUNT}`);
          if (scheduled.size === COUNT) allScheduled();
        }
      },
      (err: unknown) => {
        if (err && scheduled.size < COUNT)
          log(`watch ended: ${err instanceof Error ? err.message : JSON.stringify(err)}`);
      },
    );
    cleanups.push(() => Promise.resolve(watch.abort()));

    const heartbeats = setInterval(() => void heartbeat().catch(() => undefined), 60_000);
    cleanups.push(() => Promise.resolve(clearInterval(heartbeats)));
    const beforeAll = await readWriteCounts(kc);
    const beforeController = await controllerWrites();
    log(`creating ${COUNT} VMIs at once in namespace ${namespace} (SIMULATED pods: no launcher runs)`);
    const started = Date.now();
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: COUNT }, async (_, i) => {
        const name = `vmi-${String(i + 1).padStart(4, '0')}`;
        try {
          await custom.createNamespacedCustomObject({
            group: 'kubevirt.io',
            version: 'v1',
            namespace,
            plural: 'virtualmachineinstances',
            body: benchVmi(name, { bench: 'control-plane', memory: '64Mi' }),
          });
          created.set(name, Date.now());
        } catch (err) {
          failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
    );
    const createSeconds = (Date.now() - started) / 1000;
    log(
      `${created.size} created in ${createSeconds.toFixed(1)} s${failures.length ? `; ${failures.length} failed: ${failures[0]}` : ''}`,
    );
    const timedOut = await Promise.race([done.then(() => false), sleep(TIMEOUT_MS).then(() => true)]);
    const lastScheduled = (Date.now() - started) / 1000;
    if (timedOut) log(`only ${scheduled.size}/${COUNT} Scheduled within ${values['timeout-seconds']} s`);
    // What follows Scheduled in the controller (pod readiness gate, conditions once the pod is Ready) belongs to
    // the start too: read the counters once virt-controller has been idle for 3 s.
    let previous = '';
    for (let quiet = 0, i = 0; quiet < 3 && i < 60; i++) {
      await sleep(1000);
      const now = JSON.stringify([...(await controllerWrites())]);
      quiet = now === previous ? quiet + 1 : 0;
      previous = now;
    }
    const afterAll = await readWriteCounts(kc);
    const afterController = await controllerWrites();

    // ---- report ----
    const vmis = (
      (await custom.listNamespacedCustomObject({
        group: 'kubevirt.io',
        version: 'v1',
        namespace,
        plural: 'virtualmachineinstances',
      })) as { items: VmiEvent[] }
    ).items;
    const server: number[] = [];
    for (const vmi of vmis) {
      const at = vmi.status?.phaseTransitionTimestamps?.find((t) => t.phase === 'Scheduled');
      const d = (timeOf(at?.phaseTransitionTimestamp) - timeOf(vmi.metadata?.creationTimestamp)) / 1000;
      if (!Number.isNaN(d)) server.push(d);
    }
    // Where the time goes, from the objects' own timestamps (1 s resolution): the controller creates the launcher
    // pod, the scheduler binds it, the node agent reports it Ready, the controller moves the VMI to Scheduled.
    const pods = new Map(
      (await core.listNamespacedPod({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items.map(
        (p) => [p.metadata?.labels?.['kubevirt.io/created-by'] ?? '', p],
      ),
    );
    const stages: [string, number[]][] = [
      ['VMI created → launcher pod created (controller)', []],
      ['pod created → bound (kube-scheduler)', []],
      ['pod bound → Ready (node agent, simulated)', []],
      ['pod Ready → VMI Scheduled (controller; ±1 s)', []],
    ];
    for (const vmi of vmis) {
      const pod = pods.get(vmi.metadata?.uid ?? '');
      const condition = (type: string) =>
        timeOf(pod?.status?.conditions?.find((c) => c.type === type)?.lastTransitionTime);
      const points = [
        timeOf(vmi.metadata?.creationTimestamp),
        timeOf(pod?.metadata?.creationTimestamp),
        condition('PodScheduled'),
        condition('Ready'),
        timeOf(
          vmi.status?.phaseTransitionTimestamps?.find((t) => t.phase === 'Scheduled')
            ?.phaseTransitionTimestamp,
        ),
      ];
      stages.forEach(([, into], i) => {
        const d = ((points[i + 1] ?? Number.NaN) - (points[i] ?? Number.NaN)) / 1000;
        if (!Number.isNaN(d)) into.push(d);
      });
    }
    const client = [...scheduled].map(([name, at]) => (at - (created.get(name) ?? started)) / 1000);
    const fromBurst = [...scheduled.values()].map((at) => (at - started) / 1000);
    const latency = formatTable(
      ['creation → Scheduled (s)', 'P50', 'P95', 'max', 'VMIs'],
      [
        ['watch: create answered → Scheduled seen', client],
        ['watch: burst start → Scheduled seen', fromBurst],
        ['API: creationTimestamp → Scheduled (1 s res.)', server],
        ...stages.map(([label, xs]) => [`  ${label}`, xs]),
      ].map(([label, xs]) => {
        const v = xs as number[];
        return [
          label as string,
          seconds(percentile(v, 50)),
          seconds(percentile(v, 95)),
          seconds(v.length ? Math.max(...v) : Number.NaN),
          String(v.length),
        ];
      }),
    );
    const controllerDelta = [...afterController]
      .map(([k, v]): [string, number] => [k, v - (beforeController.get(k) ?? 0)])
      .filter(([, d]) => d > 0)
      .sort((a, b) => b[1] - a[1]);
    const report = [
      `# Control plane, SIMULATED pods: ${COUNT} VMIs created at once on ${nodes.length} simulated devcluster nodes (${new Date().toISOString()})`,
      '',
      'Node agents in simulate mode: launcher pods go Running without any process; no launcher, libvirt, QEMU or',
      'virt-handler runs (the bench registers the device resources and writes the handler heartbeat instead).',
      `virt-controller and virt-api run from source as processes. ${created.size} created in ${createSeconds.toFixed(1)} s;`,
      `${scheduled.size} Scheduled, the last ${lastScheduled.toFixed(1)} s after the burst started.`,
      '',
      '```',
      latency,
      '',
      writesTable('API writes until Scheduled (all clients)', writesBetween(beforeAll, afterAll), COUNT),
      '',
      writesTable('of which virt-controller (its own counter)', controllerDelta, COUNT),
      '```',
      '',
      'KubeVirt for reference: about 5–6 VMI updates and 2 pod patches per VMI start (to Running, handler included).',
      '',
    ].join('\n');
    process.stdout.write(`${report}\n`);
    await writeFile(join(OUT_DIR, 'control-plane.md'), report);
    log(`report: ${join(OUT_DIR, 'control-plane.md')}`);
    return scheduled.size === COUNT && failures.length === 0 ? 0 : 1;
  } finally {
    // Last set up, first torn down: the namespace goes while virt-controller and virt-api still serve its VMIs.
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: unknown) =>
        log(`cleanup: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
