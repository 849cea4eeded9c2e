// VMI → libvirt domain XML, as a pure function. Disk files are prepared beforehand (disks.ts) and arrive here as
// paths and formats, so the conversion reads no file and starts no process: it is what the golden tests pin.
// The shape follows KubeVirt's converter (pkg/virt-launcher/virtwrap/converter): domain name <namespace>_<name>,
// metadata in the kubevirt.io namespace, ua-<volume> aliases, SMBIOS identifying KubeVirt.
import type { VMIDisk, VMIPanicDevice, VirtualMachineInstance } from '../vmi.ts';
import { parseQuantity } from '../vmi.ts';
import { interfaceMac, POD_NETWORK_TAP } from '@kubevirt-ts/schema/network';
import { passtPaths } from '../network/passt.ts';
import { el, serialize } from './xml.ts';
import type { XmlElement } from './xml.ts';

export const KUBEVIRT_METADATA_NS = 'http://kubevirt.io';
export const QEMU_COMMANDLINE_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';
export const GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0';
export const DEFAULT_MACHINE_TYPE = 'q35';
export const DEFAULT_CPU_MODEL = 'host-model';
export const DEFAULT_GRACE_PERIOD_SECONDS = 30;

/** A disk file ready for QEMU, by the volume it belongs to. */
export interface PreparedDisk {
  path: string;
  format: 'raw' | 'qcow2';
  /** The file the overlay at `path` writes over (containerDisk). */
  backingStore?: { path: string; format: 'raw' | 'qcow2' };
  /** The source is read-only (a read-only PVC); the guest sees a read-only disk. */
  readonly?: boolean;
}

export interface OvmfFirmware {
  code: string;
  vars: string;
  secureCode?: string | undefined;
  secureVars?: string | undefined;
}

export interface ConverterContext {
  /** Software emulation (TCG): useEmulation in the KubeVirt CR. */
  emulation: boolean;
  /** /dev/kvm exists and is usable. */
  kvmAvailable: boolean;
  /** The pod's sockets dir: serial0 and vnc live there. */
  socketDir: string;
  /** The pod's private dir: the serial log and EFI variables live there. */
  privateDir: string;
  /** Where the kernel-boot image is mounted. */
  kernelBootDir: string;
  disks: Readonly<Record<string, PreparedDisk>>;
  /** OVMF firmware files, when installed. */
  ovmf?: OvmfFirmware | undefined;
  /** The guest MAC of the pod network interface when the binding decides it (bridge: the pod's own). */
  podInterfaceMac?: string | undefined;
}

export interface ConvertedDomain {
  name: string;
  uuid: string;
  xml: string;
}

/** A VMI the launcher cannot turn into a domain: says which field and what to do. */
export class ConversionError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ConversionError';
    this.field = field;
  }
}

export function domainName(vmi: Pick<VirtualMachineInstance, 'metadata'>): string {
  return `${vmi.metadata.namespace}_${vmi.metadata.name}`;
}

export function gracePeriodSeconds(vmi: VirtualMachineInstance): number {
  return vmi.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_PERIOD_SECONDS;
}

const BUS_PREFIX: Record<string, string> = { virtio: 'vd', sata: 'sd', scsi: 'sd', usb: 'sd' };

/** Device names as libvirt wants them: vda…vdz, vdaa…; sata, scsi and usb disks share the sd prefix. */
export function deviceName(prefix: string, index: number): string {
  let suffix = '';
  let n = index;
  do {
    suffix = String.fromCharCode(97 + (n % 26)) + suffix;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return prefix + suffix;
}

function hypervisorType(ctx: ConverterContext): 'kvm' | 'qemu' {
  if (ctx.emulation) return 'qemu';
  if (ctx.kvmAvailable) return 'kvm';
  throw new ConversionError(
    'spec.domain',
    'kvm is not present on this node (/dev/kvm is missing or unusable) and software emulation is not allowed; ' +
      'set spec.configuration.developerConfiguration.useEmulation: true in the KubeVirt resource, or run the VM on a node with KVM',
  );
}

function memoryBytes(vmi: VirtualMachineInstance): number {
  const domain = vmi.spec.domain;
  const candidates: [string, string | number | undefined][] = [
    ['spec.domain.memory.guest', domain.memory?.guest],
    ['spec.domain.resources.requests.memory', domain.resources?.requests?.memory],
    ['spec.domain.resources.limits.memory', domain.resources?.limits?.memory],
  ];
  for (const [field, value] of candidates) {
    if (value === undefined) continue;
    const bytes = parseQuantity(value);
    if (bytes === undefined || bytes <= 0)
      throw new ConversionError(field, `${String(value)} is not a positive memory quantity`);
    return Math.ceil(bytes);
  }
  throw new ConversionError(
    'spec.domain.memory.guest',
    'the guest has no memory: set memory.guest or resources.requests.memory',
  );
}

function cpuTopology(vmi: VirtualMachineInstance): { sockets: number; cores: number; threads: number } {
  const cpu = vmi.spec.domain.cpu ?? {};
  let sockets = cpu.sockets;
  if (cpu.cores === undefined && cpu.sockets === undefined && cpu.threads === undefined) {
    // As KubeVirt: without a topology, the CPU limit (else request) rounded up gives the sockets.
    const resources = vmi.spec.domain.resources;
    const amount = parseQuantity(resources?.limits?.cpu ?? resources?.requests?.cpu);
    if (amount !== undefined && amount > 0) sockets = Math.ceil(amount - 1e-9);
  }
  const topology = { sockets: sockets ?? 1, cores: cpu.cores ?? 1, threads: cpu.threads ?? 1 };
  for (const [k, v] of Object.entries(topology)) {
    if (!Number.isInteger(v) || v < 1)
      throw new ConversionError(`spec.domain.cpu.${k}`, `${v} is not a positive integer`);
  }
  return topology;
}

function cpuElement(
  vmi: VirtualMachineInstance,
  type: 'kvm' | 'qemu',
  topology: ReturnType<typeof cpuTopology>,
): XmlElement {
  const model = vmi.spec.domain.cpu?.model ?? DEFAULT_CPU_MODEL;
  const topo = el('topology', {
    sockets: topology.sockets,
    dies: 1,
    cores: topology.cores,
    threads: topology.threads,
  });
  const features = (vmi.spec.domain.cpu?.features ?? []).map((f) =>
    el('feature', { policy: f.policy ?? 'require', name: f.name }),
  );
  if (model === 'host-passthrough') {
    if (type === 'qemu') {
      throw new ConversionError(
        'spec.domain.cpu.model',
        'host-passthrough needs KVM and this VM runs under software emulation; use host-model or a named CPU model',
      );
    }
    return el('cpu', { mode: 'host-passthrough', check: 'none', migratable: 'on' }, topo, features);
  }
  if (model === 'host-model') return el('cpu', { mode: 'host-model', check: 'partial' }, topo, features);
  return el(
    'cpu',
    { mode: 'custom', match: 'exact', check: 'partial' },
    el('model', { fallback: 'allow' }, model),
    topo,
    features,
  );
}

function clockElement(vmi: VirtualMachineInstance): XmlElement {
  const clock = vmi.spec.domain.clock;
  const timers: XmlElement[] = [];
  const timer = clock?.timer;
  const yesNo = (b: boolean | undefined): string | undefined =>
    b === undefined ? undefined : b ? 'yes' : 'no';
  if (timer?.rtc)
    timers.push(
      el('timer', {
        name: 'rtc',
        present: yesNo(timer.rtc.present),
        tickpolicy: timer.rtc.tickPolicy,
        track: timer.rtc.track,
      }),
    );
  if (timer?.pit)
    timers.push(
      el('timer', { name: 'pit', present: yesNo(timer.pit.present), tickpolicy: timer.pit.tickPolicy }),
    );
  if (timer?.hpet)
    timers.push(
      el('timer', { name: 'hpet', present: yesNo(timer.hpet.present), tickpolicy: timer.hpet.tickPolicy }),
    );
  if (timer?.kvm) timers.push(el('timer', { name: 'kvmclock', present: yesNo(timer.kvm.present) }));
  if (timer?.hyperv) timers.push(el('timer', { name: 'hypervclock', present: yesNo(timer.hyperv.present) }));
  if (clock?.timezone !== undefined) {
    if (clock.utc !== undefined)
      throw new ConversionError('spec.domain.clock', 'set either utc or timezone, not both');
    return el('clock', { offset: 'timezone', timezone: clock.timezone }, timers);
  }
  const offset = clock?.utc?.offsetSeconds;
  if (offset !== undefined && offset !== 0) {
    return el('clock', { offset: 'variable', adjustment: offset, basis: 'utc' }, timers);
  }
  return el('clock', { offset: 'utc' }, timers);
}

function osElement(
  vmi: VirtualMachineInstance,
  ctx: ConverterContext,
  name: string,
): { os: XmlElement; secureBoot: boolean } {
  const firmware = vmi.spec.domain.firmware;
  const machine = vmi.spec.domain.machine?.type ?? DEFAULT_MACHINE_TYPE;
  const children: XmlElement[] = [el('type', { arch: 'x86_64', machine }, 'hvm')];
  let secureBoot = false;
  const efi = firmware?.bootloader?.efi;
  if (efi) {
    if (!ctx.ovmf) {
      throw new ConversionError(
        'spec.domain.firmware.bootloader.efi',
        'EFI firmware (OVMF) is not installed in the launcher; install the ovmf package or use BIOS',
      );
    }
    // KubeVirt defaults secureBoot to true when EFI is asked for.
    secureBoot = efi.secureBoot ?? true;
    const code = secureBoot ? ctx.ovmf.secureCode : ctx.ovmf.code;
    const vars = secureBoot ? ctx.ovmf.secureVars : ctx.ovmf.vars;
    if (!code || !vars) {
      throw new ConversionError(
        'spec.domain.firmware.bootloader.efi.secureBoot',
        'OVMF has no secure-boot build here; set secureBoot: false',
      );
    }
    children.push(el('loader', { readonly: 'yes', secure: secureBoot ? 'yes' : 'no', type: 'pflash' }, code));
    children.push(el('nvram', { template: vars }, `${ctx.privateDir}/${name}_VARS.fd`));
  }
  const kernelBoot = firmware?.kernelBoot;
  if (kernelBoot) {
    const container = kernelBoot.container;
    if (!container) {
      throw new ConversionError(
        'spec.domain.firmware.kernelBoot.container',
        'kernel boot needs a container image holding the kernel',
      );
    }
    if (!container.kernelPath && !container.initrdPath) {
      throw new ConversionError(
        'spec.domain.firmware.kernelBoot.container',
        'name kernelPath, initrdPath or both',
      );
    }
    if (container.kernelPath)
      children.push(el('kernel', {}, ctx.kernelBootDir + absolute(container.kernelPath)));
    if (container.initrdPath)
      children.push(el('initrd', {}, ctx.kernelBootDir + absolute(container.initrdPath)));
    if (kernelBoot.kernelArgs) children.push(el('cmdline', {}, kernelBoot.kernelArgs));
  }
  if (firmware?.bootloader?.bios?.useSerial) children.push(el('bios', { useserial: 'yes' }));
  children.push(el('smbios', { mode: 'sysinfo' }));
  return { os: el('os', {}, children), secureBoot };
}

function absolute(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

function featuresElement(vmi: VirtualMachineInstance, secureBoot: boolean): XmlElement {
  const f = vmi.spec.domain.features;
  const children: XmlElement[] = [];
  // ACPI is on unless switched off: the guest's graceful shutdown depends on it.
  if (f?.acpi?.enabled !== false) children.push(el('acpi'));
  if (f?.apic && f.apic.enabled !== false) {
    children.push(
      el('apic', {
        eoi: f.apic.endOfInterrupt === undefined ? undefined : f.apic.endOfInterrupt ? 'on' : 'off',
      }),
    );
  }
  if (secureBoot || (f?.smm && f.smm.enabled !== false)) children.push(el('smm', { state: 'on' }));
  return el('features', {}, children);
}

function diskElement(
  disk: VMIDisk,
  index: number,
  prepared: PreparedDisk,
  targets: Map<string, number>,
): { element: XmlElement; scsi: boolean } {
  const field = `spec.domain.devices.disks[${index}]`;
  if (disk.lun)
    throw new ConversionError(`${field}.lun`, 'LUN disks are not supported yet; attach the volume as a disk');
  const kinds = [disk.disk, disk.cdrom].filter((k) => k !== undefined).length;
  if (kinds > 1) throw new ConversionError(field, 'set one of disk and cdrom, not both');
  const cdrom = disk.cdrom !== undefined;
  const target = disk.cdrom ?? disk.disk ?? {};
  const bus = target.bus ?? (cdrom ? 'sata' : 'virtio');
  const prefix = BUS_PREFIX[bus];
  if (!prefix)
    throw new ConversionError(
      `${field}.${cdrom ? 'cdrom' : 'disk'}.bus`,
      `unknown bus ${bus}; use virtio, sata or scsi`,
    );
  if (cdrom && bus === 'virtio') {
    throw new ConversionError(`${field}.cdrom.bus`, 'a cdrom cannot sit on the virtio bus; use sata or scsi');
  }
  const n = targets.get(prefix) ?? 0;
  targets.set(prefix, n + 1);
  // A cdrom is read-only unless said otherwise (KubeVirt's default); a read-only source forces it too.
  const readonly =
    prepared.readonly === true || (cdrom ? target.readonly !== false : target.readonly === true);
  let cache = disk.cache;
  // QEMU refuses native AIO on a cached file; KubeVirt pairs io=native with cache=none the same way.
  if (disk.io === 'native' && cache === undefined) cache = 'none';
  const driver = el('driver', {
    name: 'qemu',
    type: prepared.format,
    cache,
    io: disk.io,
    error_policy: cdrom ? undefined : (disk.errorPolicy ?? 'stop'),
    discard: cdrom || readonly ? undefined : 'unmap',
  });
  const backing = prepared.backingStore
    ? el(
        'backingStore',
        { type: 'file' },
        el('format', { type: prepared.backingStore.format }),
        el('source', { file: prepared.backingStore.path }),
      )
    : undefined;
  const element = el(
    'disk',
    { type: 'file', device: cdrom ? 'cdrom' : 'disk' },
    driver,
    el('source', { file: prepared.path }),
    backing,
    el('target', { dev: deviceName(prefix, n), bus }),
    readonly && el('readonly'),
    disk.serial !== undefined && el('serial', {}, disk.serial),
    disk.bootOrder !== undefined && el('boot', { order: disk.bootOrder }),
    el('alias', { name: `ua-${disk.name}` }),
  );
  return { element, scsi: bus === 'scsi' };
}

/**
 * The QEMU arguments of a passtBinding NIC: a `stream` netdev connected to the socket of the passt the launcher runs
 * (network/passt.ts), and the NIC on it. libvirt 9.0 cannot describe a passt backend (its parser refuses
 * `<backend type='passt'/>`, libvirt issue #462), so these go through libvirt's `<qemu:commandline>`; QEMU puts the
 * device on a free slot of the root PCIe bus.
 */
function passtArguments(
  vmi: VirtualMachineInstance,
  iface: NonNullable<VirtualMachineInstance['spec']['domain']['devices']['interfaces']>[number],
  ctx: ConverterContext,
): string[] {
  const model = iface.model ?? 'virtio';
  const netdev = `netpasst-${iface.name}`;
  const device = {
    driver: model === 'virtio' ? 'virtio-net-pci-non-transitional' : model,
    netdev,
    id: `passt-${iface.name}`,
    mac: ctx.podInterfaceMac ?? interfaceMac(vmi.metadata.uid, iface),
    romfile: '',
  };
  return [
    '-netdev',
    `stream,id=${netdev},server=off,addr.type=unix,addr.path=${passtPaths(ctx.privateDir).socket}`,
    '-device',
    JSON.stringify(device),
  ];
}

/**
 * The guest's NICs. The pod network's interface (masquerade, bridge) uses the tap the handler created in the pod's
 * network namespace, which libvirt opens as it is (`type='ethernet'`, `managed='no'`); without vhost-net (software
 * emulation) QEMU's own virtio backend moves the packets. A passtBinding interface has no element here: it is made
 * of QEMU arguments (passtArguments). Other networks do not exist yet (validation refuses them).
 */
function interfaceElements(
  vmi: VirtualMachineInstance,
  ctx: ConverterContext,
): { elements: XmlElement[]; qemuArgs: string[] } {
  const interfaces = vmi.spec.domain.devices.interfaces ?? [];
  const networks = new Map((vmi.spec.networks ?? []).map((n) => [n.name, n]));
  const qemuArgs: string[] = [];
  const elements = interfaces.flatMap((iface, i) => {
    const field = `spec.domain.devices.interfaces[${i}]`;
    const network = networks.get(iface.name);
    if (network === undefined)
      throw new ConversionError(
        `${field}.name`,
        `no network is named ${iface.name}; add it to spec.networks`,
      );
    if (network.pod !== undefined && iface.passtBinding !== undefined) {
      qemuArgs.push(...passtArguments(vmi, iface, ctx));
      return [];
    }
    if (network.pod === undefined || (iface.masquerade === undefined && iface.bridge === undefined))
      throw new ConversionError(
        field,
        'only the masquerade, bridge and passtBinding bindings on the pod network are supported',
      );
    const model = iface.model ?? 'virtio';
    return el(
      'interface',
      { type: 'ethernet' },
      el('alias', { name: `ua-${iface.name}` }),
      el('mac', { address: ctx.podInterfaceMac ?? interfaceMac(vmi.metadata.uid, iface) }),
      el('target', { dev: POD_NETWORK_TAP, managed: 'no' }),
      el('model', { type: model === 'virtio' ? 'virtio-non-transitional' : model }),
      model === 'virtio' && ctx.emulation && el('driver', { name: 'qemu' }),
      el('rom', { enabled: 'no' }),
    );
  });
  return { elements, qemuArgs };
}

export function convertVMIToDomain(vmi: VirtualMachineInstance, ctx: ConverterContext): ConvertedDomain {
  const type = hypervisorType(ctx);
  const name = domainName(vmi);
  const uuid = vmi.spec.domain.firmware?.uuid ?? vmi.metadata.uid;
  const devices = vmi.spec.domain.devices;
  const { elements: interfaces, qemuArgs } = interfaceElements(vmi, ctx);
  const topology = cpuTopology(vmi);
  const { os, secureBoot } = osElement(vmi, ctx, name);

  const volumes = new Set((vmi.spec.volumes ?? []).map((v) => v.name));
  const targets = new Map<string, number>();
  let scsi = false;
  const disks = (devices.disks ?? []).map((disk, i) => {
    if (!volumes.has(disk.name)) {
      throw new ConversionError(
        `spec.domain.devices.disks[${i}].name`,
        `no volume is named ${disk.name}; add it to spec.volumes`,
      );
    }
    const prepared = ctx.disks[disk.name];
    if (!prepared)
      throw new ConversionError(
        `spec.volumes[name=${disk.name}]`,
        'the volume was not prepared (unsupported source)',
      );
    const converted = diskElement(disk, i, prepared, targets);
    scsi ||= converted.scsi;
    return converted.element;
  });

  const serial = devices.autoattachSerialConsole !== false;
  const graphics = devices.autoattachGraphicsDevice !== false;
  const panics = ((devices.panicDevices ?? []) as VMIPanicDevice[]).map((p, i) => {
    const model = p.model ?? 'isa';
    if (!['isa', 'hyperv', 'pvpanic'].includes(model)) {
      throw new ConversionError(
        `spec.domain.devices.panicDevices[${i}].model`,
        `unknown panic device ${model}; use isa or hyperv`,
      );
    }
    return el('panic', { model });
  });

  const domain = el(
    'domain',
    { type, 'xmlns:qemu': qemuArgs.length > 0 ? QEMU_COMMANDLINE_NS : undefined },
    el('name', {}, name),
    el('uuid', {}, uuid),
    el(
      'metadata',
      {},
      el(
        'kubevirt',
        { xmlns: KUBEVIRT_METADATA_NS },
        el('uid', {}, vmi.metadata.uid),
        el('graceperiod', {}, el('deletionGracePeriodSeconds', {}, gracePeriodSeconds(vmi))),
      ),
    ),
    el('memory', { unit: 'b' }, memoryBytes(vmi)),
    el('vcpu', { placement: 'static' }, topology.sockets * topology.cores * topology.threads),
    el(
      'sysinfo',
      { type: 'smbios' },
      el(
        'system',
        {},
        el('entry', { name: 'manufacturer' }, 'KubeVirt'),
        el('entry', { name: 'product' }, 'None'),
        el('entry', { name: 'uuid' }, uuid),
        vmi.spec.domain.firmware?.serial !== undefined &&
          el('entry', { name: 'serial' }, vmi.spec.domain.firmware.serial),
        el('entry', { name: 'family' }, 'KubeVirt'),
      ),
    ),
    os,
    featuresElement(vmi, secureBoot),
    cpuElement(vmi, type, topology),
    clockElement(vmi),
    el('on_poweroff', {}, 'destroy'),
    el('on_reboot', {}, 'restart'),
    // Keep a panicked guest (state Crashed, reason Panicked) so the handler sees why it stopped.
    el('on_crash', {}, 'preserve'),
    el(
      'devices',
      {},
      disks,
      interfaces,
      // No USB controller unless a device needs one: it costs memory and boot time for nothing.
      el('controller', { type: 'usb', index: 0, model: 'none' }),
      scsi && el('controller', { type: 'scsi', index: 0, model: 'virtio-scsi' }),
      serial &&
        el(
          'serial',
          { type: 'unix' },
          el('source', { mode: 'bind', path: `${ctx.socketDir}/serial0` }),
          el('target', { port: 0 }),
          devices.logSerialConsole !== false &&
            el('log', { file: `${ctx.privateDir}/serial0.log`, append: 'on' }),
        ),
      el('channel', { type: 'unix' }, el('target', { type: 'virtio', name: GUEST_AGENT_CHANNEL })),
      graphics &&
        el('graphics', { type: 'vnc' }, el('listen', { type: 'socket', socket: `${ctx.socketDir}/vnc` })),
      graphics && el('video', {}, el('model', { type: 'vga', heads: 1, vram: 16384 })),
      devices.autoattachMemBalloon === false
        ? el('memballoon', { model: 'none' })
        : el('memballoon', { model: 'virtio' }, el('stats', { period: 10 })),
      devices.rng !== undefined &&
        el('rng', { model: 'virtio' }, el('backend', { model: 'random' }, '/dev/urandom')),
      panics,
    ),
    qemuArgs.length > 0 &&
      el(
        'qemu:commandline',
        {},
        qemuArgs.map((value) => el('qemu:arg', { value })),
      ),
  );
  return { name, uuid, xml: serialize(domain) };
}
