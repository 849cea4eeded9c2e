// The semantic rules of a VirtualMachineInstance spec: what JSON Schema cannot express (names that refer to each
// other, exactly-one-of choices, quantities that must agree). They run only on a spec whose types already checked
// out, and on a spec that has been through defaulting, as the validating webhook sees it.
import { featureGateEnabled, machineTypeAllowed, type ClusterConfig } from '../config.ts';
import { parseQuantity } from '../quantity.ts';
import {
  INTERFACE_BINDINGS,
  NETWORK_SOURCES,
  VOLUME_SOURCES,
  type Disk,
  type VirtualMachineInstanceSpec,
  type Volume,
} from '../types/vmi.ts';
import { isMacAddress, parseIpv4Cidr, PASST_BINDING_FEATURE_GATE } from '../network.ts';
import { isUUID } from '../uuid.ts';
import {
  duplicate,
  invalid,
  notSupported,
  required,
  show,
  type FieldPath,
  type StatusCause,
} from './causes.ts';

/** Inline cloud-init data above this size belongs in a Secret (KubeVirt's limit, bytes). */
export const CLOUD_INIT_INLINE_MAX_BYTES = 2048;
/** Smallest guest memory that boots anything. */
export const MIN_GUEST_MEMORY_BYTES = 1024 * 1024;
/** Upper bound on vCPUs: the most a q35 machine with KubeVirt's defaults is asked to carry. */
export const MAX_VCPUS = 512;
/** Resources a VMI may request for its launcher pod. */
export const SUPPORTED_RESOURCES = ['cpu', 'memory', 'ephemeral-storage'] as const;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DISK_SERIAL = /^[A-Za-z0-9_.+-]+$/;
const MAX_DISK_SERIAL = 256;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface SpecRuleOptions {
  config: ClusterConfig;
  /**
   * A VMI must say how much memory its guest gets; a template may leave it to an instancetype or to later
   * edits, as KubeVirt allows.
   */
  requireMemory: boolean;
}

export function isDNS1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

export function isDNS1123Subdomain(value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value);
}

function dnsLabelMessage(value: string): string {
  return `Invalid value: ${show(value)}: must be a DNS-1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit`;
}

function setKeys<T extends object, K extends keyof T & string>(value: T, keys: readonly K[]): K[] {
  return keys.filter((k) => value[k] !== undefined);
}

/** Paths of an object's members that are set twice: reports every repeat, naming the first. */
function uniqueNames(
  items: readonly { name: string }[],
  path: FieldPath,
  what: string,
  out: StatusCause[],
): Map<string, number> {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const seen = first.get(item.name);
    if (seen === undefined) first.set(item.name, i);
    else
      out.push(
        duplicate(
          path.index(i).child('name'),
          `Duplicate value: ${show(item.name)}: ${what} ${i} has the same name as ${what} ${seen}`,
        ),
      );
  });
  return first;
}

function diskTargets(disk: Disk): ('disk' | 'cdrom' | 'lun')[] {
  return (['disk', 'cdrom', 'lun'] as const).filter((t) => disk[t] !== undefined);
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function decodedLength(base64: string): number | undefined {
  const compact = base64.replace(/\s+/g, '');
  if (!BASE64.test(compact)) return undefined;
  return Buffer.from(compact, 'base64').length;
}

function validateCloudInit(volume: Volume, path: FieldPath, out: StatusCause[]): void {
  const source = volume.cloudInitNoCloud;
  if (source === undefined) return;
  const p = path.child('cloudInitNoCloud');
  const userSources = setKeys(source, ['userData', 'userDataBase64', 'secretRef']).filter(
    (k) => source[k] !== '' && !(k === 'secretRef' && source.secretRef?.name === ''),
  );
  const networkSources = setKeys(source, ['networkData', 'networkDataBase64', 'networkDataSecretRef']).filter(
    (k) => source[k] !== '' && !(k === 'networkDataSecretRef' && source.networkDataSecretRef?.name === ''),
  );
  if (userSources.length > 1) {
    out.push(
      invalid(
        p,
        `sets ${userSources.join(', ')}; user-data takes exactly one of userData, userDataBase64 or secretRef`,
      ),
    );
  }
  if (networkSources.length > 1) {
    out.push(
      invalid(
        p,
        `sets ${networkSources.join(', ')}; network-data takes exactly one of networkData, networkDataBase64 or networkDataSecretRef`,
      ),
    );
  }
  if (userSources.length === 0 && networkSources.length === 0) {
    out.push(required(p, 'needs user-data or network-data: set userData, userDataBase64 or secretRef'));
  }
  const sizes: [string, number | undefined, string][] = [];
  if (source.userData !== undefined) sizes.push(['userData', byteLength(source.userData), 'user-data']);
  if (source.networkData !== undefined)
    sizes.push(['networkData', byteLength(source.networkData), 'network-data']);
  for (const key of ['userDataBase64', 'networkDataBase64'] as const) {
    const text = source[key];
    if (text === undefined || text === '') continue;
    const length = decodedLength(text);
    if (length === undefined) out.push(invalid(p.child(key), 'is not valid base64'));
    sizes.push([key, length, key === 'userDataBase64' ? 'user-data' : 'network-data']);
  }
  for (const [key, size, what] of sizes) {
    if (size !== undefined && size > CLOUD_INIT_INLINE_MAX_BYTES) {
      const secret = what === 'user-data' ? 'secretRef' : 'networkDataSecretRef';
      out.push(
        invalid(
          p.child(key),
          `inline ${what} is ${size} bytes, more than the ${CLOUD_INIT_INLINE_MAX_BYTES}-byte limit; put it in a Secret and use ${secret}`,
        ),
      );
    }
  }
}

function validateAbsolutePath(value: string, path: FieldPath, out: StatusCause[]): void {
  if (!value.startsWith('/'))
    out.push(invalid(path, `Invalid value: ${show(value)}: must be an absolute path`));
  else if (value.split('/').includes('..'))
    out.push(invalid(path, `Invalid value: ${show(value)}: must not contain '..'`));
}

function validateVolumes(
  spec: VirtualMachineInstanceSpec,
  base: FieldPath,
  options: SpecRuleOptions,
  out: StatusCause[],
): void {
  const volumes = spec.volumes ?? [];
  const path = base.child('volumes');
  uniqueNames(volumes, path, 'volume', out);
  const diskNames = new Set((spec.domain.devices.disks ?? []).map((d) => d.name));
  volumes.forEach((volume, i) => {
    const p = path.index(i);
    if (!isDNS1123Label(volume.name)) out.push(invalid(p.child('name'), dnsLabelMessage(volume.name)));
    const sources = setKeys(volume, VOLUME_SOURCES);
    if (sources.length === 0) {
      out.push(
        required(
          p,
          'a volume needs exactly one source: containerDisk, cloudInitNoCloud, emptyDisk, persistentVolumeClaim or hostDisk',
        ),
      );
    } else if (sources.length > 1) {
      out.push(
        invalid(p, `sets ${sources.length} sources (${sources.join(', ')}); a volume takes exactly one`),
      );
    }
    if (!diskNames.has(volume.name)) {
      out.push(
        invalid(
          p.child('name'),
          `no disk uses volume ${show(volume.name)}; add a disk of that name to ${base.child('domain', 'devices', 'disks').toString()}`,
        ),
      );
    }
    if (volume.containerDisk !== undefined) {
      const c = volume.containerDisk;
      if (c.image.trim() === '')
        out.push(required(p.child('containerDisk', 'image'), 'needs the image that holds the disk'));
      if (c.path !== undefined && c.path !== '')
        validateAbsolutePath(c.path, p.child('containerDisk', 'path'), out);
    }
    validateCloudInit(volume, p, out);
    if (volume.emptyDisk !== undefined) {
      const capacity = parseQuantity(volume.emptyDisk.capacity);
      if (capacity !== undefined && capacity <= 0) {
        out.push(
          invalid(
            p.child('emptyDisk', 'capacity'),
            `Invalid value: ${show(volume.emptyDisk.capacity)}: must be greater than zero`,
          ),
        );
      }
    }
    if (volume.persistentVolumeClaim !== undefined && volume.persistentVolumeClaim.claimName === '') {
      out.push(
        required(p.child('persistentVolumeClaim', 'claimName'), 'needs the name of a PersistentVolumeClaim'),
      );
    }
    if (volume.hostDisk !== undefined) {
      const h = volume.hostDisk;
      if (!featureGateEnabled(options.config, 'HostDisk')) {
        out.push(
          invalid(
            p.child('hostDisk'),
            'the HostDisk feature gate is not enabled: add HostDisk to the KubeVirt CR developerConfiguration.featureGates',
          ),
        );
      }
      validateAbsolutePath(h.path, p.child('hostDisk', 'path'), out);
      if (h.type === 'DiskOrCreate') {
        const capacity = h.capacity === undefined ? undefined : parseQuantity(h.capacity);
        if (capacity === undefined || capacity <= 0) {
          out.push(
            required(
              p.child('hostDisk', 'capacity'),
              'type DiskOrCreate needs a capacity greater than zero for the image it creates',
            ),
          );
        }
      }
    }
  });
}

function validateDisks(
  spec: VirtualMachineInstanceSpec,
  base: FieldPath,
  bootOrders: Map<number, string>,
  out: StatusCause[],
): void {
  const disks = spec.domain.devices.disks ?? [];
  const path = base.child('domain', 'devices', 'disks');
  uniqueNames(disks, path, 'disk', out);
  const volumeNames = new Set((spec.volumes ?? []).map((v) => v.name));
  disks.forEach((disk, i) => {
    const p = path.index(i);
    const targets = diskTargets(disk);
    if (targets.length > 1)
      out.push(invalid(p, `sets ${targets.join(', ')}; a disk is exactly one of disk, cdrom or lun`));
    if (!volumeNames.has(disk.name)) {
      if (disk.cdrom !== undefined) {
        out.push(
          notSupported(
            p.child('name'),
            `an empty CD-ROM drive (no volume named ${show(disk.name)}) is not supported yet by kubevirt-ts`,
          ),
        );
      } else {
        out.push(
          invalid(
            p.child('name'),
            `no volume named ${show(disk.name)}; add one to ${base.child('volumes').toString()}`,
          ),
        );
      }
    }
    if (disk.cdrom?.bus === 'virtio')
      out.push(invalid(p.child('cdrom', 'bus'), 'a CD-ROM cannot use the virtio bus; use sata or scsi'));
    if (disk.disk?.bus === 'sata' && disk.disk.readonly === true) {
      out.push(
        invalid(
          p.child('disk', 'readonly'),
          'a SATA hard disk cannot be read-only; use bus virtio or a cdrom',
        ),
      );
    }
    if (disk.serial !== undefined && disk.serial !== '') {
      if (!DISK_SERIAL.test(disk.serial))
        out.push(
          invalid(
            p.child('serial'),
            `Invalid value: ${show(disk.serial)}: may contain only letters, digits and _ . + -`,
          ),
        );
      if (disk.serial.length > MAX_DISK_SERIAL)
        out.push(invalid(p.child('serial'), `must be at most ${MAX_DISK_SERIAL} characters`));
    }
    if (disk.bootOrder !== undefined) {
      const other = bootOrders.get(disk.bootOrder);
      if (other !== undefined)
        out.push(
          duplicate(
            p.child('bootOrder'),
            `Duplicate value: ${disk.bootOrder}: ${other} already has this boot order`,
          ),
        );
      else bootOrders.set(disk.bootOrder, p.child('bootOrder').toString());
    }
  });
}

function validateNetworks(
  spec: VirtualMachineInstanceSpec,
  base: FieldPath,
  options: SpecRuleOptions,
  out: StatusCause[],
): void {
  const interfaces = spec.domain.devices.interfaces ?? [];
  const networks = spec.networks ?? [];
  const ifacePath = base.child('domain', 'devices', 'interfaces');
  const netPath = base.child('networks');
  uniqueNames(interfaces, ifacePath, 'interface', out);
  uniqueNames(networks, netPath, 'network', out);
  const networkNames = new Set(networks.map((n) => n.name));
  const interfaceNames = new Set(interfaces.map((i) => i.name));
  interfaces.forEach((iface, i) => {
    const p = ifacePath.index(i);
    const bindings = setKeys(iface, INTERFACE_BINDINGS);
    if (bindings.length === 0) {
      out.push(
        required(
          p,
          'an interface needs exactly one binding (masquerade, bridge or passtBinding; sriov or binding are not supported yet by kubevirt-ts)',
        ),
      );
    } else if (bindings.length > 1) {
      out.push(invalid(p, `sets ${bindings.join(', ')}; an interface takes exactly one binding`));
    }
    if (!networkNames.has(iface.name))
      out.push(
        invalid(p.child('name'), `no network named ${show(iface.name)}; add one to ${netPath.toString()}`),
      );
  });
  networks.forEach((network, i) => {
    const p = netPath.index(i);
    const sources = setKeys(network, NETWORK_SOURCES);
    if (sources.length === 0) out.push(required(p, 'a network needs exactly one source: pod (or multus)'));
    else if (sources.length > 1)
      out.push(invalid(p, `sets ${sources.join(', ')}; a network takes exactly one source`));
    if (!interfaceNames.has(network.name))
      out.push(
        invalid(
          p.child('name'),
          `no interface uses network ${show(network.name)}; add an interface of that name to ${ifacePath.toString()}`,
        ),
      );
  });
  const podNetworks = networks.filter((n) => n.pod !== undefined);
  if (podNetworks.length > 1) out.push(invalid(netPath, 'only one network may be the pod network'));
  const podNames = new Set(podNetworks.map((n) => n.name));
  let podInterface: string | undefined;
  interfaces.forEach((iface, i) => {
    const p = ifacePath.index(i);
    const onPod = podNames.has(iface.name);
    if (onPod && podInterface !== undefined) {
      out.push(
        invalid(
          p.child('name'),
          `more than one interface is connected to a pod network (${podInterface} is already); a VMI has at most one pod network interface`,
        ),
      );
    } else if (onPod) podInterface = p.toString();
    if (iface.masquerade !== undefined && !onPod && networkNames.has(iface.name))
      out.push(
        invalid(
          p.child('masquerade'),
          `the masquerade binding works only on the pod network; network ${show(iface.name)} is not one`,
        ),
      );
    if (iface.passtBinding !== undefined && !featureGateEnabled(options.config, PASST_BINDING_FEATURE_GATE))
      out.push(
        invalid(
          p.child('passtBinding'),
          `the ${PASST_BINDING_FEATURE_GATE} feature gate is disabled in this cluster (developerConfiguration.disabledFeatureGates in the KubeVirt CR); remove it from there, or use masquerade`,
        ),
      );
    if (iface.passtBinding !== undefined && !onPod && networkNames.has(iface.name))
      out.push(
        invalid(
          p.child('passtBinding'),
          `the passtBinding binding works only on the pod network; network ${show(iface.name)} is not one`,
        ),
      );
    if (iface.bridge !== undefined && onPod && !options.config.permitBridgeInterfaceOnPodNetwork)
      out.push(
        invalid(
          p.child('bridge'),
          iface.name === 'default' &&
            Object.keys(iface).length === 2 &&
            options.config.defaultNetworkInterface === 'bridge'
            ? "the bridge binding on the pod network is not permitted by the cluster (network.permitBridgeInterfaceOnPodNetwork in the KubeVirt CR), and it is the cluster's network.defaultNetworkInterface, which a VM without interfaces gets; declare a masquerade interface or ask the cluster admin to change the default"
            : 'the bridge binding on the pod network is not permitted by the cluster (network.permitBridgeInterfaceOnPodNetwork in the KubeVirt CR); use masquerade',
        ),
      );
    if (
      iface.ports !== undefined &&
      iface.ports.length > 0 &&
      iface.masquerade === undefined &&
      iface.passtBinding === undefined
    )
      out.push(invalid(p.child('ports'), 'ports apply only to the masquerade and passtBinding bindings'));
    (iface.ports ?? []).forEach((port, j) => {
      const pp = p.child('ports').index(j);
      if (!Number.isInteger(port.port) || port.port < 1 || port.port > 65535)
        out.push(
          invalid(
            pp.child('port'),
            `Invalid value: ${show(port.port)}: a port must be in the range 1 to 65535`,
          ),
        );
    });
    if (iface.macAddress !== undefined) {
      const mp = p.child('macAddress');
      if (!isMacAddress(iface.macAddress))
        out.push(
          invalid(
            mp,
            `Invalid value: ${show(iface.macAddress)}: a MAC address is six hex pairs, aa:bb:cc:dd:ee:ff`,
          ),
        );
      else if ((parseInt(iface.macAddress.slice(0, 2), 16) & 1) === 1)
        out.push(
          invalid(mp, `Invalid value: ${show(iface.macAddress)}: a multicast MAC address cannot be a NIC's`),
        );
    }
  });
  networks.forEach((network, i) => {
    const cidr = network.pod?.vmNetworkCIDR;
    if (cidr === undefined) return;
    const parsed = parseIpv4Cidr(cidr);
    if (parsed === undefined || parsed.prefix > 30)
      out.push(
        invalid(
          netPath.index(i).child('pod', 'vmNetworkCIDR'),
          `Invalid value: ${show(cidr)}: must be an IPv4 network in CIDR form (host bits zero) of /30 or larger, like 10.0.2.0/24`,
        ),
      );
  });
}

function validateResources(
  spec: VirtualMachineInstanceSpec,
  base: FieldPath,
  options: SpecRuleOptions,
  out: StatusCause[],
): void {
  const domain = spec.domain;
  const resources = domain.resources ?? {};
  const rpath = base.child('domain', 'resources');
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, value] of Object.entries(resources[kind] ?? {})) {
      const p = rpath.child(kind).key(name);
      if (!(SUPPORTED_RESOURCES as readonly string[]).includes(name)) {
        out.push(
          notSupported(
            p,
            `resource ${show(name)} is not supported yet by kubevirt-ts; supported: ${SUPPORTED_RESOURCES.join(', ')}`,
          ),
        );
        continue;
      }
      const amount = parseQuantity(value);
      if (amount !== undefined && amount < 0)
        out.push(invalid(p, `Invalid value: ${show(value)}: must not be negative`));
    }
  }
  const q = (v: string | number | undefined) => (v === undefined ? undefined : parseQuantity(v));
  const cpuRequest = q(resources.requests?.cpu);
  const cpuLimit = q(resources.limits?.cpu);
  if (cpuRequest !== undefined && cpuLimit !== undefined && cpuRequest > cpuLimit) {
    out.push(
      invalid(
        rpath.child('requests').key('cpu'),
        `Invalid value: ${show(resources.requests?.cpu)}: must be less than or equal to the cpu limit ${show(resources.limits?.cpu)}`,
      ),
    );
  }
  const memRequest = q(resources.requests?.memory);
  const memLimit = q(resources.limits?.memory);
  if (memRequest !== undefined && memLimit !== undefined && memRequest > memLimit) {
    out.push(
      invalid(
        rpath.child('requests').key('memory'),
        `Invalid value: ${show(resources.requests?.memory)}: must be less than or equal to the memory limit ${show(resources.limits?.memory)}`,
      ),
    );
  }
  const guestPath = base.child('domain', 'memory', 'guest');
  const guest = q(domain.memory?.guest);
  if (guest !== undefined) {
    if (guest < MIN_GUEST_MEMORY_BYTES)
      out.push(
        invalid(guestPath, `Invalid value: ${show(domain.memory?.guest)}: the guest needs at least 1Mi`),
      );
    if (memLimit !== undefined && guest > memLimit) {
      out.push(
        invalid(
          guestPath,
          `Invalid value: ${show(domain.memory?.guest)}: must not exceed the memory limit ${show(resources.limits?.memory)}`,
        ),
      );
    }
  } else if (
    options.requireMemory &&
    (memRequest === undefined || memRequest <= 0) &&
    (memLimit === undefined || memLimit <= 0)
  ) {
    out.push(
      required(
        guestPath,
        `no memory requested: set ${guestPath.toString()} or ${rpath.child('requests').key('memory').toString()}`,
      ),
    );
  }
}

function validateCPU(spec: VirtualMachineInstanceSpec, base: FieldPath, out: StatusCause[]): void {
  const cpu = spec.domain.cpu;
  if (cpu === undefined) return;
  const topology = (['sockets', 'cores', 'threads'] as const).map((k) => Math.max(cpu[k] ?? 1, 1));
  const vcpus = topology.reduce((a, b) => a * b, 1);
  if (vcpus > MAX_VCPUS) {
    out.push(
      invalid(
        base.child('domain', 'cpu'),
        `sockets × cores × threads is ${vcpus} vCPUs, more than the ${MAX_VCPUS} a guest may have`,
      ),
    );
  }
}

function validateFirmware(spec: VirtualMachineInstanceSpec, base: FieldPath, out: StatusCause[]): void {
  const firmware = spec.domain.firmware;
  if (firmware === undefined) return;
  const p = base.child('domain', 'firmware');
  if (firmware.uuid !== undefined && firmware.uuid !== '' && !isUUID(firmware.uuid)) {
    out.push(
      invalid(
        p.child('uuid'),
        `Invalid value: ${show(firmware.uuid)}: must be a UUID such as 5a9fc181-957e-5c32-9e5a-2de5e9673531`,
      ),
    );
  }
  const bootloader = firmware.bootloader;
  if (bootloader?.bios !== undefined && bootloader.efi !== undefined) {
    out.push(invalid(p.child('bootloader'), 'set bios or efi, not both'));
  }
  // Secure Boot relies on System Management Mode: the launcher turns SMM on for it, so SMM may not be switched off.
  if (bootloader?.efi !== undefined && bootloader.efi.secureBoot !== false) {
    if (spec.domain.features?.smm?.enabled === false) {
      out.push(
        invalid(
          base.child('domain', 'features', 'smm', 'enabled'),
          'EFI Secure Boot needs SMM: leave SMM enabled, or set firmware.bootloader.efi.secureBoot: false',
        ),
      );
    }
  }
  const kernelBoot = firmware.kernelBoot;
  if (kernelBoot !== undefined) {
    const kp = p.child('kernelBoot');
    const container = kernelBoot.container;
    if (container === undefined) {
      if (kernelBoot.kernelArgs !== undefined && kernelBoot.kernelArgs !== '') {
        out.push(
          invalid(
            kp.child('kernelArgs'),
            'kernel arguments need a kernel: set kernelBoot.container with a kernelPath',
          ),
        );
      }
    } else {
      if (container.image.trim() === '')
        out.push(required(kp.child('container', 'image'), 'needs the image that holds the kernel'));
      const kernelPath = container.kernelPath ?? '';
      const initrdPath = container.initrdPath ?? '';
      if (kernelPath === '' && initrdPath === '') {
        out.push(required(kp.child('container'), 'needs kernelPath, initrdPath or both'));
      }
      if (kernelPath !== '') validateAbsolutePath(kernelPath, kp.child('container', 'kernelPath'), out);
      if (initrdPath !== '') validateAbsolutePath(initrdPath, kp.child('container', 'initrdPath'), out);
      if (kernelPath === '' && kernelBoot.kernelArgs !== undefined && kernelBoot.kernelArgs !== '') {
        out.push(invalid(kp.child('kernelArgs'), 'kernel arguments need a kernel: set container.kernelPath'));
      }
    }
  }
}

/**
 * What is wrong with a guest time zone, if anything. libvirt passes it to QEMU as TZ, where a name the tz database
 * does not have (or has in another case) silently means UTC, so the webhook checks it against the tz database.
 */
function timeZoneProblem(name: string): string | undefined {
  const hint = 'use a tz database name such as Europe/Paris';
  if (!/^[A-Za-z]/.test(name)) return `not a time zone name; ${hint}`;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return `unknown time zone; ${hint}`;
  }
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase())
    return `time zone names are case-sensitive; use ${show(resolved)}`;
  return undefined;
}

function validateClock(spec: VirtualMachineInstanceSpec, base: FieldPath, out: StatusCause[]): void {
  const clock = spec.domain.clock;
  if (clock === undefined) return;
  const p = base.child('domain', 'clock');
  if (clock.utc !== undefined && clock.timezone !== undefined) {
    out.push(invalid(p, 'set utc or timezone, not both'));
  }
  const problem = clock.timezone === undefined ? undefined : timeZoneProblem(clock.timezone);
  if (problem !== undefined) {
    out.push(invalid(p.child('timezone'), `Invalid value: ${show(clock.timezone)}: ${problem}`));
  }
}

function validateDNS(spec: VirtualMachineInstanceSpec, base: FieldPath, out: StatusCause[]): void {
  if (spec.hostname !== undefined && spec.hostname !== '' && !isDNS1123Label(spec.hostname)) {
    out.push(invalid(base.child('hostname'), dnsLabelMessage(spec.hostname)));
  }
  if (spec.subdomain !== undefined && spec.subdomain !== '' && !isDNS1123Subdomain(spec.subdomain)) {
    out.push(
      invalid(
        base.child('subdomain'),
        `Invalid value: ${show(spec.subdomain)}: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')`,
      ),
    );
  }
  const config = spec.dnsConfig;
  const p = base.child('dnsConfig');
  if (spec.dnsPolicy === 'None' && (config?.nameservers ?? []).length === 0) {
    out.push(required(p.child('nameservers'), 'dnsPolicy None needs at least one nameserver'));
  }
  if (config === undefined) return;
  // Kubernetes' own limits for pod DNS config (pkg/apis/core/validation).
  if ((config.nameservers ?? []).length > 3)
    out.push(invalid(p.child('nameservers'), 'must not have more than 3 nameservers'));
  const searches = config.searches ?? [];
  if (searches.length > 32) out.push(invalid(p.child('searches'), 'must not have more than 32 search paths'));
  if (searches.join(' ').length > 2048)
    out.push(invalid(p.child('searches'), 'must not have more than 2048 characters in total'));
}

/**
 * Every semantic rule for a VMI spec (or a template's spec) at `base`. Returns an empty list for a valid spec.
 */
export function validateVirtualMachineInstanceSpecRules(
  spec: VirtualMachineInstanceSpec,
  base: FieldPath,
  options: SpecRuleOptions,
): StatusCause[] {
  const out: StatusCause[] = [];
  const bootOrders = new Map<number, string>();
  validateVolumes(spec, base, options, out);
  validateDisks(spec, base, bootOrders, out);
  validateNetworks(spec, base, options, out);
  validateResources(spec, base, options, out);
  validateCPU(spec, base, out);
  validateFirmware(spec, base, out);
  validateClock(spec, base, out);
  validateDNS(spec, base, out);
  const machineType = spec.domain.machine?.type;
  if (machineType !== undefined && machineType !== '' && !machineTypeAllowed(options.config, machineType)) {
    out.push(
      notSupported(
        base.child('domain', 'machine', 'type'),
        `Unsupported value: ${show(machineType)}: the cluster allows ${options.config.emulatedMachines.map((m) => show(m)).join(', ')} (KubeVirt CR configuration.emulatedMachines)`,
      ),
    );
  }
  return out;
}
