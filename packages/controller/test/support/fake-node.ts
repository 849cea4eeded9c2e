// A node for the controller's integration tests while devcluster has no local nodes yet: a stand-in that plays the
// two parts of a real node the controllers depend on, each under its real identity:
// - the kubelet, as `system:node:<name>` (a client certificate from the cluster CA, so the Node authorizer and
//   NodeRestriction treat it as the real thing): registers the Node with the device resources the handler's device
//   plugins would advertise (devices.kubevirt.io/kvm|tun|vhost-net) in its capacity, renews its Lease, reports the
//   pods the real kube-scheduler binds to it as Running (Ready per the pod's readiness gate, as the kubelet
//   computes it), ends them on request, and finishes their deletion;
// - virt-handler, as the virt-handler ServiceAccount: labels the node schedulable with a heartbeat, moves VMIs to
//   Running once their pod runs, reports a guest that shut down (Succeeded) or crashed (Failed), and on a deleted
//   VMI's pod does the graceful shutdown's bookkeeping (Succeeded) before the launcher exits.
// The end-to-end suite replaces all of this with the real node agent, handler and launcher.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  type V1Pod,
} from '@kubernetes/client-node';
import { issueCertificate, loadCertificateAuthority } from '@kubevirt-ts/devcluster';
import { devclusterState } from '@kubevirt-ts/devcluster/testing';
import {
  describeApiError,
  isConflict,
  isNotFound,
  jsonPatchOptions,
  mergePatchOptions,
} from '@kubevirt-ts/runtime';

const VMI = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' } as const;
const strategic = () => setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

export interface FakeNodeOptions {
  admin: KubeConfig;
  /** virt-handler's ServiceAccount kubeconfig. */
  handler: KubeConfig;
  name: string;
  labels?: Record<string, string>;
  /** Move a VMI to Running once its pod runs, as the handler does when the domain starts. Default true. */
  autoRun?: boolean;
  /** Write the handler's heartbeat now and every 30 s. Default true. */
  heartbeat?: boolean;
}

/** What the stand-in handler reads of a VMI. */
interface HandlerVMI {
  status?: { phase?: string; phaseTransitionTimestamps?: unknown[] };
}

interface PodRecord {
  ended?: boolean;
}

/** A kubeconfig for `system:node:<name>`, signed by the devcluster's cluster CA. */
async function nodeKubeConfig(admin: KubeConfig, name: string): Promise<KubeConfig> {
  const state = await devclusterState();
  const pki = join(state.stateDir, 'pki');
  const ca = await loadCertificateAuthority(
    await readFile(join(pki, 'ca.crt'), 'utf8'),
    await readFile(join(pki, 'ca.key'), 'utf8'),
  );
  const cert = await issueCertificate(ca, {
    commonName: `system:node:${name}`,
    organizations: ['system:nodes'],
    usage: 'client',
    validityDays: 1,
  });
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'devcluster', server: cluster.server, caData: Buffer.from(ca.certPem).toString('base64') },
    ],
    users: [
      {
        name,
        certData: Buffer.from(cert.certPem).toString('base64'),
        keyData: Buffer.from(cert.keyPem).toString('base64'),
      },
    ],
    contexts: [{ name, cluster: 'devcluster', user: name }],
    currentContext: name,
  });
  return kc;
}

export class FakeNode {
  readonly name: string;
  readonly #o: FakeNodeOptions;
  readonly #kubelet: CoreV1Api;
  readonly #leases: CoordinationV1Api;
  readonly #handlerCore: CoreV1Api;
  readonly #handlerVMIs: CustomObjectsApi;
  readonly #adminCore: CoreV1Api;
  readonly #pods = new Map<string, PodRecord>();
  readonly #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  /** Errors of the background loops, so a test can fail on them instead of timing out blindly. */
  readonly errors: string[] = [];
  /** While true, deleted pods stay Terminating (a guest that takes its time to shut down). */
  holdDeletions = false;

  private constructor(o: FakeNodeOptions, kubelet: KubeConfig) {
    this.#o = o;
    this.name = o.name;
    this.#kubelet = kubelet.makeApiClient(CoreV1Api);
    this.#leases = kubelet.makeApiClient(CoordinationV1Api);
    this.#handlerCore = o.handler.makeApiClient(CoreV1Api);
    this.#handlerVMIs = o.handler.makeApiClient(CustomObjectsApi);
    this.#adminCore = o.admin.makeApiClient(CoreV1Api);
  }

  static async start(o: FakeNodeOptions): Promise<FakeNode> {
    const node = new FakeNode(o, await nodeKubeConfig(o.admin, o.name));
    await node.#register();
    if (o.heartbeat ?? true) {
      await node.heartbeat(new Date());
      node.#every(30_000, async () => {
        if (node.#o.heartbeat !== false) await node.heartbeat(new Date());
      });
    }
    node.#every(10_000, () => node.#renewLease());
    node.#every(250, () => node.#syncPods());
    return node;
  }

  #every(ms: number, fn: () => Promise<void>): void {
    const tick = (): void => {
      if (this.#stopped) return;
      this.#loop = this.#loop
        .then(fn)
        .catch((err: unknown) => {
          if (!this.#stopped) this.errors.push(describeApiError(err));
        })
        .finally(() => {
          if (!this.#stopped) this.#timers.push(setTimeout(tick, ms));
        });
    };
    this.#timers.push(setTimeout(tick, ms));
  }

  async #register(): Promise<void> {
    const resources = {
      cpu: '32',
      memory: '128Gi',
      pods: '110',
      'devices.kubevirt.io/kvm': '1k',
      'devices.kubevirt.io/tun': '1k',
      'devices.kubevirt.io/vhost-net': '1k',
    };
    await this.#kubelet.createNode({
      body: {
        metadata: {
          name: this.name,
          labels: {
            'kubernetes.io/hostname': this.name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            ...this.#o.labels,
          },
        },
      },
    });
    const t = now();
    await this.#kubelet.patchNodeStatus(
      {
        name: this.name,
        body: {
          status: {
            capacity: resources,
            allocatable: resources,
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'KubeletReady',
                message: 'fake kubelet of the controller tests',
                lastHeartbeatTime: t,
                lastTransitionTime: t,
              },
            ],
            nodeInfo: { kubeletVersion: 'v1.35.4', architecture: 'amd64', operatingSystem: 'linux' },
          },
        },
      },
      strategic(),
    );
    await this.#renewLease();
  }

  async #renewLease(): Promise<void> {
    const namespace = 'kube-node-lease';
    const spec = {
      holderIdentity: this.name,
      leaseDurationSeconds: 40,
      renewTime: new V1MicroTime(Date.now()),
    };
    try {
      const lease = await this.#leases.readNamespacedLease({ name: this.name, namespace });
      await this.#leases.replaceNamespacedLease({
        name: this.name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, ...spec } },
      });
    } catch (err) {
      if (!isNotFound(err)) {
        if (isConflict(err)) return;
        throw err;
      }
      await this.#leases.createNamespacedLease({
        namespace,
        body: { metadata: { name: this.name, namespace }, spec },
      });
    }
  }

  /** The handler's heartbeat: schedulable, alive at `at` (a time in the past makes the handler look dead). */
  async heartbeat(at: Date): Promise<void> {
    await this.#handlerCore.patchNode(
      {
        name: this.name,
        body: {
          metadata: {
            labels: { 'kubevirt.io/schedulable': 'true' },
            annotations: { 'kubevirt.io/heartbeat': at.toISOString().replace(/\.\d+Z$/, 'Z') },
          },
        },
      },
      mergePatchOptions(),
    );
  }

  /** Stops the periodic heartbeat (the handler died) without touching what was written last. */
  stopHeartbeat(): void {
    this.#o.heartbeat = false;
  }

  async #vmi(namespace: string, name: string): Promise<HandlerVMI | undefined> {
    try {
      return (await this.#handlerVMIs.getNamespacedCustomObject({ ...VMI, namespace, name })) as HandlerVMI;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** As virt-handler: moves a VMI to `phase`, with its transition timestamp (guarded by a test of the old phase). */
  async setVMIPhase(
    namespace: string,
    name: string,
    phase: 'Running' | 'Succeeded' | 'Failed',
  ): Promise<void> {
    const vmi = await this.#vmi(namespace, name);
    if (vmi === undefined) throw new Error(`VMI ${namespace}/${name} does not exist`);
    const status = vmi.status;
    const ops = [
      { op: 'test', path: '/status/phase', value: status?.phase },
      { op: 'replace', path: '/status/phase', value: phase },
      status?.phaseTransitionTimestamps === undefined
        ? {
            op: 'add',
            path: '/status/phaseTransitionTimestamps',
            value: [{ phase, phaseTransitionTimestamp: now() }],
          }
        : {
            op: 'add',
            path: '/status/phaseTransitionTimestamps/-',
            value: { phase, phaseTransitionTimestamp: now() },
          },
    ];
    await this.#handlerVMIs.patchNamespacedCustomObject(
      { ...VMI, namespace, name, body: ops },
      jsonPatchOptions(),
    );
  }

  /** As the kubelet: the launcher exited with `exitCode`; the pod ends (restartPolicy Never). */
  async endPod(namespace: string, name: string, exitCode: number): Promise<void> {
    const rec = this.#pods.get(`${namespace}/${name}`) ?? {};
    rec.ended = true;
    this.#pods.set(`${namespace}/${name}`, rec);
    const t = now();
    await this.#kubelet.patchNamespacedPodStatus(
      {
        namespace,
        name,
        body: {
          status: {
            phase: exitCode === 0 ? 'Succeeded' : 'Failed',
            conditions: [
              { type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: t },
              { type: 'ContainersReady', status: 'False', reason: 'PodCompleted', lastTransitionTime: t },
            ],
            containerStatuses: [
              {
                name: 'compute',
                image: 'virt-launcher',
                imageID: 'virt-launcher',
                ready: false,
                restartCount: 0,
                state: {
                  terminated: {
                    exitCode,
                    reason: exitCode === 0 ? 'Completed' : 'Error',
                    startedAt: t,
                    finishedAt: t,
                  },
                },
              },
            ],
          },
        },
      },
      strategic(),
    );
  }

  /** As the handler and kubelet: the guest ended (`Succeeded` or `Failed`), then its launcher pod. */
  async endGuest(pod: V1Pod, phase: 'Succeeded' | 'Failed'): Promise<void> {
    const owner = pod.metadata?.ownerReferences?.find((r) => r.controller)?.name ?? '';
    const ns = pod.metadata?.namespace ?? '';
    await this.setVMIPhase(ns, owner, phase);
    await this.endPod(ns, pod.metadata?.name ?? '', phase === 'Succeeded' ? 0 : 1);
  }

  async #syncPods(): Promise<void> {
    const list = await this.#kubelet.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${this.name}` });
    for (const pod of list.items) {
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      const rec = this.#pods.get(key) ?? {};
      this.#pods.set(key, rec);
      try {
        if (pod.metadata?.deletionTimestamp) {
          if (!this.holdDeletions) await this.#finishDeletion(pod, rec);
        } else if (!rec.ended) await this.#runPod(pod);
      } catch (err) {
        // A pod or VMI that changed or went meanwhile is looked at again on the next pass.
        if (isNotFound(err) || isConflict(err) || (err as { code?: number }).code === 422) {
          if (process.env.KUBEVIRT_TS_TEST_LOG)
            console.error(`fake node ${this.name}: ${key}: ${describeApiError(err)}`);
          continue;
        }
        throw new Error(`fake node ${this.name}: ${key}: ${describeApiError(err)}`, { cause: err });
      }
    }
  }

  async #runPod(pod: V1Pod): Promise<void> {
    const ns = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const gate =
      pod.status?.conditions?.find((c) => c.type === 'kubevirt.io/virtual-machine-unpaused')?.status ===
      'True';
    const ready = gate ? 'True' : 'False';
    const current = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (pod.status?.phase !== 'Running' || current !== ready) {
      const t = now();
      await this.#kubelet.patchNamespacedPodStatus(
        {
          namespace: ns,
          name,
          body: {
            status: {
              phase: 'Running',
              hostIP: '172.30.99.1',
              startTime: pod.status?.startTime ?? t,
              conditions: [
                { type: 'Initialized', status: 'True', lastTransitionTime: t },
                { type: 'ContainersReady', status: 'True', lastTransitionTime: t },
                {
                  type: 'Ready',
                  status: ready,
                  lastTransitionTime: t,
                  ...(gate
                    ? {}
                    : {
                        reason: 'ReadinessGatesNotReady',
                        message:
                          'corresponding condition of pod readiness gate "kubevirt.io/virtual-machine-unpaused" does not exist.',
                      }),
                },
              ],
              containerStatuses: [
                {
                  name: 'compute',
                  image: pod.spec?.containers[0]?.image ?? '',
                  imageID: 'virt-launcher',
                  ready: true,
                  restartCount: 0,
                  started: true,
                  state: { running: { startedAt: t } },
                },
              ],
            },
          },
        },
        strategic(),
      );
    }
    if (this.#o.autoRun ?? true) {
      const owner = pod.metadata?.ownerReferences?.find(
        (r) => r.controller && r.kind === 'VirtualMachineInstance',
      )?.name;
      if (owner === undefined) return;
      const vmi = await this.#vmi(ns, owner);
      if (vmi?.status?.phase === 'Scheduled') await this.setVMIPhase(ns, owner, 'Running');
    }
  }

  /** A deleted pod: the handler shuts the guest down (Succeeded), the launcher exits, the kubelet removes the pod. */
  async #finishDeletion(pod: V1Pod, rec: PodRecord): Promise<void> {
    const ns = pod.metadata?.namespace ?? '';
    const owner = pod.metadata?.ownerReferences?.find(
      (r) => r.controller && r.kind === 'VirtualMachineInstance',
    )?.name;
    if (owner !== undefined && !rec.ended) {
      const vmi = await this.#vmi(ns, owner);
      const phase = vmi?.status?.phase;
      if (phase === 'Running' || phase === 'Scheduled') await this.setVMIPhase(ns, owner, 'Succeeded');
    }
    if (!rec.ended) await this.endPod(ns, pod.metadata?.name ?? '', 0);
    // With a body the API server reads every delete option from it (query parameters are ignored).
    await this.#kubelet.deleteNamespacedPod({
      namespace: ns,
      name: pod.metadata?.name ?? '',
      body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
    });
  }

  /** Removes the node: its pods are force-deleted first (nothing would finish their deletion afterwards). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    await this.#loop.catch(() => undefined);
    const pods = await this.#adminCore.listPodForAllNamespaces({
      fieldSelector: `spec.nodeName=${this.name}`,
    });
    for (const pod of pods.items) {
      await this.#adminCore
        .deleteNamespacedPod({
          namespace: pod.metadata?.namespace ?? '',
          name: pod.metadata?.name ?? '',
          gracePeriodSeconds: 0,
        })
        .catch(() => undefined);
    }
    await this.delete();
  }

  /** Deletes the Node object (the node is lost), leaving its pods to Kubernetes' pod garbage collector. */
  async delete(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    await this.#adminCore.deleteNode({ name: this.name }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }
}
