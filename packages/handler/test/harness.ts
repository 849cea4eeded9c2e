// What the virt-handler integration suite needs around the real API server (devcluster): virt-handler as a pod
// the way the chart's DaemonSet runs it (its own ServiceAccount, the node's /var/lib/kubelet/pods at /pods, the
// kubelet's device-plugin folder, the node's /dev), a watch of the pods on the test node (container states and
// exit codes, also of pods the node agent deletes), the containers' log files under the node root, the CRDs, the
// handler's RBAC (the chart's rules), and the rights of the fixture that stands in for virt-controller (as its
// ServiceAccount) until the controller runs launcher pods end to end.
import { execFile } from 'node:child_process';
import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import {
  ApiException,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type V1ContainerStateTerminated,
  type V1Pod,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { chartDir, renderChart } from '@kubevirt-ts/devcluster/stack';
import { eventually, type TestNode } from '@kubevirt-ts/devcluster/testing';
import { crdYaml, crds } from '@kubevirt-ts/schema';
import { parseAllDocuments } from 'yaml';
import { containerLogFile } from '../../devcluster/src/node/layout.ts';

export const FIELD_MANAGER = 'kubevirt-ts-tests';
/** devcluster's identities for our services (DESIGN.md §4b), and where the chart installs them. */
export const SERVICE_NAMESPACE = 'kubevirt';
/** Our images, by the repositories of charts/kubevirt-ts/values.yaml: a devcluster node runs them from source. */
export const HANDLER_IMAGE = 'ghcr.io/kubevirt-ts/virt-handler:test';
export const LAUNCHER_IMAGE = 'ghcr.io/kubevirt-ts/virt-launcher:test';
/** The chart's ports of virt-handler (templates/_helpers.tpl). */
export const HANDLER_GRPC_PORT = 8190;
export const HANDLER_HEALTH_PORT = 8188;
/** The handler's --state-dir in the chart: a hostPath that outlives the pod (checkpoints, short links). */
export const HANDLER_STATE_DIR = '/var/lib/kubevirt-ts/handler';

type LogLine = Record<string, unknown>;

/**
 * One container run's log, read from its file under the node root (var/log/pods/<ns>_<name>_<uid>/<container>/
 * <run>.log, which stays after the pod is gone): JSON log lines (pino) collected for waiting and for failure
 * messages. The file is polled, so `refresh()` before asserting on the last lines of a container that exited.
 */
export class PodLog {
  readonly name: string;
  readonly file: string;
  readonly lines: LogLine[] = [];
  #offset = 0;
  #partial = '';
  /** Keeps a character split between two reads whole. */
  readonly #decoder = new StringDecoder('utf8');
  #reading: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #waiters = new Set<() => void>();

  constructor(name: string, node: TestNode, pod: V1Pod, container: string, run = 0) {
    this.name = name;
    this.file = containerLogFile(
      node.paths,
      { namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, uid: pod.metadata!.uid! },
      container,
      run,
    );
    this.#timer = setInterval(() => void this.refresh(), 200);
    this.#timer.unref();
  }

  /** Reads what was appended since the last read. */
  refresh(): Promise<void> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<void> {
    const handle = await open(this.file, 'r').catch(() => undefined);
    if (!handle) return;
    try {
      for (;;) {
        const buffer = Buffer.alloc(64 * 1024);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        const text = this.#partial + this.#decoder.write(buffer.subarray(0, bytesRead));
        const parts = text.split('\n');
        this.#partial = parts.pop() ?? '';
        for (const line of parts) {
          if (line === '') continue;
          try {
            this.lines.push(JSON.parse(line) as LogLine);
          } catch {
            this.lines.push({ msg: line });
          }
        }
      }
    } finally {
      await handle.close();
    }
    for (const w of this.#waiters) w();
  }

  describe(): string {
    return `${this.name}: last log lines ${JSON.stringify(this.lines.slice(-15))}`;
  }

  /** The first log line (from line `from`) matching `pred`. */
  waitForLine(pred: (l: LogLine) => boolean, timeoutMs = 60_000, from = 0): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${this.name}: no matching log line within ${timeoutMs} ms. ${this.describe()}`));
      }, timeoutMs);
      const check = (): void => {
        const hit = this.lines.slice(from).find(pred);
        if (hit === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(hit);
      };
      this.#waiters.add(check);
      check();
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * The pods bound to one node, as a watch sees them: each pod's last state by UID, including the final status the
 * node agent writes just before it deletes a pod that was being deleted (so exit codes outlive the pod object).
 */
export class NodePodWatch {
  readonly #kc: KubeConfig;
  readonly #node: string;
  readonly #pods = new Map<string, V1Pod>();
  readonly #deleted = new Set<string>();
  readonly #waiters = new Set<() => void>();
  #abort: AbortController | undefined;
  #resourceVersion: string | undefined;
  #stopped = false;

  constructor(kc: KubeConfig, node: string) {
    this.#kc = kc;
    this.#node = node;
  }

  async start(): Promise<void> {
    const from = this.#resourceVersion;
    this.#abort = await new Watch(this.#kc).watch(
      '/api/v1/pods',
      {
        fieldSelector: `spec.nodeName=${this.#node}`,
        allowWatchBookmarks: true,
        ...(from !== undefined ? { resourceVersion: from } : {}),
      },
      (type: string, pod: V1Pod) => {
        // 410 Gone: the next watch starts over from the current pods.
        if (type === 'ERROR') {
          this.#resourceVersion = undefined;
          return;
        }
        this.#resourceVersion = pod.metadata?.resourceVersion ?? this.#resourceVersion;
        const uid = pod.metadata?.uid;
        if (type === 'BOOKMARK' || !uid) return;
        this.#pods.set(uid, pod);
        if (type === 'DELETED') this.#deleted.add(uid);
        for (const w of this.#waiters) w();
      },
      () => this.#restart(),
    );
  }

  /** A watch ends now and then (server timeout): the next one goes on from the last resourceVersion seen. */
  #restart(): void {
    if (this.#stopped) return;
    setTimeout(() => void this.start().catch(() => this.#restart()), 500);
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
  }

  pod(uid: string): V1Pod | undefined {
    return this.#pods.get(uid);
  }

  gone(uid: string): boolean {
    return this.#deleted.has(uid);
  }

  /** Whether the pod's container runs now. */
  running(uid: string, container: string): boolean {
    const status = this.#pods.get(uid)?.status?.containerStatuses?.find((c) => c.name === container);
    return !this.#deleted.has(uid) && status?.state?.running !== undefined;
  }

  /** The container's termination, once its (last) run ended. */
  terminated(uid: string, container: string): V1ContainerStateTerminated | undefined {
    return this.#pods.get(uid)?.status?.containerStatuses?.find((c) => c.name === container)?.state
      ?.terminated;
  }

  /** Resolves with what `check` returns once it is defined; fails after `timeoutMs`, saying what it waited for. */
  waitFor<T>(check: () => T | undefined, timeoutMs: number, description: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${description}`));
      }, timeoutMs);
      const wake = (): void => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve(value);
      };
      this.#waiters.add(wake);
      wake();
    });
  }

  /** The exit code of the container's run, once it ended. */
  exitCode(uid: string, container: string, timeoutMs = 120_000): Promise<number> {
    return this.waitFor(
      () => this.terminated(uid, container)?.exitCode,
      timeoutMs,
      `container ${container} of pod ${uid} to end`,
    );
  }
}

export interface HandlerPodOptions {
  name: string;
  node: string;
  /** Where the certificate Secret is (the install namespace in the chart; the test namespace here). */
  certsNamespace: string;
  /** The node folder behind --state-dir: one per test file, so no other run's checkpoints are found. */
  stateHostPath: string;
  unresponsiveTimeout: string;
  testLabel: string;
  /** The devcluster's pinned helm and a kubeconfig, to render the chart. */
  helm: string;
  kubeconfig: string;
}

/** The chart's virt-handler DaemonSet pod template (`helm template`, useEmulation=true). */
async function renderHandlerTemplate(
  helm: string,
  kubeconfig: string,
): Promise<V1PodTemplateSpec & { spec: NonNullable<V1PodTemplateSpec['spec']> }> {
  const rendered = parseAllDocuments(
    await renderChart({
      helm,
      kubeconfig,
      chartDir: chartDir(REPO_ROOT),
      namespace: SERVICE_NAMESPACE,
      set: { useEmulation: true },
    }),
  ).map((d) => d.toJS() as KubernetesObject & { spec?: { template?: V1PodTemplateSpec } });
  const daemonSet = rendered.find((d) => d?.kind === 'DaemonSet' && d.metadata?.name === 'virt-handler');
  const template = daemonSet?.spec?.template;
  if (template?.spec === undefined)
    throw new Error('the chart renders no virt-handler DaemonSet with a pod template');
  return { ...template, spec: template.spec };
}

let renderedHandlerTemplate: ReturnType<typeof renderHandlerTemplate> | undefined;

/** The repository's root, where the chart is. */
const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

/**
 * virt-handler's pod as the chart's DaemonSet renders it (`helm template` of charts/kubevirt-ts, useEmulation=true),
 * so the suite runs whatever the chart gives the handler (mounts, capabilities, probes, environment). What the test
 * changes: the pod is pinned to the test node, as the DaemonSet controller would place it; labels of the test's own,
 * so no DaemonSet adopts it; the test's image name, certificate namespace, unresponsive timeout and debug logs; and a
 * state folder on the node of its own (the chart's is /var/lib/kubevirt-ts/handler), so no other run's checkpoints
 * are found.
 */
export async function handlerPod(o: HandlerPodOptions): Promise<V1Pod> {
  // The chart does not change during a run: render it once, however often the suite restarts the handler.
  renderedHandlerTemplate ??= renderHandlerTemplate(o.helm, o.kubeconfig);
  const template = await renderedHandlerTemplate;
  const spec = structuredClone(template.spec);
  const container = spec.containers.find((c) => c.name === 'virt-handler');
  if (container === undefined)
    throw new Error("the chart's virt-handler DaemonSet has no virt-handler container");
  const stateVolume = spec.volumes?.find(
    (v) => v.hostPath?.path === HANDLER_STATE_DIR && container.volumeMounts?.some((m) => m.name === v.name),
  );
  if (stateVolume?.hostPath === undefined)
    throw new Error(`the chart's virt-handler DaemonSet mounts no hostPath at ${HANDLER_STATE_DIR}`);
  stateVolume.hostPath = { path: o.stateHostPath, type: 'DirectoryOrCreate' };
  container.image = HANDLER_IMAGE;
  container.args = [
    ...(container.args ?? []).filter((a) => !/^--(certs-namespace|unresponsive-timeout|log-level)=/.test(a)),
    `--certs-namespace=${o.certsNamespace}`,
    `--unresponsive-timeout=${o.unresponsiveTimeout}`,
    '--log-level=debug',
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name,
      namespace: SERVICE_NAMESPACE,
      labels: {
        'app.kubernetes.io/name': 'kubevirt-ts-test',
        'app.kubernetes.io/component': 'handler',
        'kubevirt-ts.dev/test': o.testLabel,
      },
    },
    spec: {
      ...spec,
      // The ServiceAccount rbacObjects() binds (the chart's name for it).
      serviceAccountName: 'virt-handler',
      // What the DaemonSet controller gives its pods: placement on exactly this node, whatever its taints.
      nodeSelector: { 'kubernetes.io/hostname': o.node },
      tolerations: [{ operator: 'Exists' }],
    },
  };
}

async function pidsWhere(match: (argv: string[]) => boolean): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline !== '' && match(cmdline.split('\0'))) pids.push(Number(entry));
  }
  return pids;
}

/** Pids of the QEMU running a domain (<namespace>_<name>), seen from the machine (pods share its PID space). */
export function qemuPids(domainName: string): Promise<number[]> {
  return pidsWhere(
    (argv) =>
      (argv[0] ?? '').startsWith('/usr/bin/qemu-system') &&
      argv.some((a) => a.startsWith(`guest=${domainName},`)),
  );
}

/** Pids of the virt-launcher process (not its container's init) of the VMI with this UID. */
export function launcherPids(vmiUid: string): Promise<number[]> {
  return pidsWhere(
    (argv) => argv.includes(`--uid=${vmiUid}`) && argv.some((a) => a.endsWith('launcher/src/main.ts')),
  );
}

export async function kubectl(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(bin, args, { env, timeout: 60_000 }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr || err.message}`))
        : resolve({ stdout, stderr }),
    ),
  );
}

/** Applies every CRD of the schema package with kubectl (it keeps the x-kubernetes-* keys) and waits for them. */
export async function installCrds(kc: KubeConfig, bin: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      bin,
      ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--force-conflicts', '-f', '-'],
      { env: process.env, timeout: 120_000 },
      (err, _stdout, stderr) =>
        err ? reject(new Error(`kubectl apply of the CRDs failed: ${stderr}`)) : resolve(),
    );
    child.stdin?.end(crdYaml());
  });
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const crd of crds()) {
    await eventually(
      async () => {
        const got = (await client.read({
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name: crd.metadata.name },
        })) as { status?: { conditions?: { type: string; status: string }[] } };
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      },
      { timeoutMs: 60_000, description: `CRD ${crd.metadata.name} to be Established` },
    );
  }
}

/** Server-side apply as the tests' field manager. */
export async function apply<T extends KubernetesObject>(kc: KubeConfig, obj: T): Promise<T> {
  return KubernetesObjectApi.makeApiClient(kc).patch(
    obj,
    undefined,
    undefined,
    FIELD_MANAGER,
    true,
    PatchStrategy.ServerSideApply,
  );
}

export async function remove(kc: KubeConfig, obj: KubernetesObject): Promise<void> {
  try {
    await KubernetesObjectApi.makeApiClient(kc).delete(obj);
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 404)) throw err;
  }
}

const sa = (name: string) => ({ kind: 'ServiceAccount', name, namespace: SERVICE_NAMESPACE });

/**
 * The chart's virt-handler rules (charts/kubevirt-ts/templates/handler-rbac.yaml), with the test's names, plus what
 * the controller fixture needs in the test namespace. Cluster-scoped objects carry the namespace in their name.
 */
export function rbacObjects(namespace: string, serverSecret: string): KubernetesObject[] {
  const name = `test-virt-handler-${namespace}`;
  const objects: (KubernetesObject & Record<string, unknown>)[] = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: [
        {
          apiGroups: ['kubevirt.io'],
          resources: ['virtualmachineinstances'],
          verbs: ['get', 'list', 'watch', 'update', 'patch'],
        },
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [sa('virt-handler')],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'test-virt-handler', namespace },
      rules: [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: [serverSecret],
          verbs: ['get', 'list', 'watch'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'test-virt-handler', namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'test-virt-handler' },
      subjects: [sa('virt-handler')],
    },
    // The controller fixture: it creates and deletes the launcher pods, marks VMIs Scheduled and releases their
    // finalizer, as the VMI controller does (a subset of charts/kubevirt-ts/templates/controller-rbac.yaml).
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'test-virt-controller', namespace },
      rules: [
        {
          apiGroups: ['kubevirt.io'],
          resources: ['virtualmachineinstances'],
          verbs: ['get', 'list', 'watch', 'update', 'patch'],
        },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'test-virt-controller', namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'test-virt-controller' },
      subjects: [sa('virt-controller')],
    },
  ];
  return objects;
}
