// Expansion of an instancetype and a preference into a VM's template (KubeVirt's pkg/instancetype/apply): the
// instancetype sets the VM's size and a VM may not set any of it itself (a conflict names the field); the
// preference fills only what the VM leaves open. Pure: the caller looks the objects up and passes their specs.
import { formatBytes, parseQuantity } from './quantity.ts';
import type { InstancetypeSpec, PreferenceSpec, PreferredCPUTopology } from './types/instancetype.ts';
import type { InstancetypeMatcher, PreferenceMatcher } from './types/vm.ts';
import type { VirtualMachineInstanceSpec } from './types/vmi.ts';
import { FieldPath, invalid, type StatusCause } from './validation/causes.ts';

export type InstancetypeKind = 'VirtualMachineInstancetype' | 'VirtualMachineClusterInstancetype';
export type PreferenceKind = 'VirtualMachinePreference' | 'VirtualMachineClusterPreference';

/**
 * The kind a VM's `spec.instancetype` refers to, as KubeVirt reads `kind` (case-insensitive, plural accepted,
 * cluster-wide when empty); undefined for a kind KubeVirt does not know.
 */
export function instancetypeKind(matcher: Pick<InstancetypeMatcher, 'kind'>): InstancetypeKind | undefined {
  switch ((matcher.kind ?? '').toLowerCase()) {
    case '':
    case 'virtualmachineclusterinstancetype':
    case 'virtualmachineclusterinstancetypes':
      return 'VirtualMachineClusterInstancetype';
    case 'virtualmachineinstancetype':
    case 'virtualmachineinstancetypes':
      return 'VirtualMachineInstancetype';
    default:
      return undefined;
  }
}

/** The kind a VM's `spec.preference` refers to (see instancetypeKind). */
export function preferenceKind(matcher: Pick<PreferenceMatcher, 'kind'>): PreferenceKind | undefined {
  switch ((matcher.kind ?? '').toLowerCase()) {
    case '':
    case 'virtualmachineclusterpreference':
    case 'virtualmachineclusterpreferences':
      return 'VirtualMachineClusterPreference';
    case 'virtualmachinepreference':
    case 'virtualmachinepreferences':
      return 'VirtualMachinePreference';
    default:
      return undefined;
  }
}

export interface ExpansionInput {
  instancetype?: InstancetypeSpec | undefined;
  preference?: PreferenceSpec | undefined;
}

export interface TemplateLike {
  metadata?: { annotations?: Record<string, string>; [key: string]: unknown } | undefined;
  spec: VirtualMachineInstanceSpec;
}

export interface ExpansionResult<T extends TemplateLike> {
  /** The template with the instancetype and preference applied; the input when there are conflicts. */
  template: T;
  /** One cause per VM field that the instancetype also sets; empty when the expansion succeeded. */
  causes: StatusCause[];
}

const CONFLICT =
  "the VM's instancetype sets this field; remove it from the VM (a VM may not override its instancetype)";

function instancetypeConflicts(
  it: InstancetypeSpec,
  spec: VirtualMachineInstanceSpec,
  metadata: TemplateLike['metadata'],
  specPath: FieldPath,
  metadataPath: FieldPath,
): StatusCause[] {
  const causes: StatusCause[] = [];
  const conflict = (path: FieldPath) => causes.push(invalid(path, CONFLICT));
  const domain = spec.domain;
  const resources = domain.resources;
  if (it.nodeSelector !== undefined && spec.nodeSelector !== undefined)
    conflict(specPath.child('nodeSelector'));
  if ((it.schedulerName ?? '') !== '' && (spec.schedulerName ?? '') !== '')
    conflict(specPath.child('schedulerName'));

  const cpu = domain.cpu ?? {};
  const cpuPath = specPath.child('domain', 'cpu');
  if (resources?.requests?.cpu !== undefined)
    conflict(specPath.child('domain', 'resources', 'requests').key('cpu'));
  if (resources?.limits?.cpu !== undefined)
    conflict(specPath.child('domain', 'resources', 'limits').key('cpu'));
  for (const k of ['sockets', 'cores', 'threads'] as const)
    if ((cpu[k] ?? 0) !== 0) conflict(cpuPath.child(k));
  if ((it.cpu.model ?? '') !== '' && (cpu.model ?? '') !== '') conflict(cpuPath.child('model'));

  const memoryPath = specPath.child('domain', 'memory');
  if (domain.memory?.guest !== undefined) conflict(memoryPath.child('guest'));
  if (resources?.requests?.memory !== undefined)
    conflict(specPath.child('domain', 'resources', 'requests').key('memory'));
  if (resources?.limits?.memory !== undefined)
    conflict(specPath.child('domain', 'resources', 'limits').key('memory'));

  for (const [key, value] of Object.entries(it.annotations ?? {})) {
    const existing = metadata?.annotations?.[key];
    if (existing !== undefined && existing !== value) conflict(metadataPath.child('annotations').key(key));
  }
  return causes;
}

function preferredTopology(preference: PreferenceSpec | undefined): PreferredCPUTopology {
  return preference?.cpu?.preferredCPUTopology ?? 'sockets';
}

/** Lays `vcpus` out as KubeVirt does for the preference's preferredCPUTopology (default: all sockets). */
export function guestTopology(
  vcpus: number,
  preference: PreferenceSpec | undefined,
): { sockets: number; cores: number; threads: number } {
  const topology = { sockets: 1, cores: 1, threads: 1 };
  if (vcpus <= 1) return topology;
  switch (preferredTopology(preference)) {
    case 'cores':
    case 'preferCores':
      topology.cores = vcpus;
      break;
    case 'threads':
    case 'preferThreads':
      topology.threads = vcpus;
      break;
    case 'spread':
    case 'preferSpread': {
      const ratio = preference?.cpu?.spreadOptions?.ratio ?? (preference?.preferSpreadSocketToCoreRatio || 2);
      switch (preference?.cpu?.spreadOptions?.across ?? 'SocketsCores') {
        case 'SocketsCores':
          topology.cores = ratio;
          topology.sockets = Math.floor(vcpus / ratio);
          break;
        case 'CoresThreads':
          topology.threads = ratio;
          topology.cores = Math.floor(vcpus / ratio);
          break;
        case 'SocketsCoresThreads':
          topology.threads = 2;
          topology.cores = ratio;
          topology.sockets = Math.floor(vcpus / 2 / ratio);
          break;
      }
      break;
    }
    default:
      topology.sockets = vcpus;
  }
  return topology;
}

function applyInstancetype(
  it: InstancetypeSpec,
  preference: PreferenceSpec | undefined,
  template: TemplateLike,
): void {
  const spec = template.spec;
  if (it.nodeSelector !== undefined) spec.nodeSelector = { ...it.nodeSelector };
  if ((it.schedulerName ?? '') !== '') spec.schedulerName = it.schedulerName;
  const cpu = (spec.domain.cpu ??= {});
  if ((it.cpu.model ?? '') !== '') cpu.model = it.cpu.model;
  Object.assign(cpu, guestTopology(it.cpu.guest, preference));
  const memory = (spec.domain.memory ??= {});
  memory.guest = it.memory.guest;
  const overcommit = it.memory.overcommitPercent ?? 0;
  const guestBytes = parseQuantity(it.memory.guest);
  if (overcommit > 0 && guestBytes !== undefined) {
    // The pod asks for that much less memory than the guest sees.
    const resources = (spec.domain.resources ??= {});
    resources.requests = {
      ...resources.requests,
      memory: formatBytes(Math.floor(guestBytes * (1 - overcommit / 100))),
    };
  }
  if (it.annotations !== undefined) {
    const metadata = (template.metadata ??= {});
    metadata.annotations = { ...it.annotations, ...metadata.annotations };
  }
}

function applyPreference(p: PreferenceSpec, template: TemplateLike): void {
  const spec = template.spec;
  const domain = spec.domain;
  const devices = domain.devices;
  const d = p.devices;
  if (d !== undefined) {
    if (d.preferredAutoattachGraphicsDevice !== undefined)
      devices.autoattachGraphicsDevice ??= d.preferredAutoattachGraphicsDevice;
    if (d.preferredAutoattachMemBalloon !== undefined)
      devices.autoattachMemBalloon ??= d.preferredAutoattachMemBalloon;
    if (d.preferredAutoattachPodInterface !== undefined)
      devices.autoattachPodInterface ??= d.preferredAutoattachPodInterface;
    if (d.preferredAutoattachSerialConsole !== undefined)
      devices.autoattachSerialConsole ??= d.preferredAutoattachSerialConsole;
    // KubeVirt overrides here: the VMI's field is a plain bool that cannot say "unset".
    if (d.preferredDisableHotplug !== undefined) devices.disableHotplug = d.preferredDisableHotplug;
    for (const disk of devices.disks ?? []) {
      if (disk.disk === undefined && disk.cdrom === undefined && disk.lun === undefined) disk.disk = {};
      if (disk.disk !== undefined) {
        if (d.preferredDiskBus !== undefined && (disk.disk.bus ?? '') === '')
          disk.disk.bus = d.preferredDiskBus;
        if (d.preferredDiskCache !== undefined && (disk.cache ?? '') === '')
          disk.cache = d.preferredDiskCache;
        if (d.preferredDiskIO !== undefined && (disk.io ?? '') === '') disk.io = d.preferredDiskIO;
      } else if (disk.cdrom !== undefined) {
        if (d.preferredCdromBus !== undefined && (disk.cdrom.bus ?? '') === '')
          disk.cdrom.bus = d.preferredCdromBus;
      }
    }
  }
  const f = p.features;
  if (f !== undefined) {
    const features = (domain.features ??= {});
    // KubeVirt overrides acpi (a non-pointer struct in Go) and fills the others only when unset.
    if (f.preferredAcpi !== undefined) features.acpi = { ...f.preferredAcpi };
    if (f.preferredApic !== undefined) features.apic ??= { ...f.preferredApic };
    if (f.preferredSmm !== undefined) features.smm ??= { ...f.preferredSmm };
  }
  const fw = p.firmware;
  if (fw !== undefined) {
    const firmware = (domain.firmware ??= {});
    const bootloader = (firmware.bootloader ??= {});
    if (fw.preferredUseBios === true && bootloader.bios === undefined && bootloader.efi === undefined)
      bootloader.bios = {};
    if (fw.preferredUseBiosSerial !== undefined && bootloader.bios !== undefined) {
      bootloader.bios.useSerial ??= fw.preferredUseBiosSerial;
    }
  }
  const machineType = p.machine?.preferredMachineType ?? '';
  if (machineType !== '') {
    const machine = (domain.machine ??= {});
    if ((machine.type ?? '') === '') machine.type = machineType;
  }
  if (p.preferredSubdomain !== undefined && (spec.subdomain ?? '') === '')
    spec.subdomain = p.preferredSubdomain;
  if (p.preferredTerminationGracePeriodSeconds !== undefined) {
    spec.terminationGracePeriodSeconds ??= p.preferredTerminationGracePeriodSeconds;
  }
  if ((p.preferredArchitecture ?? '') !== '' && spec.architecture === undefined) {
    spec.architecture = p.preferredArchitecture as VirtualMachineInstanceSpec['architecture'];
  }
  if (p.annotations !== undefined) {
    const metadata = (template.metadata ??= {});
    metadata.annotations = { ...p.annotations, ...metadata.annotations };
  }
}

/**
 * Applies an instancetype and a preference (either may be absent) to a copy of a VM template. `path` is where the
 * template sits in its object (`spec.template` for a VM), for the conflict causes.
 */
export function expandTemplate<T extends TemplateLike>(
  template: T,
  input: ExpansionInput,
  path: FieldPath = FieldPath.root('spec', 'template'),
): ExpansionResult<T> {
  if (input.instancetype === undefined && input.preference === undefined) return { template, causes: [] };
  const copy = structuredClone(template);
  copy.spec.domain.devices ??= {};
  if (input.instancetype !== undefined) {
    const causes = instancetypeConflicts(
      input.instancetype,
      copy.spec,
      copy.metadata,
      path.child('spec'),
      path.child('metadata'),
    );
    if (causes.length > 0) return { template, causes };
    applyInstancetype(input.instancetype, input.preference, copy);
  }
  if (input.preference !== undefined) applyPreference(input.preference, copy);
  return { template: copy, causes: [] };
}

/**
 * Checks a preference's requirements against what the VM gets: the instancetype's vCPUs and memory when there
 * is one, else the VM's own topology and guest memory (expects a defaulted spec).
 */
export function checkPreferenceRequirements(
  preference: PreferenceSpec,
  instancetype: InstancetypeSpec | undefined,
  spec: VirtualMachineInstanceSpec,
  path: FieldPath = FieldPath.root('spec'),
): StatusCause[] {
  const requirements = preference.requirements;
  if (requirements === undefined) return [];
  const causes: StatusCause[] = [];
  const wantCpu = requirements.cpu?.guest ?? 0;
  if (wantCpu > 0) {
    const cpu = spec.domain.cpu;
    const have =
      instancetype?.cpu.guest ??
      Math.max(cpu?.sockets ?? 1, 1) * Math.max(cpu?.cores ?? 1, 1) * Math.max(cpu?.threads ?? 1, 1);
    if (have < wantCpu) {
      const where =
        instancetype !== undefined
          ? path.child('instancetype')
          : path.child('template', 'spec', 'domain', 'cpu');
      causes.push(invalid(where, `the preference requires ${wantCpu} vCPUs, the VM gets ${have}`));
    }
  }
  const wantMemory = requirements.memory === undefined ? undefined : parseQuantity(requirements.memory.guest);
  if (wantMemory !== undefined && wantMemory > 0) {
    const source = instancetype?.memory.guest ?? spec.domain.memory?.guest;
    const have = source === undefined ? 0 : (parseQuantity(source) ?? 0);
    if (have < wantMemory) {
      const where =
        instancetype !== undefined
          ? path.child('instancetype')
          : path.child('template', 'spec', 'domain', 'memory', 'guest');
      causes.push(
        invalid(
          where,
          `the preference requires ${String(requirements.memory?.guest)} of guest memory, the VM gets ${String(source ?? 'none')}`,
        ),
      );
    }
  }
  const wantArch = requirements.architecture ?? '';
  if (wantArch !== '' && spec.architecture !== undefined && spec.architecture !== wantArch) {
    causes.push(
      invalid(
        path.child('template', 'spec', 'architecture'),
        `the preference requires architecture ${wantArch}, the VM has ${spec.architecture}`,
      ),
    );
  }
  return causes;
}
