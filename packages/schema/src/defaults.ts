// Defaulting, as KubeVirt's mutating webhooks do it (pkg/defaults, vmi-mutator.go, vm-mutator.go): pure functions
// that return a defaulted copy and leave their input alone. The API server runs mutating webhooks before schema
// validation, so these accept any JSON: a part with the wrong type is left as it is for validation to report.
// Every default is "set it when absent", so applying them twice changes nothing (defaults.test.ts checks this).
import { DEFAULT_CLUSTER_CONFIG, type ClusterConfig } from './config.ts';
import { DEFAULT_INTERFACE_BINDING_FIELD } from './network.ts';
import { parseQuantity, quantityCeil } from './quantity.ts';
import type { PreferenceSpec } from './types/instancetype.ts';
import { firmwareUUIDFromName } from './uuid.ts';

/** Grace period a VMI gets when it sets none (KubeVirt's DefaultGracePeriodSeconds). */
export const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30;
/**
 * Bus of a disk, CD-ROM or LUN that names none, as KubeVirt sets it on amd64 (pkg/defaults/amd64.go): SATA,
 * because every guest OS drives it without extra drivers. Set bus: virtio for speed when the guest has virtio.
 */
export const DEFAULT_DISK_BUS = 'sata';

export interface DefaultingOptions {
  /** The cluster configuration (clusterConfigFrom(kubevirtCR)); KubeVirt's defaults when absent. */
  config?: ClusterConfig;
}

export interface VirtualMachineDefaultingOptions extends DefaultingOptions {
  /** The spec of the preference the VM references, when the caller resolved it: its machine type wins. */
  preference?: PreferenceSpec;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object at parent[key], created when absent; undefined when something else is there. */
function ensureObject(parent: JsonObject, key: string): JsonObject | undefined {
  const value = parent[key];
  if (value === undefined || value === null) {
    const created: JsonObject = {};
    parent[key] = created;
    return created;
  }
  return isObject(value) ? value : undefined;
}

function objectAt(parent: JsonObject | undefined, key: string): JsonObject | undefined {
  const value = parent?.[key];
  return isObject(value) ? value : undefined;
}

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A topology count that Go would read as "not set" (absent or 0). */
function isUnsetCount(value: unknown): boolean {
  return value === undefined || value === null || value === 0;
}

function defaultMachine(domain: JsonObject, config: ClusterConfig): void {
  const machine = ensureObject(domain, 'machine');
  if (machine !== undefined && isUnset(machine.type)) machine.type = config.machineType;
}

function defaultResources(domain: JsonObject, config: ClusterConfig): void {
  const limitCpu = objectAt(objectAt(domain, 'resources'), 'limits')?.cpu;
  const limit = parseQuantity(limitCpu);
  const fromLimit = limit !== undefined && limit !== 0;
  // A cluster-wide CPU request is written into the VMI only when it differs from KubeVirt's default, which the
  // pod renderer applies anyway; dedicated CPUs take their request from the topology instead.
  const clusterRequest = parseQuantity(config.cpuRequest);
  const fromCluster =
    clusterRequest !== undefined &&
    clusterRequest !== parseQuantity(DEFAULT_CLUSTER_CONFIG.cpuRequest) &&
    objectAt(domain, 'cpu')?.dedicatedCpuPlacement !== true;
  if (!fromLimit && !fromCluster) return;
  const requests = objectAt(objectAt(domain, 'resources'), 'requests');
  if (requests !== undefined && requests.cpu !== undefined) return;
  const resources = ensureObject(domain, 'resources');
  const target = resources === undefined ? undefined : ensureObject(resources, 'requests');
  if (target === undefined) return;
  target.cpu = fromLimit ? limitCpu : config.cpuRequest;
}

function defaultGuestMemory(domain: JsonObject): void {
  const memory = domain.memory;
  if (isObject(memory) && !isUnset(memory.guest)) return;
  if (memory !== undefined && memory !== null && !isObject(memory)) return;
  const resources = objectAt(domain, 'resources');
  const candidates = [objectAt(resources, 'requests')?.memory, objectAt(resources, 'limits')?.memory];
  const source = candidates.find((q) => {
    const bytes = parseQuantity(q);
    return bytes !== undefined && bytes !== 0;
  });
  if (source === undefined) return;
  const target = ensureObject(domain, 'memory');
  if (target !== undefined) target.guest = source;
}

function defaultCPU(domain: JsonObject, config: ClusterConfig): void {
  const cpu = ensureObject(domain, 'cpu');
  if (cpu === undefined) return;
  const counts = ['sockets', 'cores', 'threads'] as const;
  if (counts.every((k) => isUnsetCount(cpu[k]))) {
    // Like KubeVirt: vCPUs from the cpu limit, else the request, laid out as sockets (best guest performance).
    const resources = objectAt(domain, 'resources');
    const fromResources =
      quantityCeil(objectAt(resources, 'limits')?.cpu) ?? quantityCeil(objectAt(resources, 'requests')?.cpu);
    cpu.sockets = fromResources !== undefined && fromResources >= 1 ? fromResources : 1;
    cpu.cores = 1;
    cpu.threads = 1;
  } else {
    // KubeVirt leaves the others at 0 and reads 0 as 1 everywhere; writing the 1 keeps every reader simple.
    for (const k of counts) if (isUnsetCount(cpu[k])) cpu[k] = 1;
  }
  if (isUnset(cpu.model)) cpu.model = config.cpuModel;
}

function defaultDisks(spec: JsonObject, devices: JsonObject): void {
  if (devices.disks !== undefined && devices.disks !== null && !Array.isArray(devices.disks)) return;
  const volumes: unknown[] = Array.isArray(spec.volumes) ? spec.volumes : [];
  const disks: unknown[] = Array.isArray(devices.disks) ? devices.disks : [];
  const named = new Set(disks.filter(isObject).map((d) => d.name));
  for (const fs of Array.isArray(devices.filesystems) ? (devices.filesystems as unknown[]) : []) {
    if (isObject(fs)) named.add(fs.name);
  }
  // Every volume without a disk (or filesystem) of its name gets a plain disk (KubeVirt's SetDefaultVolumeDisk).
  for (const volume of volumes) {
    if (isObject(volume) && typeof volume.name === 'string' && !named.has(volume.name)) {
      disks.push({ name: volume.name });
      named.add(volume.name);
    }
  }
  if (disks.length > 0 || Array.isArray(devices.disks)) devices.disks = disks;

  for (const disk of disks) {
    if (!isObject(disk)) continue;
    if (disk.disk === undefined && disk.cdrom === undefined && disk.lun === undefined) disk.disk = {};
    const cdrom = objectAt(disk, 'cdrom');
    if (cdrom !== undefined) {
      if (cdrom.readonly === undefined) cdrom.readonly = true;
      if (isUnset(cdrom.tray)) cdrom.tray = 'closed';
    }
    for (const target of ['disk', 'cdrom', 'lun']) {
      const t = objectAt(disk, target);
      if (t !== undefined && isUnset(t.bus)) t.bus = DEFAULT_DISK_BUS;
    }
  }
}

function defaultPullPolicies(spec: JsonObject): void {
  for (const volume of Array.isArray(spec.volumes) ? (spec.volumes as unknown[]) : []) {
    const containerDisk = objectAt(isObject(volume) ? volume : undefined, 'containerDisk');
    if (containerDisk === undefined || !isUnset(containerDisk.imagePullPolicy)) continue;
    if (typeof containerDisk.image !== 'string') continue;
    const image = containerDisk.image;
    // As Kubernetes does for containers: a :latest or untagged image is pulled every time.
    const lastSegment = image.slice(image.lastIndexOf('/') + 1);
    const untagged = !lastSegment.includes(':') && !image.includes('@');
    containerDisk.imagePullPolicy = image.endsWith(':latest') || untagged ? 'Always' : 'IfNotPresent';
  }
}

function defaultFeatures(domain: JsonObject): void {
  const features = ensureObject(domain, 'features');
  if (features === undefined) return;
  const acpi = ensureObject(features, 'acpi');
  if (acpi !== undefined && acpi.enabled === undefined) acpi.enabled = true;
  for (const name of ['apic', 'smm', 'pvspinlock']) {
    const feature = objectAt(features, name);
    if (feature !== undefined && feature.enabled === undefined) feature.enabled = true;
  }
}

function defaultFirmwareUUID(domain: JsonObject, name: unknown): void {
  if (typeof name !== 'string' || name === '') return;
  const firmware = ensureObject(domain, 'firmware');
  if (firmware !== undefined && isUnset(firmware.uuid)) firmware.uuid = firmwareUUIDFromName(name);
}

/**
 * Applies the VMI spec defaults in place. `name` is the VMI's (or VM's) name, from which the firmware UUID is
 * derived; without one (generateName) the UUID stays unset and the launcher uses the VMI's UID.
 */
function applyVirtualMachineInstanceSpecDefaults(
  spec: JsonObject,
  config: ClusterConfig,
  name: unknown,
): void {
  if (isUnset(spec.architecture)) spec.architecture = config.defaultArchitecture;
  if (spec.terminationGracePeriodSeconds === undefined || spec.terminationGracePeriodSeconds === null) {
    spec.terminationGracePeriodSeconds = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS;
  }
  if (isUnset(spec.evictionStrategy) && config.evictionStrategy !== undefined) {
    spec.evictionStrategy = config.evictionStrategy;
  }
  defaultPullPolicies(spec);
  const domain = ensureObject(spec, 'domain');
  if (domain === undefined) return;
  const devices = ensureObject(domain, 'devices');
  defaultMachine(domain, config);
  defaultResources(domain, config);
  defaultGuestMemory(domain);
  defaultCPU(domain, config);
  defaultFeatures(domain);
  defaultFirmwareUUID(domain, name);
  if (devices !== undefined) defaultDisks(spec, devices);
  if (devices !== undefined) defaultPodNetwork(spec, devices, config);
}

/**
 * KubeVirt's SetDefaultNetworkInterface: a VMI with neither networks nor interfaces (and autoattachPodInterface not
 * false) gets the pod network `default` and an interface on it with the cluster's `network.defaultNetworkInterface`
 * binding (bridge unless the KubeVirt CR says otherwise). When that binding is bridge and the cluster does not permit
 * bridge on the pod network, the interface is still added: validation then refuses the VMI, naming the setting, as
 * KubeVirt's webhook does, rather than giving it silently no NIC.
 */
function defaultPodNetwork(spec: JsonObject, devices: JsonObject, config: ClusterConfig): void {
  if (devices.autoattachPodInterface === false) return;
  const empty = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.length === 0);
  if (!empty(spec.networks) || !empty(devices.interfaces)) return;
  const field = DEFAULT_INTERFACE_BINDING_FIELD[config.defaultNetworkInterface];
  if (field === undefined) return;
  spec.networks = [{ name: 'default', pod: {} }];
  devices.interfaces = [{ name: 'default', [field]: {} }];
}

/** A defaulted copy of a VMI spec; `name` feeds the firmware UUID. */
export function defaultVirtualMachineInstanceSpec<T>(
  spec: T,
  options: DefaultingOptions & { name?: string } = {},
): T {
  const copy = structuredClone(spec) as unknown;
  if (isObject(copy)) {
    applyVirtualMachineInstanceSpecDefaults(copy, options.config ?? DEFAULT_CLUSTER_CONFIG, options.name);
  }
  return copy as T;
}

/**
 * A defaulted copy of a VirtualMachineInstance, as the VMI mutating webhook does on create: the spec defaults,
 * then `status.memory` and `status.currentCPUTopology` from the defaulted spec when the status has none. (Phase
 * Pending, its timestamp and the finalizer are the webhook's to add: they depend on the request, not the object.)
 */
export function defaultVirtualMachineInstance<T>(vmi: T, options: DefaultingOptions = {}): T {
  const copy = structuredClone(vmi) as unknown;
  if (!isObject(copy)) return copy as T;
  const spec = copy.spec;
  if (!isObject(spec)) return copy as T;
  const config = options.config ?? DEFAULT_CLUSTER_CONFIG;
  applyVirtualMachineInstanceSpecDefaults(spec, config, objectAt(copy, 'metadata')?.name);

  const domain = objectAt(spec, 'domain');
  const guest = objectAt(domain, 'memory')?.guest;
  const cpu = objectAt(domain, 'cpu');
  const status = copy.status;
  if (status !== undefined && status !== null && !isObject(status)) return copy as T;
  const additions: JsonObject = {};
  if (!isObject(status) || status.memory === undefined) {
    if (typeof guest === 'string' || typeof guest === 'number') {
      additions.memory = { guestAtBoot: guest, guestCurrent: guest, guestRequested: guest };
    }
  }
  if (!isObject(status) || status.currentCPUTopology === undefined) {
    const counts = [cpu?.sockets, cpu?.cores, cpu?.threads];
    if (counts.every((n) => typeof n === 'number')) {
      additions.currentCPUTopology = { sockets: counts[0], cores: counts[1], threads: counts[2] };
    }
  }
  if (Object.keys(additions).length > 0) copy.status = { ...(isObject(status) ? status : {}), ...additions };
  return copy as T;
}

/**
 * A defaulted copy of a VirtualMachine, as KubeVirt's VM mutating webhook does: the template gets its
 * architecture and machine type (the preference's preferred ones first) and the firmware UUID derived from the
 * VM's name. The rest of the VMI defaults are applied when the VMI is created, after the instancetype and
 * preference are expanded into it, so a preference can still fill what the VM leaves open.
 */
export function defaultVirtualMachine<T>(vm: T, options: VirtualMachineDefaultingOptions = {}): T {
  const copy = structuredClone(vm) as unknown;
  if (!isObject(copy)) return copy as T;
  const template = objectAt(objectAt(copy, 'spec'), 'template');
  if (template === undefined) return copy as T;
  const spec = ensureObject(template, 'spec');
  if (spec === undefined) return copy as T;
  const config = options.config ?? DEFAULT_CLUSTER_CONFIG;
  const preference = options.preference;
  const preferredArchitecture = preference?.preferredArchitecture;
  if (
    isUnset(spec.architecture) &&
    typeof preferredArchitecture === 'string' &&
    preferredArchitecture !== ''
  ) {
    spec.architecture = preferredArchitecture;
  }
  if (isUnset(spec.architecture)) spec.architecture = config.defaultArchitecture;
  const domain = ensureObject(spec, 'domain');
  if (domain === undefined) return copy as T;
  // KubeVirt's webhook re-serializes the Go struct, whose devices field is never omitted.
  ensureObject(domain, 'devices');
  const preferred = preference?.machine?.preferredMachineType;
  if (typeof preferred === 'string' && preferred !== '') {
    const machine = ensureObject(domain, 'machine');
    if (machine !== undefined && isUnset(machine.type)) machine.type = preferred;
  }
  defaultMachine(domain, config);
  defaultFirmwareUUID(domain, objectAt(copy, 'metadata')?.name);
  return copy as T;
}
