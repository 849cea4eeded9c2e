// Each validation rule with a manifest that breaks it (the cause, its field and type) and a nearby manifest that
// keeps it (no cause). VMIs go through defaulting first, as they do in the webhook.
import { describe, expect, it } from 'vitest';
import { clusterConfigFrom } from '../config.ts';
import { defaultVirtualMachine, defaultVirtualMachineInstance } from '../defaults.ts';
import type { InstancetypeSpec, PreferenceSpec } from '../types/instancetype.ts';
import type { VirtualMachineInstance } from '../types/vmi.ts';
import type { StatusCause } from './causes.ts';
import {
  validate,
  validateInstancetype,
  validateKubeVirt,
  validatePreference,
  validateVirtualMachine,
  validateVirtualMachineInstance,
  validateVirtualMachineInstanceMigration,
  validateVirtualMachineInstanceReplicaSet,
  precompileValidators,
  type VirtualMachineValidationOptions,
} from './validate.ts';

type Json = Record<string, unknown>;

/** expect.stringMatching, typed for object literals. */
const matching = (re: RegExp): string => expect.stringMatching(re) as string;

function vmi(): Json {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'testvmi', namespace: 'default' },
    spec: {
      domain: {
        resources: { requests: { memory: '256Mi' } },
        devices: { disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }] },
      },
      volumes: [{ name: 'rootdisk', containerDisk: { image: 'registry.kubevirt-ts.dev/test-guest:latest' } }],
    },
  };
}

function vm(): Json {
  const template = vmi();
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'testvm', namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      template: { metadata: { labels: { app: 'x' } }, spec: template.spec as Json },
    },
  };
}

const hostDiskGate = clusterConfigFrom({
  spec: { configuration: { developerConfiguration: { featureGates: ['HostDisk'] } } },
});

function admitVMI(object: Json, config = hostDiskGate): StatusCause[] {
  return validateVirtualMachineInstance(
    defaultVirtualMachineInstance(object as VirtualMachineInstance, { config }),
    {
      config,
    },
  );
}

interface Case {
  rule: string;
  bad: (o: Json) => void;
  good: (o: Json) => void;
  field: string;
  type: StatusCause['type'];
  message?: RegExp;
  /** Validate without defaulting first (for rules defaulting would mask). */
  raw?: boolean;
}

const spec = (o: Json): Json => o.spec as Json;
const domain = (o: Json): Json => spec(o).domain as Json;
const disk0 = (o: Json): Json => ((domain(o).devices as Json).disks as Json[])[0] as Json;
const volume0 = (o: Json): Json => (spec(o).volumes as Json[])[0] as Json;
const addVolume = (o: Json, volume: Json, disk: Json = { name: volume.name, disk: { bus: 'virtio' } }) => {
  (spec(o).volumes as Json[]).push(volume);
  ((domain(o).devices as Json).disks as Json[]).push(disk);
};
const noop = () => undefined;

const vmiCases: Case[] = [
  {
    rule: 'unknown fields are rejected naming their path',
    bad: (o) => (domain(o).cpu = { corez: 2 }),
    good: (o) => (domain(o).cpu = { cores: 2 }),
    field: 'spec.domain.cpu.corez',
    type: 'FieldValueInvalid',
    message: /unknown field "corez"/,
  },
  {
    rule: 'unknown top-level fields are rejected',
    bad: (o) => (o.sepc = {}),
    good: (o) => (o.status = {}),
    field: 'sepc',
    type: 'FieldValueInvalid',
    message: /unknown field/,
  },
  {
    rule: 'fields KubeVirt has and we do not support yet are rejected',
    bad: (o) => (domain(o).cpu = { dedicatedCpuPlacement: true }),
    good: (o) => (domain(o).cpu = { dedicatedCpuPlacement: false }),
    field: 'spec.domain.cpu.dedicatedCpuPlacement',
    type: 'FieldValueNotSupported',
    message: /not supported yet by kubevirt-ts/,
  },
  {
    rule: 'the passt binding works only on the pod network',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', passtBinding: {} }];
      spec(o).networks = [{ name: 'default' }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', passtBinding: {} }];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[0].passtBinding',
    type: 'FieldValueInvalid',
    message: /works only on the pod network; network "default" is not one/,
  },
  {
    rule: 'ports apply to the masquerade and passt bindings only',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', bridge: {}, ports: [{ port: 80 }] }];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [
        { name: 'default', passtBinding: {}, ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] },
      ];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[0].ports',
    type: 'FieldValueInvalid',
    message: /only to the masquerade and passtBinding bindings/,
  },
  {
    rule: 'an interface takes exactly one binding',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', passtBinding: {}, masquerade: {} }];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', passtBinding: {} }];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[0]',
    type: 'FieldValueInvalid',
    message: /sets masquerade, passtBinding; an interface takes exactly one binding/,
  },
  {
    rule: 'a forwarded port is in 1..65535',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [
        { name: 'default', masquerade: {}, ports: [{ port: 80 }, { port: 70000 }] },
      ];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [
        { name: 'default', masquerade: {}, ports: [{ port: 80 }, { port: 65535, protocol: 'UDP' }] },
      ];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[0].ports[1].port',
    type: 'FieldValueInvalid',
    message: /70000: a port must be in the range 1 to 65535/,
  },
  {
    rule: 'at most one interface on the pod network',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [
        { name: 'a', masquerade: {} },
        { name: 'b', masquerade: {} },
      ];
      spec(o).networks = [
        { name: 'a', pod: {} },
        { name: 'b', pod: {} },
      ];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'a', masquerade: {} }];
      spec(o).networks = [{ name: 'a', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[1].name',
    type: 'FieldValueInvalid',
    message:
      /more than one interface is connected to a pod network \(spec.domain.devices.interfaces\[0\] is already\)/,
  },
  {
    rule: 'an interface names an existing network',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', masquerade: {} }];
      spec(o).networks = [{ name: 'other', pod: {} }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'other', masquerade: {} }];
      spec(o).networks = [{ name: 'other', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[0].name',
    type: 'FieldValueInvalid',
    message: /no network named "default"/,
  },
  {
    rule: 'a MAC address is six hex pairs and not multicast',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [
        { name: 'default', masquerade: {}, macAddress: '01:00:5e:00:00:01' },
      ];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [
        { name: 'default', masquerade: {}, macAddress: '02:00:5E:00:00:01' },
      ];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    field: 'spec.domain.devices.interfaces[0].macAddress',
    type: 'FieldValueInvalid',
    message: /multicast/,
  },
  {
    rule: 'vmNetworkCIDR is an IPv4 range of /30 or larger',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', masquerade: {} }];
      spec(o).networks = [{ name: 'default', pod: { vmNetworkCIDR: '10.0.2.1/24' } }];
    },
    good: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default', masquerade: {} }];
      spec(o).networks = [{ name: 'default', pod: { vmNetworkCIDR: '192.168.7.0/29' } }];
    },
    field: 'spec.networks[0].pod.vmNetworkCIDR',
    type: 'FieldValueInvalid',
    message: /host bits zero/,
  },
  {
    rule: 'enum values KubeVirt knows that we do not support yet are rejected',
    bad: (o) => (disk0(o).disk = { bus: 'usb' }),
    good: (o) => (disk0(o).disk = { bus: 'scsi' }),
    field: 'spec.domain.devices.disks[0].disk.bus',
    type: 'FieldValueNotSupported',
    message: /"usb": not supported yet .* supported values: "virtio", "sata", "scsi"/,
  },
  {
    rule: 'enum values nobody knows are rejected with the supported ones',
    bad: (o) => (disk0(o).disk = { bus: 'ide' }),
    good: (o) => (disk0(o).disk = { bus: 'virtio' }),
    field: 'spec.domain.devices.disks[0].disk.bus',
    type: 'FieldValueNotSupported',
    message: /Unsupported value: "ide": supported values: "virtio", "sata", "scsi"$/,
  },
  {
    rule: 'panic devices of the isa and hyperv models are accepted; pvpanic (libvirt 9.1) is not yet',
    bad: (o) => ((domain(o).devices as Json).panicDevices = [{ model: 'isa' }, { model: 'pvpanic' }]),
    good: (o) => ((domain(o).devices as Json).panicDevices = [{ model: 'isa' }, { model: 'hyperv' }, {}]),
    field: 'spec.domain.devices.panicDevices[1].model',
    type: 'FieldValueNotSupported',
    message: /"pvpanic": not supported yet .* supported values: "hyperv", "isa"/,
  },
  {
    rule: 'disks and CD-ROMs on the scsi bus are accepted (the launcher adds a virtio-scsi controller)',
    bad: (o) =>
      addVolume(
        o,
        { name: 'iso', emptyDisk: { capacity: '1Gi' } },
        { name: 'iso', cdrom: { bus: 'virtio' } },
      ),
    good: (o) => {
      disk0(o).disk = { bus: 'scsi' };
      addVolume(o, { name: 'iso', emptyDisk: { capacity: '1Gi' } }, { name: 'iso', cdrom: { bus: 'scsi' } });
    },
    field: 'spec.domain.devices.disks[1].cdrom.bus',
    type: 'FieldValueInvalid',
    message: /cannot use the virtio bus; use sata or scsi/,
  },
  {
    rule: 'the guest clock keeps UTC or a time zone, not both',
    bad: (o) => (domain(o).clock = { utc: { offsetSeconds: 3600 }, timezone: 'Europe/Paris' }),
    good: (o) =>
      (domain(o).clock = {
        utc: { offsetSeconds: -7200 },
        timer: {
          hpet: { present: false },
          pit: { tickPolicy: 'delay' },
          rtc: { tickPolicy: 'catchup', track: 'guest' },
          kvm: { present: true },
          hyperv: { present: false },
        },
      }),
    field: 'spec.domain.clock',
    type: 'FieldValueInvalid',
    message: /set utc or timezone, not both/,
  },
  {
    rule: 'the guest time zone is a tz database name',
    bad: (o) => (domain(o).clock = { timezone: 'Mars/Olympus_Mons' }),
    good: (o) => (domain(o).clock = { timezone: 'America/New_York' }),
    field: 'spec.domain.clock.timezone',
    type: 'FieldValueInvalid',
    message: /"Mars\/Olympus_Mons": unknown time zone/,
  },
  {
    rule: 'time zone names are case-sensitive (QEMU would silently run a wrong-case one in UTC)',
    bad: (o) => (domain(o).clock = { timezone: 'europe/paris' }),
    good: (o) => (domain(o).clock = { timezone: 'Europe/Paris' }),
    field: 'spec.domain.clock.timezone',
    type: 'FieldValueInvalid',
    message: /case-sensitive; use "Europe\/Paris"/,
  },
  {
    rule: 'an offset is not a time zone name',
    bad: (o) => (domain(o).clock = { timezone: '+01:00' }),
    good: (o) => (domain(o).clock = { utc: { offsetSeconds: 3600 } }),
    field: 'spec.domain.clock.timezone',
    type: 'FieldValueInvalid',
    message: /not a time zone name/,
  },
  {
    rule: 'timer tick policies are the ones QEMU knows for that timer',
    bad: (o) => (domain(o).clock = { timer: { rtc: { tickPolicy: 'merge' } } }),
    good: (o) => (domain(o).clock = { timer: { hpet: { tickPolicy: 'merge' } } }),
    field: 'spec.domain.clock.timer.rtc.tickPolicy',
    type: 'FieldValueNotSupported',
    message: /"merge"/,
  },
  {
    rule: 'the rng device has no settings',
    bad: (o) => ((domain(o).devices as Json).rng = { source: '/dev/random' }),
    good: (o) => ((domain(o).devices as Json).rng = {}),
    field: 'spec.domain.devices.rng.source',
    type: 'FieldValueInvalid',
    message: /unknown field "source"/,
  },
  {
    rule: 'a guest boots through BIOS or EFI, not both',
    bad: (o) => (domain(o).firmware = { bootloader: { bios: {}, efi: {} } }),
    good: (o) => (domain(o).firmware = { bootloader: { efi: { secureBoot: false } } }),
    field: 'spec.domain.firmware.bootloader',
    type: 'FieldValueInvalid',
    message: /set bios or efi, not both/,
  },
  {
    rule: 'EFI Secure Boot (the default with efi) needs SMM',
    bad: (o) => {
      domain(o).firmware = { bootloader: { efi: {} } };
      domain(o).features = { smm: { enabled: false } };
    },
    good: (o) => {
      domain(o).firmware = { bootloader: { efi: { secureBoot: false } } };
      domain(o).features = { smm: { enabled: false } };
    },
    field: 'spec.domain.features.smm.enabled',
    type: 'FieldValueInvalid',
    message: /Secure Boot needs SMM/,
  },
  {
    rule: 'persistent EFI variables are not supported yet',
    bad: (o) => (domain(o).firmware = { bootloader: { efi: { persistent: true } } }),
    good: (o) => (domain(o).firmware = { bootloader: { efi: { secureBoot: true } } }),
    field: 'spec.domain.firmware.bootloader.efi.persistent',
    type: 'FieldValueNotSupported',
    message: /backend storage/,
  },
  {
    rule: 'types are checked',
    bad: (o) => (domain(o).cpu = { cores: '2' }),
    good: (o) => (domain(o).cpu = { cores: 2 }),
    field: 'spec.domain.cpu.cores',
    type: 'FieldValueInvalid',
    message: /must be an integer, not string "2"/,
  },
  {
    rule: 'required fields are required',
    bad: (o) => delete (volume0(o).containerDisk as Json).image,
    good: noop,
    field: 'spec.volumes[0].containerDisk.image',
    type: 'FieldValueRequired',
  },
  {
    rule: 'quantities must parse',
    bad: (o) => (domain(o).resources = { requests: { memory: '256 MB' } }),
    good: (o) => (domain(o).resources = { requests: { memory: '256M' } }),
    field: 'spec.domain.resources.requests[memory]',
    type: 'FieldValueInvalid',
    message: /must be a quantity/,
  },
  {
    rule: 'a quantity is an integer or a string',
    bad: (o) => (domain(o).memory = { guest: true }),
    good: (o) => (domain(o).memory = { guest: 268435456 }),
    field: 'spec.domain.memory.guest',
    type: 'FieldValueInvalid',
    message: /integer or a quantity string/,
  },
  {
    rule: 'volume names are unique',
    bad: (o) => (spec(o).volumes as Json[]).push({ name: 'rootdisk', emptyDisk: { capacity: '1Gi' } }),
    good: (o) => addVolume(o, { name: 'scratch', emptyDisk: { capacity: '1Gi' } }),
    field: 'spec.volumes[1].name',
    type: 'FieldValueDuplicate',
  },
  {
    rule: 'disk names are unique',
    bad: (o) => ((domain(o).devices as Json).disks as Json[]).push({ name: 'rootdisk', disk: {} }),
    good: noop,
    field: 'spec.domain.devices.disks[1].name',
    type: 'FieldValueDuplicate',
  },
  {
    rule: 'a volume has a source',
    bad: (o) => addVolume(o, { name: 'nothing' }),
    good: (o) => addVolume(o, { name: 'something', emptyDisk: { capacity: '1Gi' } }),
    field: 'spec.volumes[1]',
    type: 'FieldValueRequired',
  },
  {
    rule: 'a volume has exactly one source',
    bad: (o) =>
      addVolume(o, { name: 'two', emptyDisk: { capacity: '1Gi' }, containerDisk: { image: 'x:1' } }),
    good: (o) => addVolume(o, { name: 'one', containerDisk: { image: 'x:1' } }),
    field: 'spec.volumes[1]',
    type: 'FieldValueInvalid',
    message: /sets 2 sources \(containerDisk, emptyDisk\)/,
  },
  {
    rule: 'every volume is used by a disk',
    raw: true,
    bad: (o) => (spec(o).volumes as Json[]).push({ name: 'orphan', emptyDisk: { capacity: '1Gi' } }),
    good: (o) => addVolume(o, { name: 'used', emptyDisk: { capacity: '1Gi' } }),
    field: 'spec.volumes[1].name',
    type: 'FieldValueInvalid',
    message: /no disk uses volume "orphan"/,
  },
  {
    rule: 'every disk has a volume',
    bad: (o) => ((domain(o).devices as Json).disks as Json[]).push({ name: 'missing', disk: {} }),
    good: noop,
    field: 'spec.domain.devices.disks[1].name',
    type: 'FieldValueInvalid',
    message: /no volume named "missing"/,
  },
  {
    rule: 'an empty CD-ROM (no volume) is not supported yet',
    bad: (o) => ((domain(o).devices as Json).disks as Json[]).push({ name: 'tray', cdrom: {} }),
    good: (o) =>
      addVolume(
        o,
        { name: 'tray', cloudInitNoCloud: { userData: '#cloud-config' } },
        { name: 'tray', cdrom: {} },
      ),
    field: 'spec.domain.devices.disks[1].name',
    type: 'FieldValueNotSupported',
  },
  {
    rule: 'a disk is one of disk, cdrom or lun',
    bad: (o) => (disk0(o).cdrom = { bus: 'sata' }),
    good: (o) => {
      delete disk0(o).disk;
      disk0(o).cdrom = { bus: 'sata' };
    },
    field: 'spec.domain.devices.disks[0]',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'a CD-ROM cannot use the virtio bus',
    bad: (o) =>
      addVolume(
        o,
        { name: 'ci', cloudInitNoCloud: { userData: 'x' } },
        { name: 'ci', cdrom: { bus: 'virtio' } },
      ),
    good: (o) =>
      addVolume(
        o,
        { name: 'ci', cloudInitNoCloud: { userData: 'x' } },
        { name: 'ci', cdrom: { bus: 'sata' } },
      ),
    field: 'spec.domain.devices.disks[1].cdrom.bus',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'a SATA hard disk cannot be read-only',
    bad: (o) => (disk0(o).disk = { bus: 'sata', readonly: true }),
    good: (o) => (disk0(o).disk = { bus: 'virtio', readonly: true }),
    field: 'spec.domain.devices.disks[0].disk.readonly',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'disk serials use a restricted alphabet',
    bad: (o) => (disk0(o).serial = 'has space'),
    good: (o) => (disk0(o).serial = 'ABC_1.2-3+'),
    field: 'spec.domain.devices.disks[0].serial',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'boot orders are unique across devices',
    bad: (o) => {
      disk0(o).bootOrder = 1;
      addVolume(
        o,
        { name: 'second', emptyDisk: { capacity: '1Gi' } },
        { name: 'second', bootOrder: 1, disk: {} },
      );
    },
    good: (o) => {
      disk0(o).bootOrder = 1;
      addVolume(
        o,
        { name: 'second', emptyDisk: { capacity: '1Gi' } },
        { name: 'second', bootOrder: 2, disk: {} },
      );
    },
    field: 'spec.domain.devices.disks[1].bootOrder',
    type: 'FieldValueDuplicate',
  },
  {
    rule: 'boot orders start at 1',
    bad: (o) => (disk0(o).bootOrder = 0),
    good: (o) => (disk0(o).bootOrder = 1),
    field: 'spec.domain.devices.disks[0].bootOrder',
    type: 'FieldValueInvalid',
    message: /greater than or equal to 1/,
  },
  {
    rule: 'volume names are DNS labels (they name pod volumes)',
    bad: (o) => {
      volume0(o).name = 'Root_Disk';
      disk0(o).name = 'Root_Disk';
    },
    good: (o) => {
      volume0(o).name = 'root-disk-1';
      disk0(o).name = 'root-disk-1';
    },
    field: 'spec.volumes[0].name',
    type: 'FieldValueInvalid',
    message: /DNS-1123 label/,
  },
  {
    rule: 'cloud-init needs user-data or network-data',
    bad: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: {} }),
    good: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: { networkData: 'version: 2' } }),
    field: 'spec.volumes[1].cloudInitNoCloud',
    type: 'FieldValueRequired',
  },
  {
    rule: 'cloud-init takes one user-data source',
    bad: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: { userData: 'a', secretRef: { name: 'ud' } } }),
    good: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: { secretRef: { name: 'ud' } } }),
    field: 'spec.volumes[1].cloudInitNoCloud',
    type: 'FieldValueInvalid',
    message: /exactly one of userData, userDataBase64 or secretRef/,
  },
  {
    rule: 'cloud-init base64 must decode',
    bad: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: { userDataBase64: 'not base64!' } }),
    good: (o) =>
      addVolume(o, {
        name: 'ci',
        cloudInitNoCloud: { userDataBase64: Buffer.from('#cloud-config').toString('base64') },
      }),
    field: 'spec.volumes[1].cloudInitNoCloud.userDataBase64',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'inline cloud-init data is at most 2048 bytes',
    bad: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: { userData: 'x'.repeat(2049) } }),
    good: (o) => addVolume(o, { name: 'ci', cloudInitNoCloud: { userData: 'x'.repeat(2048) } }),
    field: 'spec.volumes[1].cloudInitNoCloud.userData',
    type: 'FieldValueInvalid',
    message: /2049 bytes.*secretRef/,
  },
  {
    rule: 'an empty disk has a positive capacity',
    bad: (o) => addVolume(o, { name: 'scratch', emptyDisk: { capacity: '0' } }),
    good: (o) => addVolume(o, { name: 'scratch', emptyDisk: { capacity: '1Mi' } }),
    field: 'spec.volumes[1].emptyDisk.capacity',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'a containerDisk path is absolute',
    bad: (o) => ((volume0(o).containerDisk as Json).path = 'disk/disk.img'),
    good: (o) => ((volume0(o).containerDisk as Json).path = '/disk/disk.img'),
    field: 'spec.volumes[0].containerDisk.path',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'a PVC volume names its claim',
    bad: (o) => addVolume(o, { name: 'data', persistentVolumeClaim: { claimName: '' } }),
    good: (o) => addVolume(o, { name: 'data', persistentVolumeClaim: { claimName: 'data-pvc' } }),
    field: 'spec.volumes[1].persistentVolumeClaim.claimName',
    type: 'FieldValueRequired',
  },
  {
    rule: 'a DiskOrCreate host disk has a capacity',
    bad: (o) => addVolume(o, { name: 'host', hostDisk: { path: '/var/disk.img', type: 'DiskOrCreate' } }),
    good: (o) =>
      addVolume(o, {
        name: 'host',
        hostDisk: { path: '/var/disk.img', type: 'DiskOrCreate', capacity: '1Gi' },
      }),
    field: 'spec.volumes[1].hostDisk.capacity',
    type: 'FieldValueRequired',
  },
  {
    rule: 'a host disk path is absolute',
    bad: (o) => addVolume(o, { name: 'host', hostDisk: { path: '../disk.img', type: 'Disk' } }),
    good: (o) => addVolume(o, { name: 'host', hostDisk: { path: '/var/disk.img', type: 'Disk' } }),
    field: 'spec.volumes[1].hostDisk.path',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'an interface has a binding',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'default' }];
      spec(o).networks = [{ name: 'default', pod: {} }];
    },
    good: noop,
    field: 'spec.domain.devices.interfaces[0]',
    type: 'FieldValueRequired',
    message: /exactly one binding/,
  },
  {
    rule: 'an interface has a network and a network an interface',
    bad: (o) => (spec(o).networks = [{ name: 'default', pod: {} }]),
    good: noop,
    field: 'spec.networks[0].name',
    type: 'FieldValueInvalid',
    message: /no interface uses network "default"/,
  },
  {
    rule: 'a network has a source',
    bad: (o) => {
      (domain(o).devices as Json).interfaces = [{ name: 'n' }];
      spec(o).networks = [{ name: 'n' }];
    },
    good: noop,
    field: 'spec.networks[0]',
    type: 'FieldValueRequired',
  },
  {
    rule: 'a VMI asks for memory',
    bad: (o) => delete domain(o).resources,
    good: (o) => {
      delete domain(o).resources;
      domain(o).memory = { guest: '128Mi' };
    },
    field: 'spec.domain.memory.guest',
    type: 'FieldValueRequired',
    message: /no memory requested/,
  },
  {
    rule: 'the memory request does not exceed the limit',
    bad: (o) => (domain(o).resources = { requests: { memory: '512Mi' }, limits: { memory: '256Mi' } }),
    good: (o) => (domain(o).resources = { requests: { memory: '256Mi' }, limits: { memory: '512Mi' } }),
    field: 'spec.domain.resources.requests[memory]',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'guest memory does not exceed the limit',
    bad: (o) => {
      domain(o).resources = { limits: { memory: '256Mi' } };
      domain(o).memory = { guest: '1Gi' };
    },
    good: (o) => {
      domain(o).resources = { limits: { memory: '256Mi' } };
      domain(o).memory = { guest: '256Mi' };
    },
    field: 'spec.domain.memory.guest',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'guest memory is at least 1Mi',
    bad: (o) => (domain(o).memory = { guest: '512Ki' }),
    good: (o) => (domain(o).memory = { guest: '1Mi' }),
    field: 'spec.domain.memory.guest',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'requests are not negative',
    bad: (o) => (domain(o).resources = { requests: { memory: '256Mi', cpu: '-1' } }),
    good: (o) => (domain(o).resources = { requests: { memory: '256Mi', cpu: '1' } }),
    field: 'spec.domain.resources.requests[cpu]',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'the cpu request does not exceed the limit',
    bad: (o) => (domain(o).resources = { requests: { memory: '256Mi', cpu: '2' }, limits: { cpu: '1' } }),
    good: (o) => (domain(o).resources = { requests: { memory: '256Mi', cpu: '500m' }, limits: { cpu: '1' } }),
    field: 'spec.domain.resources.requests[cpu]',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'only cpu, memory and ephemeral-storage can be requested yet',
    bad: (o) => (domain(o).resources = { requests: { memory: '256Mi' }, limits: { 'nvidia.com/gpu': 1 } }),
    good: (o) => (domain(o).resources = { requests: { memory: '256Mi', 'ephemeral-storage': '1Gi' } }),
    field: 'spec.domain.resources.limits[nvidia.com/gpu]',
    type: 'FieldValueNotSupported',
  },
  {
    rule: 'vCPUs stay within 512',
    bad: (o) => (domain(o).cpu = { sockets: 16, cores: 16, threads: 4 }),
    good: (o) => (domain(o).cpu = { sockets: 4, cores: 4, threads: 2 }),
    field: 'spec.domain.cpu',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'the firmware UUID is a UUID',
    bad: (o) => (domain(o).firmware = { uuid: 'not-a-uuid' }),
    good: (o) => (domain(o).firmware = { uuid: '5a9fc181-957e-5c32-9e5a-2de5e9673531' }),
    field: 'spec.domain.firmware.uuid',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'kernel boot names a kernel or an initrd',
    bad: (o) => (domain(o).firmware = { kernelBoot: { container: { image: 'k:1' } } }),
    good: (o) =>
      (domain(o).firmware = { kernelBoot: { container: { image: 'k:1', kernelPath: '/boot/vmlinuz' } } }),
    field: 'spec.domain.firmware.kernelBoot.container',
    type: 'FieldValueRequired',
  },
  {
    rule: 'kernel boot paths are absolute',
    bad: (o) =>
      (domain(o).firmware = { kernelBoot: { container: { image: 'k:1', kernelPath: 'boot/vmlinuz' } } }),
    good: (o) =>
      (domain(o).firmware = { kernelBoot: { container: { image: 'k:1', initrdPath: '/boot/initrd' } } }),
    field: 'spec.domain.firmware.kernelBoot.container.kernelPath',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'kernel arguments need a kernel',
    bad: (o) =>
      (domain(o).firmware = {
        kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'k:1', initrdPath: '/i' } },
      }),
    good: (o) =>
      (domain(o).firmware = {
        kernelBoot: { kernelArgs: 'console=ttyS0', container: { image: 'k:1', kernelPath: '/k' } },
      }),
    field: 'spec.domain.firmware.kernelBoot.kernelArgs',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'the hostname is a DNS label',
    bad: (o) => (spec(o).hostname = 'My_Host'),
    good: (o) => (spec(o).hostname = 'my-host'),
    field: 'spec.hostname',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'the subdomain is a DNS subdomain',
    bad: (o) => (spec(o).subdomain = 'bad_sub'),
    good: (o) => (spec(o).subdomain = 'svc.example'),
    field: 'spec.subdomain',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'dnsPolicy None needs a nameserver',
    bad: (o) => (spec(o).dnsPolicy = 'None'),
    good: (o) => {
      spec(o).dnsPolicy = 'None';
      spec(o).dnsConfig = { nameservers: ['10.0.0.10'] };
    },
    field: 'spec.dnsConfig.nameservers',
    type: 'FieldValueRequired',
  },
  {
    rule: 'at most three nameservers',
    bad: (o) => (spec(o).dnsConfig = { nameservers: ['1.1.1.1', '1.0.0.1', '8.8.8.8', '8.8.4.4'] }),
    good: (o) => (spec(o).dnsConfig = { nameservers: ['1.1.1.1', '1.0.0.1', '8.8.8.8'] }),
    field: 'spec.dnsConfig.nameservers',
    type: 'FieldValueInvalid',
  },
  {
    rule: 'the machine type matches emulatedMachines',
    bad: (o) => (domain(o).machine = { type: 'pc-i440fx-8.2' }),
    good: (o) => (domain(o).machine = { type: 'pc-q35-8.2' }),
    field: 'spec.domain.machine.type',
    type: 'FieldValueNotSupported',
  },
  {
    rule: 'only amd64 guests yet',
    bad: (o) => (spec(o).architecture = 'arm64'),
    good: (o) => (spec(o).architecture = 'amd64'),
    field: 'spec.architecture',
    type: 'FieldValueNotSupported',
  },
  {
    rule: 'live-migrating eviction strategies are not supported yet',
    bad: (o) => (spec(o).evictionStrategy = 'LiveMigrate'),
    good: (o) => (spec(o).evictionStrategy = 'None'),
    field: 'spec.evictionStrategy',
    type: 'FieldValueNotSupported',
  },
  {
    rule: 'the grace period is not negative',
    bad: (o) => (spec(o).terminationGracePeriodSeconds = -1),
    good: (o) => (spec(o).terminationGracePeriodSeconds = 0),
    field: 'spec.terminationGracePeriodSeconds',
    type: 'FieldValueInvalid',
  },
];

function causesFor(c: Case, mutate: (o: Json) => void): StatusCause[] {
  const object = vmi();
  mutate(object);
  return c.raw === true ? validateVirtualMachineInstance(object, { config: hostDiskGate }) : admitVMI(object);
}

describe('VirtualMachineInstance validation', () => {
  it('accepts the base manifest', () => {
    expect(admitVMI(vmi())).toEqual([]);
  });

  describe.each(vmiCases)('$rule', (c) => {
    it(`breaking it gives ${c.type} at ${c.field}`, () => {
      const causes = causesFor(c, c.bad);
      const cause = causes.find((x) => x.field === c.field && x.type === c.type);
      expect(cause, JSON.stringify(causes)).toBeDefined();
      if (c.message !== undefined) expect(cause?.message).toMatch(c.message);
    });
    it('keeping it gives no cause', () => {
      expect(causesFor(c, c.good)).toEqual([]);
    });
  });

  it('refuses the bridge binding on the pod network where the cluster does not permit it', () => {
    const object = vmi();
    (domain(object).devices as Json).interfaces = [{ name: 'default', bridge: {} }];
    spec(object).networks = [{ name: 'default', pod: {} }];
    const forbidding = clusterConfigFrom({
      spec: { configuration: { network: { permitBridgeInterfaceOnPodNetwork: false } } },
    });
    expect(admitVMI(object, forbidding)).toEqual([
      expect.objectContaining({
        type: 'FieldValueInvalid',
        field: 'spec.domain.devices.interfaces[0].bridge',
        message: matching(/not permitted by the cluster \(network.permitBridgeInterfaceOnPodNetwork/),
      }),
    ]);
    expect(admitVMI(object)).toEqual([]);
  });

  it('refuses the passt binding when the cluster disables the PasstBinding feature gate (beta: on by default)', () => {
    const object = vmi();
    (domain(object).devices as Json).interfaces = [
      { name: 'default', passtBinding: {}, ports: [{ port: 80 }] },
    ];
    spec(object).networks = [{ name: 'default', pod: {} }];
    const disabling = clusterConfigFrom({
      spec: { configuration: { developerConfiguration: { disabledFeatureGates: ['PasstBinding'] } } },
    });
    expect(admitVMI(object, disabling)).toEqual([
      expect.objectContaining({
        type: 'FieldValueInvalid',
        field: 'spec.domain.devices.interfaces[0].passtBinding',
        message: matching(/PasstBinding feature gate is disabled in this cluster/),
      }),
    ]);
    expect(admitVMI(object)).toEqual([]);
    const listing = clusterConfigFrom({
      spec: { configuration: { developerConfiguration: { featureGates: ['PasstBinding'] } } },
    });
    expect(admitVMI(object, listing)).toEqual([]);
  });

  it('needs the HostDisk feature gate for host disks', () => {
    const object = vmi();
    addVolume(object, { name: 'host', hostDisk: { path: '/var/disk.img', type: 'Disk' } });
    expect(admitVMI(object, clusterConfigFrom(undefined))).toEqual([
      expect.objectContaining({
        field: 'spec.volumes[1].hostDisk',
        type: 'FieldValueInvalid',
        message: matching(/HostDisk feature gate/),
      }),
    ]);
    expect(admitVMI(object, hostDiskGate)).toEqual([]);
  });

  it('accepts not-yet-supported fields that hold Go zero values', () => {
    const object = vmi();
    (domain(object).devices as Json).autoattachVSOCK = false;
    domain(object).cpu = { maxSockets: 0, features: [] };
    (domain(object).devices as Json).useVirtioTransitional = false;
    expect(admitVMI(object)).toEqual([]);
  });

  it('reports every problem at once, each with its path', () => {
    const object = vmi();
    domain(object).cpu = { numa: {}, corez: 1 };
    addVolume(object, { name: 'two', emptyDisk: { capacity: '1Gi' }, containerDisk: { image: 'x:1' } });
    spec(object).hostname = 'Bad_Host';
    const fields = admitVMI(object).map((c) => c.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'spec.domain.cpu.numa',
        'spec.domain.cpu.corez',
        'spec.volumes[1]',
        'spec.hostname',
      ]),
    );
  });

  it('skips the semantic rules when types are wrong, and reports the types', () => {
    const object = vmi();
    spec(object).volumes = 'rootdisk';
    expect(admitVMI(object)).toEqual([
      expect.objectContaining({
        field: 'spec.volumes',
        type: 'FieldValueInvalid',
        message: matching(/must be a list/),
      }),
    ]);
  });

  it('treats null fields as absent, as the API server prunes them', () => {
    const object = vmi();
    domain(object).firmware = null;
    spec(object).nodeSelector = null;
    expect(admitVMI(object)).toEqual([]);
  });

  it('rejects a manifest without a spec', () => {
    expect(
      validateVirtualMachineInstance({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance' }),
    ).toEqual([{ type: 'FieldValueRequired', field: 'spec', message: 'Required value' }]);
  });

  it('rejects what is not an object', () => {
    for (const value of [null, 3, 'vmi', []]) {
      expect(validateVirtualMachineInstance(value)).toEqual([
        expect.objectContaining({ type: 'FieldValueInvalid', field: '' }),
      ]);
    }
  });

  it('lets passthrough Kubernetes types carry fields it does not know', () => {
    const object = vmi();
    spec(object).affinity = { nodeAffinity: { someFutureField: true } };
    spec(object).tolerations = [{ key: 'k', operator: 'Exists', futureField: 1 }];
    expect(admitVMI(object)).toEqual([]);
  });
});

const instancetype: InstancetypeSpec = { cpu: { guest: 2 }, memory: { guest: '512Mi' } };
const preference: PreferenceSpec = { devices: { preferredDiskBus: 'virtio' } };

function admitVM(object: Json, options: VirtualMachineValidationOptions = {}): StatusCause[] {
  return validateVirtualMachine(
    defaultVirtualMachine(object, options.preference === undefined ? {} : { preference: options.preference }),
    options,
  );
}

describe('VirtualMachine validation', () => {
  it('accepts the base manifest', () => {
    expect(admitVM(vm())).toEqual([]);
  });

  it("refuses a VM without interfaces when the cluster's default binding, bridge, is not permitted", () => {
    const forbidding = clusterConfigFrom({
      spec: { configuration: { network: { permitBridgeInterfaceOnPodNetwork: false } } },
    });
    expect(admitVM(vm(), { config: forbidding })).toEqual([
      expect.objectContaining({
        type: 'FieldValueInvalid',
        field: 'spec.template.spec.domain.devices.interfaces[0].bridge',
        message: matching(/permitBridgeInterfaceOnPodNetwork.*network.defaultNetworkInterface/),
      }),
    ]);
    const masquerade = clusterConfigFrom({
      spec: {
        configuration: {
          network: { permitBridgeInterfaceOnPodNetwork: false, defaultNetworkInterface: 'masquerade' },
        },
      },
    });
    expect(admitVM(vm(), { config: masquerade })).toEqual([]);
  });

  it('gives a VM without interfaces the passt binding when the cluster defaults to passt, unless its gate is off', () => {
    const passt = (disabledFeatureGates: string[]) =>
      clusterConfigFrom({
        spec: {
          configuration: {
            network: { defaultNetworkInterface: 'passt' },
            developerConfiguration: { disabledFeatureGates },
          },
        },
      });
    expect(admitVM(vm(), { config: passt([]) })).toEqual([]);
    expect(admitVM(vm(), { config: passt(['PasstBinding']) })).toEqual([
      expect.objectContaining({
        type: 'FieldValueInvalid',
        field: 'spec.template.spec.domain.devices.interfaces[0].passtBinding',
        message: matching(/PasstBinding feature gate is disabled/),
      }),
    ]);
  });

  it('rejects running together with runStrategy', () => {
    const object = vm();
    spec(object).running = true;
    expect(admitVM(object)).toEqual([
      expect.objectContaining({ field: 'spec.running', type: 'FieldValueInvalid' }),
    ]);
    delete spec(object).runStrategy;
    expect(admitVM(object)).toEqual([]);
  });

  it('needs runStrategy or running', () => {
    const object = vm();
    delete spec(object).runStrategy;
    expect(admitVM(object)).toEqual([
      expect.objectContaining({ field: 'spec.runStrategy', type: 'FieldValueRequired' }),
    ]);
  });

  it('knows the run strategies, and WaitAsReceiver is not supported yet', () => {
    const object = vm();
    spec(object).runStrategy = 'Sometimes';
    expect(admitVM(object)).toEqual([
      expect.objectContaining({ field: 'spec.runStrategy', type: 'FieldValueNotSupported' }),
    ]);
    spec(object).runStrategy = 'WaitAsReceiver';
    expect(admitVM(object)).toEqual([
      expect.objectContaining({
        field: 'spec.runStrategy',
        message: matching(/not supported yet/),
      }),
    ]);
    for (const strategy of ['Always', 'RerunOnFailure', 'Manual', 'Halted', 'Once']) {
      spec(object).runStrategy = strategy;
      expect(admitVM(object)).toEqual([]);
    }
  });

  it('validates the template at spec.template.spec paths', () => {
    const object = vm();
    ((spec(object).template as Json).spec as Json).hostname = 'Bad_Host';
    expect(admitVM(object)).toEqual([expect.objectContaining({ field: 'spec.template.spec.hostname' })]);
  });

  it('needs a template', () => {
    const object = vm();
    delete spec(object).template;
    expect(admitVM(object)).toEqual([
      { type: 'FieldValueRequired', field: 'spec.template', message: 'Required value' },
    ]);
  });

  it('accepts a template without memory (an instancetype or a later edit may give it)', () => {
    const object = vm();
    delete (((spec(object).template as Json).spec as Json).domain as Json).resources;
    expect(admitVM(object)).toEqual([]);
  });

  it('rejects a VM field its instancetype sets, naming the field', () => {
    const object = vm();
    spec(object).instancetype = { name: 'medium', kind: 'VirtualMachineInstancetype' };
    const templateDomain = ((spec(object).template as Json).spec as Json).domain as Json;
    templateDomain.cpu = { sockets: 2 };
    expect(admitVM(object, { instancetype })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          field: 'spec.template.spec.domain.cpu.sockets',
          type: 'FieldValueInvalid',
        }),
        expect.objectContaining({ field: 'spec.template.spec.domain.resources.requests[memory]' }),
      ]),
    );
    delete templateDomain.cpu;
    delete templateDomain.resources;
    expect(admitVM(object, { instancetype })).toEqual([]);
  });

  it('rejects memory.guest when the instancetype sets memory', () => {
    const object = vm();
    spec(object).instancetype = { name: 'medium' };
    const templateDomain = ((spec(object).template as Json).spec as Json).domain as Json;
    delete templateDomain.resources;
    templateDomain.memory = { guest: '1Gi' };
    expect(admitVM(object, { instancetype })).toEqual([
      expect.objectContaining({
        field: 'spec.template.spec.domain.memory.guest',
        message: matching(/instancetype sets this field/),
      }),
    ]);
  });

  it('checks the instancetype reference', () => {
    const object = vm();
    spec(object).instancetype = { kind: 'Flavor' };
    const fields = admitVM(object).map((c) => `${c.type} ${c.field}`);
    expect(fields).toEqual([
      'FieldValueRequired spec.instancetype.name',
      'FieldValueNotSupported spec.instancetype.kind',
    ]);
    spec(object).instancetype = { name: 'x', kind: 'virtualmachineinstancetypes' };
    expect(admitVM(object)).toEqual([]);
  });

  it("checks the preference's requirements", () => {
    const object = vm();
    spec(object).preference = { name: 'big' };
    const demanding: PreferenceSpec = { requirements: { cpu: { guest: 4 }, memory: { guest: '1Gi' } } };
    expect(admitVM(object, { preference: demanding }).map((c) => c.field)).toEqual([
      'spec.template.spec.domain.cpu',
      'spec.template.spec.domain.memory.guest',
    ]);
    const modest: PreferenceSpec = { requirements: { cpu: { guest: 1 }, memory: { guest: '128Mi' } } };
    expect(admitVM(object, { preference: modest })).toEqual([]);
  });

  it('applies the preference before validating (its bus is not the unsupported usb)', () => {
    const object = vm();
    spec(object).preference = { name: 'p' };
    disk0(spec(object).template as Json).disk = {};
    expect(admitVM(object, { preference })).toEqual([]);
    expect(admitVM(object, { preference: { devices: { preferredDiskBus: 'usb' } } })).toEqual([]);
  });
});

describe('VirtualMachineInstanceReplicaSet validation', () => {
  function rs(): Json {
    return {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceReplicaSet',
      metadata: { name: 'rs' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'rs' } },
        template: { metadata: { labels: { app: 'rs', tier: 'a' } }, spec: vmi().spec as Json },
      },
    };
  }

  it('accepts the base manifest', () => {
    expect(validateVirtualMachineInstanceReplicaSet(rs())).toEqual([]);
  });

  it('needs a selector that matches the template labels', () => {
    const object = rs();
    spec(object).selector = { matchLabels: { app: 'other' } };
    expect(validateVirtualMachineInstanceReplicaSet(object)).toEqual([
      expect.objectContaining({ field: 'spec.selector', type: 'FieldValueInvalid' }),
    ]);
    spec(object).selector = { matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] };
    expect(validateVirtualMachineInstanceReplicaSet(object)).toEqual([]);
  });

  it('rejects an empty selector and a malformed one', () => {
    const object = rs();
    spec(object).selector = {};
    expect(validateVirtualMachineInstanceReplicaSet(object)).toEqual([
      expect.objectContaining({ field: 'spec.selector', type: 'FieldValueRequired' }),
    ]);
    spec(object).selector = { matchExpressions: [{ key: 'app', operator: 'Near' }] };
    expect(validateVirtualMachineInstanceReplicaSet(object)).toEqual([
      expect.objectContaining({
        field: 'spec.selector.matchExpressions[0].operator',
        type: 'FieldValueNotSupported',
      }),
    ]);
  });

  it('rejects negative replicas and validates the template', () => {
    const object = rs();
    spec(object).replicas = -1;
    expect(validateVirtualMachineInstanceReplicaSet(object)).toEqual([
      expect.objectContaining({ field: 'spec.replicas' }),
    ]);
    spec(object).replicas = 0;
    ((spec(object).template as Json).spec as Json).hostname = 'Bad_Host';
    expect(validateVirtualMachineInstanceReplicaSet(object)).toEqual([
      expect.objectContaining({ field: 'spec.template.spec.hostname' }),
    ]);
  });
});

describe('VirtualMachineInstanceMigration validation', () => {
  it('needs the VMI name', () => {
    const object = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceMigration',
      spec: { vmiName: 'testvmi' },
    };
    expect(validateVirtualMachineInstanceMigration(object)).toEqual([]);
    expect(validateVirtualMachineInstanceMigration({ ...object, spec: { vmiName: ' ' } })).toEqual([
      expect.objectContaining({ field: 'spec.vmiName', type: 'FieldValueRequired' }),
    ]);
    expect(validateVirtualMachineInstanceMigration({ ...object, spec: {} })).toEqual([
      expect.objectContaining({ field: 'spec.vmiName', type: 'FieldValueRequired' }),
    ]);
  });

  it('does not support decentralized migration yet', () => {
    const object = {
      kind: 'VirtualMachineInstanceMigration',
      spec: { vmiName: 'v', sendTo: { migrationID: 'a', connectURL: 'b' } },
    };
    expect(validateVirtualMachineInstanceMigration(object)).toEqual([
      expect.objectContaining({ field: 'spec.sendTo', type: 'FieldValueNotSupported' }),
    ]);
  });
});

describe('instancetype and preference validation', () => {
  const it_ = (specValue: unknown) => ({
    apiVersion: 'instancetype.kubevirt.io/v1beta1',
    kind: 'VirtualMachineInstancetype',
    spec: specValue,
  });

  it('needs vCPUs and memory', () => {
    expect(validateInstancetype(it_(instancetype))).toEqual([]);
    expect(validateInstancetype(it_({ cpu: { guest: 0 }, memory: { guest: '1Gi' } }))).toEqual([
      expect.objectContaining({ field: 'spec.cpu.guest' }),
    ]);
    expect(validateInstancetype(it_({ cpu: { guest: 1 } }))).toEqual([
      expect.objectContaining({ field: 'spec.memory', type: 'FieldValueRequired' }),
    ]);
    expect(validateInstancetype(it_({ cpu: { guest: 1 }, memory: { guest: '100Ki' } }))).toEqual([
      expect.objectContaining({ field: 'spec.memory.guest' }),
    ]);
  });

  it('bounds overcommitPercent and rejects unsupported fields', () => {
    expect(
      validateInstancetype(it_({ ...instancetype, memory: { guest: '1Gi', overcommitPercent: 150 } })),
    ).toEqual([expect.objectContaining({ field: 'spec.memory.overcommitPercent' })]);
    expect(
      validateInstancetype(it_({ ...instancetype, cpu: { guest: 2, dedicatedCPUPlacement: true } })),
    ).toEqual([
      expect.objectContaining({ field: 'spec.cpu.dedicatedCPUPlacement', type: 'FieldValueNotSupported' }),
    ]);
  });

  it('checks preference values', () => {
    const pref = (specValue: unknown) => ({ kind: 'VirtualMachinePreference', spec: specValue });
    expect(validatePreference(pref(preference))).toEqual([]);
    expect(validatePreference(pref({ cpu: { preferredCPUTopology: 'diagonal' } }))).toEqual([
      expect.objectContaining({ field: 'spec.cpu.preferredCPUTopology', type: 'FieldValueNotSupported' }),
    ]);
    expect(validatePreference(pref({ devices: { preferredInterfaceModel: 'e1000' } }))).toEqual([
      expect.objectContaining({
        field: 'spec.devices.preferredInterfaceModel',
        type: 'FieldValueNotSupported',
      }),
    ]);
  });
});

describe('KubeVirt CR validation', () => {
  const kv = (configuration: unknown, extra: Json = {}) => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'KubeVirt',
    spec: { configuration, ...extra },
  });

  it('accepts the configuration the chart writes', () => {
    expect(
      validateKubeVirt(kv({ developerConfiguration: { useEmulation: true, featureGates: ['HostDisk'] } })),
    ).toEqual([]);
  });

  it('rejects bad values and install knobs the chart owns', () => {
    expect(validateKubeVirt(kv({ additionalGuestMemoryOverheadRatio: 'lots' }))).toEqual([
      expect.objectContaining({ field: 'spec.configuration.additionalGuestMemoryOverheadRatio' }),
    ]);
    expect(validateKubeVirt(kv({ developerConfiguration: { memoryOvercommit: 0 } }))).toEqual([
      expect.objectContaining({ field: 'spec.configuration.developerConfiguration.memoryOvercommit' }),
    ]);
    expect(validateKubeVirt(kv({}, { imageTag: 'v1.8.0' }))).toEqual([
      expect.objectContaining({
        field: 'spec.imageTag',
        type: 'FieldValueNotSupported',
        message: matching(/Helm chart/),
      }),
    ]);
    expect(validateKubeVirt(kv({ network: { defaultNetworkInterface: 'slirp' } }))).toEqual([
      expect.objectContaining({ field: 'spec.configuration.network.defaultNetworkInterface' }),
    ]);
  });
});

describe('precompileValidators', () => {
  it('compiles every kind without throwing', () => {
    expect(() => precompileValidators()).not.toThrow();
  });
});

describe('validate()', () => {
  it('dispatches on apiVersion and kind', () => {
    expect(validate(defaultVirtualMachineInstance(vmi()))).toEqual([]);
    const bad = vmi();
    spec(bad).hostname = 'Bad_Host';
    expect(validate(defaultVirtualMachineInstance(bad)).map((c) => c.field)).toEqual(['spec.hostname']);
    expect(
      validate({
        ...vmi(),
        kind: 'VirtualMachineClusterPreference',
        apiVersion: 'instancetype.kubevirt.io/v1beta1',
      }).length,
    ).toBeGreaterThan(0);
  });

  it('refuses kinds it does not own', () => {
    expect(validate({ apiVersion: 'v1', kind: 'Pod', spec: {} })).toEqual([
      expect.objectContaining({ field: 'kind', type: 'FieldValueNotSupported' }),
    ]);
    expect(validate({ apiVersion: 'kubevirt.io/v1alpha3', kind: 'VirtualMachine', spec: {} })).toHaveLength(
      1,
    );
  });
});
