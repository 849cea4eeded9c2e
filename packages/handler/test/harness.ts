// What the virt-handler integration suite needs around the real API server (devcluster): the handler as a process
// from source with its own ServiceAccount, real launchers in pod-like sandboxes whose sockets folder sits at the
// kubelet's path under a temporary pods folder, the CRDs, the handler's RBAC (the chart's rules), and the fixture
// that stands in for virt-controller (as its ServiceAccount) until the controller runs launcher pods end to end.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  KubernetesObjectApi,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { eventually } from '@kubevirt-ts/devcluster/testing';
import { crdYaml, crds } from '@kubevirt-ts/schema';
import { sandboxCommand } from '../../launcher/src/sandbox.ts';

export const FIELD_MANAGER = 'kubevirt-ts-tests';
/** devcluster's identities for our services (DESIGN.md §4b). */
export const SERVICE_NAMESPACE = 'kubevirt';

const HANDLER_MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const LAUNCHER_MAIN = fileURLToPath(new URL('../../launcher/src/main.ts', import.meta.url));

type LogLine = Record<string, unknown>;

/** A child process whose stdout is JSON log lines (pino), collected for waiting and for failure messages. */
export class LoggedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  #stderr = '';
  readonly #waiters = new Set<() => void>();

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    void this.exited.then(() => this.#wake());
    child.stderr?.on('data', (b: Buffer) => (this.#stderr += b.toString()));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ msg: line });
      }
      this.#wake();
    });
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  describe(): string {
    return `${this.name}: last log lines ${JSON.stringify(this.lines.slice(-15))}; stderr: ${this.#stderr.slice(-2000)}`;
  }

  /** The first log line (from the start) matching `pred`; fails when the process exits first. */
  waitForLine(pred: (l: LogLine) => boolean, timeoutMs = 60_000, from = 0): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${this.name}: no matching log line within ${timeoutMs} ms. ${this.describe()}`));
      }, timeoutMs);
      const check = (): void => {
        const hit = this.lines.slice(from).find(pred);
        if (hit !== undefined || !this.running) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          if (hit !== undefined) resolve(hit);
          else reject(new Error(`${this.name} exited (${this.child.exitCode}). ${this.describe()}`));
        }
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface HandlerProcessOptions {
  kubeconfig: string;
  node: string;
  podsDir: string;
  stateDir: string;
  devicePluginsDir: string;
  certsNamespace: string;
  unresponsiveTimeout?: string;
}

export interface HandlerProcess extends LoggedProcess {
  grpcPort: number;
  healthPort: number;
}

/** Starts virt-handler from source, as the DaemonSet would run it, and waits until handler.v1 is served. */
export async function startHandler(o: HandlerProcessOptions): Promise<HandlerProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@kubevirt-ts/source',
      HANDLER_MAIN,
      `--kubeconfig=${o.kubeconfig}`,
      `--pods-dir=${o.podsDir}`,
      `--state-dir=${o.stateDir}`,
      `--device-plugins-dir=${o.devicePluginsDir}`,
      `--certs-namespace=${o.certsNamespace}`,
      `--unresponsive-timeout=${o.unresponsiveTimeout ?? '30s'}`,
      '--grpc-port=0',
      '--grpc-bind-address=127.0.0.1',
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
      '--log-level=debug',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NAME: o.node, POD_NAMESPACE: '' } },
  );
  const p = new LoggedProcess('virt-handler', child) as HandlerProcess;
  const grpc = await p.waitForLine((l) => l.msg === 'serving handler.v1 over mutual TLS');
  const health = await p.waitForLine((l) => typeof l.port === 'number' && String(l.msg).includes('/livez'));
  p.grpcPort = grpc.grpcPort as number;
  p.healthPort = health.port as number;
  return p;
}

/** The kubelet's folder of one emptyDir of a pod. */
export function emptyDir(podsDir: string, podUid: string, volume: string): string {
  return join(podsDir, podUid, 'volumes', 'kubernetes.io~empty-dir', volume);
}

export interface LauncherProcessOptions {
  podsDir: string;
  podUid: string;
  stateDir: string;
  name: string;
  namespace: string;
  uid: string;
  gracePeriodSeconds: number;
  kernelBootImage: string;
  capabilitiesSeed: string;
}

/**
 * Runs virt-launcher as its pod would: in its own mount namespace, with the pod's sockets and private emptyDirs
 * (at the kubelet's paths under `podsDir`) mounted where DESIGN.md §4a puts them, and the kernel-boot image.
 */
export async function startLauncher(o: LauncherProcessOptions): Promise<LoggedProcess> {
  const sockets = emptyDir(o.podsDir, o.podUid, 'sockets');
  const priv = emptyDir(o.podsDir, o.podUid, 'private');
  for (const d of [sockets, priv, o.stateDir]) await mkdir(d, { recursive: true });
  const { command, args } = sandboxCommand(
    [
      process.execPath,
      '--conditions=@kubevirt-ts/source',
      LAUNCHER_MAIN,
      `--name=${o.name}`,
      `--namespace=${o.namespace}`,
      `--uid=${o.uid}`,
      `--grace-period-seconds=${o.gracePeriodSeconds}`,
      '--use-emulation',
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
      `--qemu-capabilities-seed=${o.capabilitiesSeed}`,
    ],
    {
      stateDir: o.stateDir,
      binds: [
        { source: sockets, target: '/var/run/kubevirt/sockets' },
        { source: priv, target: '/var/run/kubevirt-private' },
        { source: o.kernelBootImage, target: '/var/run/kubevirt/kernel-boot', readonly: true },
      ],
    },
  );
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  return new LoggedProcess(`virt-launcher ${o.namespace}/${o.name}`, child);
}

/** Pids of the QEMU running a domain (<namespace>_<name>). */
export async function qemuPids(domainName: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('/usr/bin/qemu-system') && cmdline.includes(`guest=${domainName},`))
      pids.push(Number(entry));
  }
  return pids;
}

export async function killQemu(domainName: string): Promise<void> {
  for (const pid of await qemuPids(domainName)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
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
    // The controller fixture: it marks VMIs Scheduled and releases their finalizer, as the VMI controller does.
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
