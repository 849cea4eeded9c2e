// Runs virt-controller's controllers in-process for a test file, as the virt-controller ServiceAccount with the
// chart's RBAC, scoped to the file's namespace (which also serves as their install namespace), and gives the
// tests typed access to the objects they create.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { eventually, useTestNamespace, type TestNamespace } from '@kubevirt-ts/devcluster/testing';
import {
  createLogger,
  isNotFound,
  jsonPatchOptions,
  Registry,
  silentLogger,
  type Logger,
} from '@kubevirt-ts/runtime';
import type {
  VirtualMachine,
  VirtualMachineInstance,
  VirtualMachineInstanceReplicaSet,
} from '@kubevirt-ts/schema';
import { afterAll, beforeAll, expect } from 'vitest';
import { Controllers, type ControllersOptions } from '../../src/index.ts';
import { FakeNode } from './fake-node.ts';
import {
  adminKubeConfig,
  applyChartRBAC,
  ensureCRDs,
  grantInstallNamespaceRole,
  serviceAccountKubeConfig,
} from './cluster.ts';

export const LAUNCHER_IMAGE = 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0';

/** KUBEVIRT_TS_TEST_LOG=debug (or info…) shows the controllers' logs on stderr. */
export function testLogger(): Logger {
  const level = process.env.KUBEVIRT_TS_TEST_LOG;
  return level
    ? createLogger({ service: 'virt-controller-test', version: '0', level: level as 'debug' })
    : silentLogger();
}

/** One-time cluster preparation of a test file: CRDs, the chart's RBAC, the install-namespace Role. */
export async function prepareCluster(ns: TestNamespace): Promise<void> {
  const admin = adminKubeConfig();
  await ensureCRDs(admin);
  await applyChartRBAC(admin);
  await grantInstallNamespaceRole(admin, ns.name);
}

export interface RunningControllers {
  controllers: Controllers;
  registry: Registry;
  stop(): Promise<void>;
}

export async function startControllers(
  namespace: string,
  extra: Partial<ControllersOptions> = {},
): Promise<RunningControllers> {
  const kubeConfig = await serviceAccountKubeConfig('virt-controller');
  const registry = new Registry();
  const controllers = new Controllers({
    kubeConfig,
    log: testLogger(),
    registry,
    installNamespace: namespace,
    namespace,
    // The node controller of a test touches only the tests' own fake nodes, never the devcluster's.
    nodeLabelSelector: 'test-node',
    launcherImage: LAUNCHER_IMAGE,
    ...extra,
  });
  const abort = new AbortController();
  const run = controllers.run(abort.signal);
  await eventually(() => controllers.synced, {
    timeoutMs: 60_000,
    description: 'the controllers’ caches to sync',
  });
  return {
    controllers,
    registry,
    stop: async () => {
      abort.abort();
      await run;
    },
  };
}

/** What a controller suite works with: its namespace, typed access, the running controllers and its fake node. */
export interface ControllerFixture {
  readonly ns: TestNamespace;
  readonly api: Api;
  readonly running: RunningControllers;
  readonly node: FakeNode;
}

/**
 * The setup every controller suite shares, registered as beforeAll/afterAll of the calling describe: a test
 * namespace, CRDs and the chart's RBAC, a fake node labelled `test-node=<namespace>` acting as its handler, and the
 * controllers running as virt-controller. Teardown fails the suite if the fake node saw errors (unless
 * `allowNodeErrors`, for suites that make the node go away on purpose).
 */
export function useControllerFixture(
  prefix: string,
  options: { controllers?: Partial<ControllersOptions>; allowNodeErrors?: boolean } = {},
): ControllerFixture {
  const ns = useTestNamespace(prefix);
  let api: Api | undefined;
  let running: RunningControllers | undefined;
  let node: FakeNode | undefined;
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the controller fixture's ${what} is used before beforeAll ran`);
    return value;
  };
  beforeAll(async () => {
    await prepareCluster(ns);
    api = new Api(ns.kc, ns.name);
    node = await FakeNode.start({
      admin: adminKubeConfig(),
      handler: await serviceAccountKubeConfig('virt-handler'),
      name: `${ns.name}-node`,
      labels: { 'test-node': ns.name },
    });
    running = await startControllers(ns.name, options.controllers);
  });
  afterAll(async () => {
    await running?.stop();
    await node?.stop();
    if (!options.allowNodeErrors) expect(node?.errors ?? []).toEqual([]);
  });
  return {
    ns,
    get api() {
      return ready(api, 'api');
    },
    get running() {
      return ready(running, 'controllers');
    },
    get node() {
      return ready(node, 'fake node');
    },
  };
}

const group = 'kubevirt.io';
const version = 'v1';

/** Typed access to our kinds for the tests (as the admin, i.e. as a user would). */
export class Api {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly namespace: string;

  constructor(kc: KubeConfig, namespace: string) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.namespace = namespace;
  }

  async create<T>(plural: string, body: T): Promise<T> {
    return (await this.custom.createNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: this.namespace,
      body: body as object,
    })) as T;
  }

  async get<T>(plural: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: this.namespace,
        name,
      })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list<T>(plural: string): Promise<T[]> {
    return (
      (await this.custom.listNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: this.namespace,
      })) as { items: T[] }
    ).items;
  }

  async delete(plural: string, name: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({
      group,
      version,
      plural,
      namespace: this.namespace,
      name,
    });
  }

  vm = (name: string) => this.get<VirtualMachine>('virtualmachines', name);
  vmi = (name: string) => this.get<VirtualMachineInstance>('virtualmachineinstances', name);
  vmis = () => this.list<VirtualMachineInstance>('virtualmachineinstances');
  vmirs = (name: string) =>
    this.get<VirtualMachineInstanceReplicaSet>('virtualmachineinstancereplicasets', name);

  async pods(): Promise<V1Pod[]> {
    return (
      await this.core.listNamespacedPod({
        namespace: this.namespace,
        labelSelector: 'kubevirt.io=virt-launcher',
      })
    ).items;
  }

  /** The launcher pods of a VMI (by its UID). */
  async podsOf(vmi: VirtualMachineInstance | undefined): Promise<V1Pod[]> {
    const uid = vmi?.metadata?.uid;
    return (await this.pods()).filter((p) => p.metadata?.labels?.['kubevirt.io/created-by'] === uid);
  }

  /** Adds a state change request as virt-api's start/stop subresources do (JSON patch with a test). */
  async requestStateChange(
    vmName: string,
    request: { action: 'Start' | 'Stop'; uid?: string },
  ): Promise<void> {
    const vm = await this.vm(vmName);
    const current = vm?.status?.stateChangeRequests;
    const ops =
      vm?.status === undefined
        ? [{ op: 'add', path: '/status', value: { stateChangeRequests: [request] } }]
        : current === undefined
          ? [{ op: 'add', path: '/status/stateChangeRequests', value: [request] }]
          : [
              { op: 'test', path: '/status/stateChangeRequests', value: current },
              { op: 'add', path: '/status/stateChangeRequests/-', value: request },
            ];
    await this.custom.patchNamespacedCustomObjectStatus(
      { group, version, plural: 'virtualmachines', namespace: this.namespace, name: vmName, body: ops },
      jsonPatchOptions(),
    );
  }
}

/** A small VMI spec: 64 MiB, one containerDisk. */
export function smallVMISpec(
  extra: Partial<VirtualMachineInstance['spec']> = {},
): VirtualMachineInstance['spec'] {
  return {
    domain: {
      resources: { requests: { memory: '64Mi' } },
      devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
    },
    volumes: [
      { name: 'root', containerDisk: { image: 'quay.io/kubevirt/cirros-container-disk-demo:v1.5.0' } },
    ],
    terminationGracePeriodSeconds: 5,
    ...extra,
  };
}
