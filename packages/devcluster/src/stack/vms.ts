// Following a VM through the stack from outside, as a user would with kubectl: the VM, its VMI and the VMI's
// launcher pod, read through the API server. describeProgress() turns what they show into what is being waited
// for (which component has to act next), so a wait never hangs silently.
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { DevclusterError, errorMessage } from '../errors.ts';
import { podTrouble, TEST_GUEST_IMAGE } from './chart.ts';

export const KUBEVIRT_GROUP = 'kubevirt.io';
export const KUBEVIRT_VERSION = 'v1';

/**
 * The smallest VMI the benchmarks start: the test guest's container disk, no grace period (deleting N VMIs after a
 * run should not wait for N guests to shut down), and a label naming the benchmark so its objects can be found.
 */
export function benchVmi(
  name: string,
  options: { bench: string; memory: string; image?: string },
): Record<string, unknown> {
  return {
    apiVersion: `${KUBEVIRT_GROUP}/${KUBEVIRT_VERSION}`,
    kind: 'VirtualMachineInstance',
    metadata: { name, labels: { 'kubevirt-ts.dev/bench': options.bench } },
    spec: {
      domain: {
        resources: { requests: { memory: options.memory } },
        devices: { disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }] },
      },
      terminationGracePeriodSeconds: 0,
      volumes: [{ name: 'rootdisk', containerDisk: { image: options.image ?? TEST_GUEST_IMAGE } }],
    },
  };
}

/** The fields of a VM this module reads (the full type lives in @kubevirt-ts/schema). */
export interface VmView {
  metadata?: { name?: string; namespace?: string; uid?: string; generation?: number };
  spec?: { runStrategy?: string; running?: boolean };
  status?: {
    printableStatus?: string;
    ready?: boolean;
    created?: boolean;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** The fields of a VMI this module reads. */
export interface VmiView {
  metadata?: { name?: string; namespace?: string; uid?: string; deletionTimestamp?: string | Date };
  status?: {
    phase?: string;
    nodeName?: string;
    reason?: string;
    activePods?: Record<string, string>;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    phaseTransitionTimestamps?: { phase: string; phaseTransitionTimestamp: string }[];
    interfaces?: {
      name?: string;
      ipAddress?: string;
      ipAddresses?: string[];
      mac?: string;
      interfaceName?: string;
      infoSource?: string;
    }[];
    guestOSInfo?: {
      id?: string;
      name?: string;
      prettyName?: string;
      version?: string;
      kernelRelease?: string;
    };
  };
}

export interface VmSnapshot {
  vm: VmView | undefined;
  vmi: VmiView | undefined;
  pod: V1Pod | undefined;
}

function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

export class VmClient {
  readonly kc: KubeConfig;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  private async get<T>(plural: string, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: KUBEVIRT_GROUP,
        version: KUBEVIRT_VERSION,
        namespace,
        plural,
        name,
      })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  vm(namespace: string, name: string): Promise<VmView | undefined> {
    return this.get<VmView>('virtualmachines', namespace, name);
  }

  vmi(namespace: string, name: string): Promise<VmiView | undefined> {
    return this.get<VmiView>('virtualmachineinstances', namespace, name);
  }

  async vmis(namespace: string, labelSelector?: string): Promise<VmiView[]> {
    const list = (await this.custom.listNamespacedCustomObject({
      group: KUBEVIRT_GROUP,
      version: KUBEVIRT_VERSION,
      namespace,
      plural: 'virtualmachineinstances',
      ...(labelSelector ? { labelSelector } : {}),
    })) as { items: VmiView[] };
    return list.items;
  }

  /** The launcher pods of a VMI (label kubevirt.io/created-by=<vmi uid>, as the VMI controller sets it). */
  async launcherPods(namespace: string, vmiUid: string): Promise<V1Pod[]> {
    const pods = await this.core.listNamespacedPod({
      namespace,
      labelSelector: `kubevirt.io=virt-launcher,kubevirt.io/created-by=${vmiUid}`,
    });
    return pods.items;
  }

  /** The VM (or a bare VMI of that name), its VMI and the VMI's newest launcher pod. */
  async snapshot(namespace: string, name: string): Promise<VmSnapshot> {
    const vm = await this.vm(namespace, name);
    const vmi = await this.vmi(namespace, name);
    const uid = vmi?.metadata?.uid;
    const pods = uid ? await this.launcherPods(namespace, uid) : [];
    const pod = pods.sort(
      (a, b) =>
        new Date(b.metadata?.creationTimestamp ?? 0).getTime() -
        new Date(a.metadata?.creationTimestamp ?? 0).getTime(),
    )[0];
    return { vm, vmi, pod };
  }
}

function podState(pod: V1Pod): string {
  const trouble = podTrouble(pod);
  if (trouble) return trouble;
  const waiting = pod.status?.containerStatuses?.find((s) => s.state?.waiting)?.state?.waiting?.reason;
  return waiting ?? pod.status?.phase ?? 'Pending';
}

/**
 * What a VM start is waiting for, from what the API shows: the component that has to act next and on what. Pure,
 * so the wording is tested without a cluster.
 */
export function describeProgress(s: VmSnapshot, name: string): string {
  const vmStatus = s.vm?.status?.printableStatus;
  const prefix = s.vm ? `VM ${name} ${vmStatus ?? '(no status yet)'}` : `VMI ${name}`;
  if (!s.vmi) {
    if (!s.vm) return `${prefix}: waiting for the object to exist`;
    return `${prefix}: waiting for virt-controller to create the VMI`;
  }
  const phase = s.vmi.status?.phase ?? '(no phase)';
  const at = `VMI ${phase}`;
  if (phase === 'Running') return `${prefix}; ${at} on ${s.vmi.status?.nodeName ?? '?'}`;
  if (phase === 'Failed' || phase === 'Succeeded') {
    return `${prefix}; ${at}${s.vmi.status?.reason ? ` (${s.vmi.status.reason})` : ''}`;
  }
  if (!s.pod) return `${prefix}; ${at}: waiting for virt-controller to create the launcher pod`;
  const podName = s.pod.metadata?.name ?? 'launcher pod';
  const node = s.pod.spec?.nodeName;
  if (!node) {
    return `${prefix}; ${at}: waiting for the scheduler to place ${podName}${s.pod.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message ? ` (${s.pod.status.conditions.find((c) => c.type === 'PodScheduled')?.message})` : ''}`;
  }
  if (s.pod.status?.phase !== 'Running') {
    return `${prefix}; ${at}: waiting for node ${node} to start ${podName} (${podState(s.pod)})`;
  }
  const ready = s.pod.status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  return `${prefix}; ${at}: waiting for virt-handler on ${node} to start the domain (${podName} ${ready ? 'Ready' : 'Running, not Ready'})`;
}

export interface WaitForVmOptions {
  timeoutMs?: number;
  intervalMs?: number;
  progress?: (line: string) => void;
}

/**
 * Waits until the VM's (or bare VMI's) VMI is Running and returns it, calling `progress` whenever what it waits
 * for changes. Fails early, with the reason, when the VMI ends Failed.
 */
export async function waitForVmiRunning(
  client: VmClient,
  namespace: string,
  name: string,
  options: WaitForVmOptions = {},
): Promise<VmiView> {
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  let last = '';
  let lastError = '';
  for (;;) {
    let snapshot: VmSnapshot | undefined;
    try {
      snapshot = await client.snapshot(namespace, name);
    } catch (err) {
      lastError = errorMessage(err);
    }
    const line = snapshot ? describeProgress(snapshot, name) : `the API server did not answer (${lastError})`;
    if (line !== last) options.progress?.(line);
    last = line;
    const vmi = snapshot?.vmi;
    if (vmi?.status?.phase === 'Running') return vmi;
    if (vmi?.status?.phase === 'Failed' && !snapshot?.vm) {
      throw new DevclusterError(
        `VMI ${namespace}/${name} failed: ${line}`,
        `kubectl -n ${namespace} describe vmi ${name}`,
      );
    }
    if (Date.now() > deadline) {
      throw new DevclusterError(
        `VM ${namespace}/${name} did not reach Running: ${line}`,
        `kubectl -n ${namespace} get vm,vmi,pods -o wide; kubectl -n ${namespace} describe vmi ${name}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
}

/** Seconds from the VMI's creation to each phase, from status.phaseTransitionTimestamps. */
export function phaseSeconds(
  vmi: VmiView & { metadata?: { creationTimestamp?: string | Date } },
): Record<string, number> {
  const created = vmi.metadata?.creationTimestamp;
  if (!created) return {};
  const start = new Date(created).getTime();
  const out: Record<string, number> = {};
  for (const t of vmi.status?.phaseTransitionTimestamps ?? []) {
    out[t.phase] = (new Date(t.phaseTransitionTimestamp).getTime() - start) / 1000;
  }
  return out;
}
