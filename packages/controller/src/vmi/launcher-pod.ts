// The launcher pod of a VMI, rendered as a pure function of the VMI and the cluster configuration (KubeVirt's
// pkg/virt-controller/services/template.go, rendervolumes.go, renderresources.go; DESIGN.md §3 and §4a).
// Everything a node needs to run the VMI is in here: the compute container running virt-launcher with its flags,
// the emptyDirs it shares with virt-handler, one volume per disk source, resources (guest memory + overhead, CPU by
// the allocation ratio, the device-plugin resources), placement copied from the VMI, and the readiness gate that
// turns a paused guest into a not-ready pod.
import { posix } from 'node:path';
import type {
  V1Container,
  V1LocalObjectReference,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Volume,
  V1VolumeDevice,
  V1VolumeMount,
} from '@kubernetes/client-node';
import {
  DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS,
  featureGateEnabled,
  launcherComputeResources,
  launcherMemoryOverhead,
  vmiIdLabel,
  type ClusterConfig,
  type PullPolicy,
} from '@kubevirt-ts/schema';
import {
  ANNOTATIONS,
  COMPUTE_CONTAINER,
  GRACE_PERIOD_PADDING_SECONDS,
  KUBEVIRT_API_VERSION,
  LABELS,
  LAUNCHER_APP,
  POD_CONDITION_UNPAUSED,
} from '../constants.ts';
import { controllerRef, type VMI } from '../objects.ts';

/** The mounts every component agrees on (DESIGN.md §4a). */
export const LAUNCHER_PATHS = {
  sockets: '/var/run/kubevirt/sockets',
  private: '/var/run/kubevirt-private',
  libvirtRuntime: '/var/run/libvirt',
  containerDisks: '/var/run/kubevirt/container-disks',
  kernelBoot: '/var/run/kubevirt/kernel-boot',
  secrets: '/var/run/kubevirt-private/secret',
  pvcs: '/var/run/kubevirt-private/vmi-disks',
} as const;

/** Pod volume names the renderer uses itself; a VMI volume may not take one of them. */
export const RESERVED_VOLUME_NAMES = ['sockets', 'private', 'libvirt-runtime', 'kernel-boot'] as const;

/** KubeVirt's device-plugin resources. */
export const DEVICE_RESOURCES = {
  kvm: 'devices.kubevirt.io/kvm',
  tun: 'devices.kubevirt.io/tun',
  vhostNet: 'devices.kubevirt.io/vhost-net',
} as const;

export interface LauncherPodOptions {
  /** The virt-launcher image (the chart passes it as LAUNCHER_IMAGE). */
  launcherImage: string;
  launcherImagePullPolicy?: PullPolicy | undefined;
  config: ClusterConfig;
  /** The PersistentVolumeClaim of the VMI's namespace with this name, if it exists (from the PVC cache). */
  pvc?: (claimName: string) => V1PersistentVolumeClaim | undefined;
}

/** The VMI cannot be rendered as it is; the message names the field and what to do. */
export class LauncherPodRenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LauncherPodRenderError';
  }
}

/** A PVC the VMI uses does not exist (yet); KubeVirt reports this as FailedPvcNotFound and waits. */
export class PvcNotFoundError extends Error {
  readonly claimName: string;
  constructor(claimName: string, volume: string) {
    super(
      `PersistentVolumeClaim ${JSON.stringify(claimName)} of volume ${JSON.stringify(volume)} does not exist; create it`,
    );
    this.name = 'PvcNotFoundError';
    this.claimName = claimName;
  }
}

/** KubeVirt's vmi.kubevirt.io/id, defined once in the schema because `virtctl expose` selects by it. */
export { vmiIdLabel };

/** The guest's host name: spec.hostname, else the VMI name up to its first dot, cut to a DNS label. */
export function launcherHostname(vmi: VMI): string {
  if (vmi.spec.hostname !== undefined && vmi.spec.hostname !== '') return vmi.spec.hostname;
  return (vmi.metadata?.name ?? '').split('.')[0]!.slice(0, 63);
}

/** The VMI's grace period in seconds (KubeVirt's default 30 when unset). */
export function vmiGracePeriodSeconds(vmi: VMI): number {
  return vmi.spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS;
}

/** Kubernetes' default pull policy for an image: Always for :latest or an untagged name, else IfNotPresent. */
export function defaultPullPolicy(image: string): PullPolicy {
  if (image.includes('@')) return 'IfNotPresent';
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.lastIndexOf(':');
  if (colon === -1) return 'Always';
  return lastSegment.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

/** VMI annotations copied onto the pod: all but kubectl's and KubeVirt's api-version bookkeeping. */
function podAnnotationsFromVMI(
  annotations: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (
      k.startsWith('kubectl.kubernetes.io') ||
      k.startsWith('kubevirt.io/storage-observed-api-version') ||
      k.startsWith('kubevirt.io/latest-observed-api-version')
    ) {
      continue;
    }
    out[k] = v;
  }
  return out;
}

interface RenderedVolumes {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  devices: V1VolumeDevice[];
  pullSecrets: V1LocalObjectReference[];
}

function emptyDir(name: string, mountPath: string, out: RenderedVolumes): void {
  out.volumes.push({ name, emptyDir: {} });
  out.mounts.push({ name, mountPath });
}

function addPullSecret(out: RenderedVolumes, name: string | undefined): void {
  if (name !== undefined && name !== '' && !out.pullSecrets.some((s) => s.name === name))
    out.pullSecrets.push({ name });
}

function renderVolumes(vmi: VMI, opts: LauncherPodOptions): RenderedVolumes {
  const out: RenderedVolumes = { volumes: [], mounts: [], devices: [], pullSecrets: [] };
  emptyDir('sockets', LAUNCHER_PATHS.sockets, out);
  emptyDir('private', LAUNCHER_PATHS.private, out);
  emptyDir('libvirt-runtime', LAUNCHER_PATHS.libvirtRuntime, out);

  const taken = new Set<string>(RESERVED_VOLUME_NAMES);
  const claim = (name: string, path: string): void => {
    if (taken.has(name)) {
      throw new LauncherPodRenderError(
        `${path}: the launcher pod already has a volume named ${JSON.stringify(name)}; rename the VMI volume ` +
          `(${RESERVED_VOLUME_NAMES.join(', ')} are reserved)`,
      );
    }
    taken.add(name);
  };

  for (const [i, volume] of (vmi.spec.volumes ?? []).entries()) {
    const path = `spec.volumes[${i}]`;
    const name = volume.name;
    if (volume.containerDisk !== undefined) {
      claim(name, path);
      const cd = volume.containerDisk;
      out.volumes.push({
        name,
        image: { reference: cd.image, pullPolicy: cd.imagePullPolicy ?? defaultPullPolicy(cd.image) },
      });
      out.mounts.push({ name, mountPath: posix.join(LAUNCHER_PATHS.containerDisks, name), readOnly: true });
      addPullSecret(out, cd.imagePullSecret);
    } else if (volume.cloudInitNoCloud !== undefined) {
      // The launcher reads user-data from <secrets>/<volume>/ and network-data from <secrets>/<volume>-ndata/.
      const ci = volume.cloudInitNoCloud;
      const secretName = ci.secretRef?.name;
      if (secretName !== undefined && secretName !== '') {
        claim(`${name}-udata`, path);
        out.volumes.push({ name: `${name}-udata`, secret: { secretName } });
        out.mounts.push({
          name: `${name}-udata`,
          mountPath: posix.join(LAUNCHER_PATHS.secrets, name),
          readOnly: true,
        });
      }
      const networkSecret = ci.networkDataSecretRef?.name;
      if (networkSecret !== undefined && networkSecret !== '') {
        claim(`${name}-ndata`, path);
        out.volumes.push({ name: `${name}-ndata`, secret: { secretName: networkSecret } });
        out.mounts.push({
          name: `${name}-ndata`,
          mountPath: posix.join(LAUNCHER_PATHS.secrets, `${name}-ndata`),
          readOnly: true,
        });
      }
    } else if (volume.persistentVolumeClaim !== undefined) {
      claim(name, path);
      const claimName = volume.persistentVolumeClaim.claimName;
      let block = false;
      if (opts.pvc !== undefined) {
        const pvc = opts.pvc(claimName);
        if (pvc === undefined) throw new PvcNotFoundError(claimName, name);
        block = pvc.spec?.volumeMode === 'Block';
      }
      out.volumes.push({
        name,
        persistentVolumeClaim: {
          claimName,
          ...(volume.persistentVolumeClaim.readOnly === true ? { readOnly: true } : {}),
        },
      });
      if (block) out.devices.push({ name, devicePath: `/dev/${name}` });
      else out.mounts.push({ name, mountPath: posix.join(LAUNCHER_PATHS.pvcs, name) });
    } else if (volume.hostDisk !== undefined) {
      if (!featureGateEnabled(opts.config, 'HostDisk')) {
        throw new LauncherPodRenderError(
          `${path}.hostDisk: hostDisk volumes need the HostDisk feature gate; add it to ` +
            'spec.configuration.developerConfiguration.featureGates of the KubeVirt CR',
        );
      }
      claim(name, path);
      // The launcher opens hostDisk.path itself, so the file's folder appears at the same path in the pod.
      const dir = posix.dirname(volume.hostDisk.path);
      out.volumes.push({
        name,
        hostPath: {
          path: dir,
          type: volume.hostDisk.type === 'DiskOrCreate' ? 'DirectoryOrCreate' : 'Directory',
        },
      });
      out.mounts.push({ name, mountPath: dir });
    }
    // emptyDisk: the launcher creates it in `private`; nothing to mount.
  }

  const kernel = vmi.spec.domain.firmware?.kernelBoot?.container;
  if (kernel !== undefined) {
    out.volumes.push({
      name: 'kernel-boot',
      image: {
        reference: kernel.image,
        pullPolicy: kernel.imagePullPolicy ?? defaultPullPolicy(kernel.image),
      },
    });
    out.mounts.push({ name: 'kernel-boot', mountPath: LAUNCHER_PATHS.kernelBoot, readOnly: true });
    addPullSecret(out, kernel.imagePullSecret);
  }
  return out;
}

/** The flags of packages/launcher/src/main.ts; every path derives from the VMI and DESIGN.md §4a's defaults. */
function launcherArgs(vmi: VMI, config: ClusterConfig): string[] {
  const args = [
    `--name=${vmi.metadata?.name ?? ''}`,
    `--namespace=${vmi.metadata?.namespace ?? ''}`,
    `--uid=${vmi.metadata?.uid ?? ''}`,
    `--grace-period-seconds=${vmiGracePeriodSeconds(vmi) + GRACE_PERIOD_PADDING_SECONDS}`,
  ];
  if (config.useEmulation) args.push('--use-emulation');
  return args;
}

/**
 * KubeVirt asks for /dev/vhost-net only for a virtio NIC and only when emulation is off: under `useEmulation` QEMU
 * falls back to userland virtio-net, so a node without vhost-net (as here) can still run the VM.
 */
export function needsVhostNet(vmi: VMI, config: Pick<ClusterConfig, 'useEmulation'>): boolean {
  if (config.useEmulation) return false;
  const interfaces = vmi.spec?.domain?.devices?.interfaces ?? [];
  return interfaces.some((i) => (i.model ?? 'virtio') === 'virtio');
}

function computeContainer(vmi: VMI, opts: LauncherPodOptions, volumes: RenderedVolumes): V1Container {
  const resources = launcherComputeResources(vmi.spec, opts.config);
  const limits: Record<string, string> = { ...resources.limits };
  // Extended resources are requested through limits; the scheduler counts them against the node's devices.
  if (!opts.config.useEmulation) limits[DEVICE_RESOURCES.kvm] = '1';
  limits[DEVICE_RESOURCES.tun] = '1';
  if (needsVhostNet(vmi, opts.config)) limits[DEVICE_RESOURCES.vhostNet] = '1';
  const container: V1Container = {
    name: COMPUTE_CONTAINER,
    image: opts.launcherImage,
    imagePullPolicy: opts.launcherImagePullPolicy ?? defaultPullPolicy(opts.launcherImage),
    args: launcherArgs(vmi, opts.config),
    resources: { requests: { ...resources.requests }, limits },
    volumeMounts: volumes.mounts,
    // The launcher runs its own libvirt daemon and QEMU as root (packages/launcher/Dockerfile); as in KubeVirt's
    // root mode it gets NET_BIND_SERVICE and SYS_NICE (QEMU's vCPU thread priorities) and nothing else.
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      capabilities: { add: ['NET_BIND_SERVICE', 'SYS_NICE'] },
    },
  };
  if (volumes.devices.length > 0) container.volumeDevices = volumes.devices;
  return container;
}

/**
 * The launcher pod of `vmi`. Pure: the same VMI and options give the same pod. Throws LauncherPodRenderError for
 * a VMI that cannot run as it is, PvcNotFoundError while a claim it needs is missing.
 */
export function renderLauncherPod(vmi: VMI, opts: LauncherPodOptions): V1Pod {
  const name = vmi.metadata?.name;
  const namespace = vmi.metadata?.namespace;
  const uid = vmi.metadata?.uid;
  if (!name || !namespace || !uid) {
    throw new LauncherPodRenderError(
      'the VMI has no name, namespace or uid yet; only a stored VMI can be rendered',
    );
  }
  const volumes = renderVolumes(vmi, opts);
  const hostname = launcherHostname(vmi);
  const spec = vmi.spec;

  const labels: Record<string, string> = {
    ...vmi.metadata?.labels,
    [LABELS.app]: LAUNCHER_APP,
    [LABELS.createdBy]: uid,
    [LABELS.vmName]: hostname,
    [LABELS.vmiId]: vmiIdLabel(name),
  };
  const annotations: Record<string, string> = {
    ...podAnnotationsFromVMI(vmi.metadata?.annotations),
    [ANNOTATIONS.domain]: name,
    [ANNOTATIONS.defaultContainer]: COMPUTE_CONTAINER,
    [ANNOTATIONS.migrationTransportUnix]: 'true',
    [ANNOTATIONS.evictOnly]: '',
    [ANNOTATIONS.memoryOverheadBytes]: String(launcherMemoryOverhead(spec, opts.config)),
  };
  const nodeSelector: Record<string, string> = {
    ...opts.config.nodeSelectors,
    ...spec.nodeSelector,
    [LABELS.schedulable]: 'true',
  };

  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `virt-launcher-${name}-`,
      namespace,
      labels,
      annotations,
      ownerReferences: [controllerRef(vmi, KUBEVIRT_API_VERSION, 'VirtualMachineInstance')],
    },
    spec: {
      hostname,
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: vmiGracePeriodSeconds(vmi) + 2 * GRACE_PERIOD_PADDING_SECONDS,
      containers: [computeContainer(vmi, opts, volumes)],
      volumes: volumes.volumes,
      nodeSelector,
      readinessGates: [{ conditionType: POD_CONDITION_UNPAUSED }],
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsUser: 0 },
    },
  };
  const podSpec = pod.spec!;
  if (spec.subdomain !== undefined && spec.subdomain !== '') podSpec.subdomain = spec.subdomain;
  if (spec.affinity !== undefined) podSpec.affinity = structuredClone(spec.affinity);
  if (spec.tolerations !== undefined) podSpec.tolerations = structuredClone(spec.tolerations);
  if (spec.topologySpreadConstraints !== undefined) {
    podSpec.topologySpreadConstraints = structuredClone(spec.topologySpreadConstraints);
  }
  if (spec.schedulerName !== undefined && spec.schedulerName !== '')
    podSpec.schedulerName = spec.schedulerName;
  if (spec.priorityClassName !== undefined && spec.priorityClassName !== '') {
    podSpec.priorityClassName = spec.priorityClassName;
  }
  if (spec.dnsPolicy !== undefined) podSpec.dnsPolicy = spec.dnsPolicy;
  if (spec.dnsConfig !== undefined) podSpec.dnsConfig = structuredClone(spec.dnsConfig);
  if (volumes.pullSecrets.length > 0) podSpec.imagePullSecrets = volumes.pullSecrets;
  return pod;
}
