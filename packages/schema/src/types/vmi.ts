// VirtualMachineInstance (kubevirt.io/v1): its spec, which VMs and replica sets embed as their template, and its
// status. Field names and meanings are KubeVirt's; a field wrapped in notYet() is KubeVirt's but not implemented by
// kubevirt-ts yet, and the validating webhook rejects it (docs/api-coverage.md is generated from these marks).
import Type, { type Static } from 'typebox';
import {
  arrayOf,
  bool,
  enumOf,
  int,
  looseObject,
  notYet,
  obj,
  opt,
  quantity,
  quantityMap,
  str,
  stringMap,
  uint,
} from './builders.ts';
import {
  Affinity,
  Condition,
  DNSPolicy,
  LocalObjectReference,
  ObjectMeta,
  PodDNSConfig,
  PullPolicy,
  Toleration,
  TopologySpreadConstraint,
} from './k8s.ts';

const NETWORKING = 'interface networking arrives with the networking work';

// ---------------------------------------------------------------------------------------------------------------
// domain: the virtual hardware
// ---------------------------------------------------------------------------------------------------------------

export const ResourceRequirements = obj(
  {
    requests: opt(quantityMap('Resources the launcher pod requests: cpu and memory.')),
    limits: opt(quantityMap('Resource limits of the launcher pod: cpu and memory.')),
    overcommitGuestOverhead: opt(
      bool('Do not add the launcher overhead to the pod memory request (the limit still includes it).'),
    ),
  },
  'Compute resources of the launcher pod; guest memory defaults from requests.memory.',
);

export const CPUFeature = Type.Object({ name: str(), policy: opt(str()) });

export const CPU = obj(
  {
    cores: opt(uint('Cores per socket (default 1).')),
    sockets: opt(uint('Sockets (default: the cpu limit or request rounded up, else 1).')),
    threads: opt(uint('Threads per core (default 1).')),
    maxSockets: notYet(uint(), 'CPU hotplug'),
    model: opt(str('Guest CPU model: host-model (default), host-passthrough or a named model.')),
    features: notYet(arrayOf(CPUFeature)),
    dedicatedCpuPlacement: notYet(bool(), 'dedicated CPUs need the CPU manager'),
    numa: notYet(looseObject()),
    isolateEmulatorThread: notYet(bool()),
    realtime: notYet(looseObject()),
  },
  'Guest CPU topology and model.',
);

export const Hugepages = Type.Object({ pageSize: opt(str()) });

export const Memory = obj(
  {
    guest: opt(quantity('Memory the guest sees (default: resources.requests.memory, else limits.memory).')),
    maxGuest: notYet(quantity(), 'memory hotplug'),
    hugepages: notYet(Hugepages),
    reservedOverhead: notYet(looseObject()),
  },
  'Guest memory.',
);

export const Machine = obj({ type: opt(str('Machine type; default q35.')) }, 'Emulated machine.');

export const KernelBootContainer = obj({
  image: str('Image holding the kernel and initrd.'),
  imagePullSecret: opt(str()),
  imagePullPolicy: opt(PullPolicy),
  kernelPath: opt(str('Absolute path of the kernel inside the image.')),
  initrdPath: opt(str('Absolute path of the initrd inside the image.')),
});

export const Firmware = obj(
  {
    uuid: opt(str('SMBIOS system UUID of the guest; defaulted, stable across restarts.')),
    serial: opt(str('SMBIOS system serial number.')),
    bootloader: opt(
      obj({
        bios: opt(obj({ useSerial: opt(bool('Show the BIOS output on the serial console.')) })),
        efi: opt(
          obj(
            {
              secureBoot: opt(
                bool('Boot with Secure Boot (default true when efi is set); needs SMM, which it turns on.'),
              ),
              // The launcher keeps the EFI variables in the pod's private folder, so they last one VMI's life.
              persistent: notYet(
                Type.Boolean(),
                'EFI variables kept across VMI restarts need backend storage',
              ),
            },
            'Boot through UEFI firmware (OVMF) instead of BIOS.',
          ),
        ),
      }),
    ),
    kernelBoot: opt(
      obj(
        {
          kernelArgs: opt(str('Kernel command line.')),
          container: opt(KernelBootContainer),
        },
        'Boot a kernel (and initrd) taken from a container image instead of a disk.',
      ),
    ),
    acpi: notYet(looseObject()),
  },
  'Firmware of the guest.',
);

export const FeatureState = Type.Object({ enabled: opt(Type.Boolean()) });

const timerPresent = opt(
  bool("false keeps the machine type from adding this timer (default: the machine type's)."),
);
const tickPolicy = 'What QEMU does when it missed injecting a tick into the guest';

export const Clock = obj(
  {
    utc: opt(
      obj(
        { offsetSeconds: opt(int('Seconds the guest clock runs ahead of UTC (negative: behind).')) },
        'The guest clock keeps UTC, plus an offset (the default).',
      ),
    ),
    timezone: opt(
      str('The guest clock keeps this time zone (a tz database name such as Europe/Paris); not with utc.'),
    ),
    timer: opt(
      obj(
        {
          hpet: opt(
            obj(
              {
                tickPolicy: opt(
                  enumOf(['delay', 'catchup', 'merge', 'discard'], { description: `${tickPolicy}.` }),
                ),
                present: timerPresent,
              },
              'High Precision Event Timer.',
            ),
          ),
          pit: opt(
            obj(
              {
                tickPolicy: opt(enumOf(['delay', 'catchup', 'discard'], { description: `${tickPolicy}.` })),
                present: timerPresent,
              },
              'Programmable Interval Timer.',
            ),
          ),
          rtc: opt(
            obj(
              {
                tickPolicy: opt(enumOf(['delay', 'catchup'], { description: `${tickPolicy}.` })),
                present: timerPresent,
                track: opt(
                  enumOf(['guest', 'wall'], { description: 'Whether the RTC follows guest or host time.' }),
                ),
              },
              'Real Time Clock.',
            ),
          ),
          kvm: opt(obj({ present: timerPresent }, 'The paravirtual KVM clock (Linux guests).')),
          hyperv: opt(obj({ present: timerPresent }, 'The Hyper-V paravirtual clock (Windows guests).')),
        },
        'Timers the guest sees.',
      ),
    ),
  },
  'The guest clock: its offset (utc or timezone) and its timers.',
);
export type Clock = Static<typeof Clock>;

export const Features = obj(
  {
    acpi: opt(FeatureState),
    apic: opt(Type.Object({ enabled: opt(Type.Boolean()), endOfInterrupt: opt(Type.Boolean()) })),
    smm: opt(FeatureState),
    hyperv: notYet(looseObject()),
    hypervPassthrough: notYet(looseObject()),
    kvm: notYet(looseObject()),
    pvspinlock: notYet(FeatureState),
  },
  'Hypervisor features.',
);

// scsi: the launcher puts such disks on one virtio-scsi controller.
export const DiskBus = enumOf(['virtio', 'sata', 'scsi', 'usb'], { unsupported: ['usb'] });
export type DiskBus = Static<typeof DiskBus>;

export const Disk = obj({
  name: str('Name of the disk; a volume of the same name provides its data.'),
  disk: opt(
    obj(
      {
        bus: opt(DiskBus),
        readonly: opt(Type.Boolean()),
        pciAddress: notYet(str()),
      },
      'Attach the volume as a disk (the default).',
    ),
  ),
  cdrom: opt(
    obj(
      {
        bus: opt(DiskBus),
        readonly: opt(Type.Boolean()),
        tray: opt(enumOf(['open', 'closed'], { unsupported: ['open'] })),
      },
      'Attach the volume as a CD-ROM.',
    ),
  ),
  lun: notYet(
    Type.Object({ bus: opt(DiskBus), readonly: opt(Type.Boolean()), reservation: opt(Type.Boolean()) }),
  ),
  bootOrder: opt(Type.Integer({ minimum: 1, description: 'Boot priority; 1 boots first.' })),
  serial: opt(str('Serial number the guest sees.')),
  dedicatedIOThread: notYet(Type.Boolean()),
  cache: opt(enumOf(['none', 'writethrough', 'writeback'])),
  io: opt(enumOf(['threads', 'native'])),
  tag: notYet(str()),
  blockSize: notYet(looseObject()),
  shareable: notYet(Type.Boolean()),
  errorPolicy: opt(enumOf(['stop', 'ignore', 'report', 'enospace'])),
  changedBlockTracking: notYet(Type.Boolean()),
});
export type Disk = Static<typeof Disk>;

export const Interface = obj({
  name: str('Name of the interface; a network of the same name connects it.'),
  model: opt(
    enumOf(['e1000', 'e1000e', 'igb', 'ne2k_pci', 'pcnet', 'rtl8139', 'virtio'], {
      description: 'The NIC model the guest sees (default virtio).',
    }),
  ),
  bridge: opt(
    obj(
      {},
      'Pod network binding: the guest takes over the pod IP by DHCP and the pod interface is bridged to its tap (all ports reach it).',
    ),
  ),
  masquerade: opt(
    obj(
      {},
      'Pod network binding: the guest gets an address in vmNetworkCIDR by DHCP and its traffic is NATed to the pod IP; ports limits what is forwarded in.',
    ),
  ),
  sriov: notYet(Type.Object({}), NETWORKING),
  passtBinding: opt(
    obj(
      {},
      'Pod network binding: user-mode networking through passt, no privileges needed; the guest gets the pod IP by DHCP from passt and ports limits what is forwarded in (PasstBinding feature gate, on by default).',
    ),
  ),
  binding: notYet(Type.Object({ name: str() }), NETWORKING),
  slirp: notYet(Type.Object({}), 'discontinued in KubeVirt'),
  macvtap: notYet(Type.Object({}), 'discontinued in KubeVirt'),
  passt: notYet(Type.Object({}), 'discontinued in KubeVirt; use passtBinding'),
  ports: opt(
    arrayOf(
      obj({
        name: opt(str('Name of the port.')),
        protocol: opt(enumOf(['TCP', 'UDP'], { description: 'TCP (default) or UDP.' })),
        port: int('The port number, 1 to 65535.'),
      }),
      'Ports forwarded to the guest (masquerade, passtBinding); all ports when none are listed.',
    ),
  ),
  portRanges: notYet(arrayOf(looseObject()), NETWORKING),
  macAddress: opt(str('The guest MAC address, aa:bb:cc:dd:ee:ff (default: derived from the VMI UID).')),
  bootOrder: notYet(Type.Integer({ minimum: 1 }), NETWORKING),
  pciAddress: notYet(str(), NETWORKING),
  dhcpOptions: notYet(looseObject(), NETWORKING),
  tag: notYet(str(), NETWORKING),
  acpiIndex: notYet(int(), NETWORKING),
  state: notYet(enumOf(['up', 'down', 'absent']), NETWORKING),
});
export type Interface = Static<typeof Interface>;

export const Devices = obj(
  {
    disks: opt(arrayOf(Disk, 'Disks of the guest; each takes its data from the volume of the same name.')),
    interfaces: opt(arrayOf(Interface, 'Network interfaces; each connects to the network of the same name.')),
    autoattachPodInterface: opt(
      bool('Add the default pod network and its interface when the VMI has none (default true).'),
    ),
    autoattachGraphicsDevice: opt(bool('Attach a VNC graphics device (default true).')),
    autoattachSerialConsole: opt(bool('Attach a serial console (default true).')),
    logSerialConsole: opt(bool('Keep a log of the serial console output.')),
    autoattachMemBalloon: opt(bool('Attach a memory balloon device (default true).')),
    disableHotplug: opt(bool('Reserve no slots for device hotplug.')),
    autoattachInputDevice: notYet(Type.Boolean()),
    autoattachVSOCK: notYet(Type.Boolean()),
    useVirtioTransitional: notYet(Type.Boolean()),
    blockMultiQueue: notYet(Type.Boolean()),
    networkInterfaceMultiqueue: notYet(Type.Boolean(), NETWORKING),
    inputs: notYet(arrayOf(looseObject())),
    watchdog: notYet(looseObject()),
    rng: opt(obj({}, "A virtio random number generator fed from the host's /dev/urandom.")),
    gpus: notYet(arrayOf(looseObject())),
    hostDevices: notYet(arrayOf(looseObject())),
    filesystems: notYet(arrayOf(looseObject()), 'virtiofs'),
    downwardMetrics: notYet(Type.Object({})),
    panicDevices: opt(
      arrayOf(
        obj(
          {
            model: opt(
              enumOf(['hyperv', 'isa', 'pvpanic'], {
                description: 'The panic device QEMU emulates (default isa).',
                // libvirt's pvpanic model (a PCI device) needs libvirt 9.1; the launcher ships 9.0.
                unsupported: ['pvpanic'],
              }),
            ),
          },
          'A panic device: a guest kernel that panics tells the hypervisor, and the VMI ends Failed.',
        ),
        'Panic devices of the guest.',
      ),
    ),
    clientPassthrough: notYet(Type.Object({})),
    sound: notYet(looseObject()),
    tpm: notYet(looseObject()),
    video: notYet(looseObject()),
  },
  'Devices of the guest.',
);

export const DomainSpec = obj(
  {
    resources: opt(ResourceRequirements),
    cpu: opt(CPU),
    memory: opt(Memory),
    machine: opt(Machine),
    firmware: opt(Firmware),
    features: opt(Features),
    devices: Devices,
    clock: opt(Clock),
    ioThreadsPolicy: notYet(enumOf(['shared', 'auto', 'supplementalPool'])),
    ioThreads: notYet(looseObject()),
    chassis: notYet(looseObject()),
    launchSecurity: notYet(looseObject()),
    rebootPolicy: notYet(enumOf(['Reboot', 'Terminate'])),
  },
  'The virtual hardware of the guest.',
);
export type DomainSpec = Static<typeof DomainSpec>;

// ---------------------------------------------------------------------------------------------------------------
// volumes and networks
// ---------------------------------------------------------------------------------------------------------------

export const ContainerDiskSource = obj(
  {
    image: str('Image holding the disk (a qcow2 or raw file under /disk, or at path).'),
    imagePullSecret: opt(str('Secret with the registry credentials.')),
    path: opt(str('Path of the disk file inside the image.')),
    imagePullPolicy: opt(PullPolicy),
  },
  'A disk shipped as a container image; writes go to a throw-away overlay.',
);

export const CloudInitNoCloudSource = obj(
  {
    userData: opt(str('Inline user-data (at most 2048 bytes).')),
    userDataBase64: opt(str('Inline user-data, base64-encoded.')),
    secretRef: opt(LocalObjectReference),
    networkData: opt(str('Inline network-data (at most 2048 bytes).')),
    networkDataBase64: opt(str('Inline network-data, base64-encoded.')),
    networkDataSecretRef: opt(LocalObjectReference),
  },
  'cloud-init NoCloud data, attached to the guest as an ISO labelled cidata.',
);

export const EmptyDiskSource = obj(
  { capacity: quantity('Size of the disk.') },
  'A blank disk created when the guest starts, discarded when it stops.',
);

export const PersistentVolumeClaimSource = obj(
  {
    claimName: str('Name of the PersistentVolumeClaim in the same namespace.'),
    readOnly: opt(Type.Boolean()),
    hotpluggable: notYet(Type.Boolean(), 'volume hotplug'),
  },
  'A PersistentVolumeClaim; a filesystem volume holds the disk as disk.img.',
);

export const HostDiskSource = obj(
  {
    path: str('Absolute path of the disk image on the node.'),
    type: enumOf(['Disk', 'DiskOrCreate'], {
      description: 'Disk: must exist; DiskOrCreate: created if missing.',
    }),
    capacity: opt(quantity('Size of the image when it is created.')),
    shared: notYet(Type.Boolean()),
  },
  'A disk image on the node (needs the HostDisk feature gate).',
);

export const Volume = obj({
  name: str('Name of the volume; the disk of the same name uses it.'),
  containerDisk: opt(ContainerDiskSource),
  cloudInitNoCloud: opt(CloudInitNoCloudSource),
  emptyDisk: opt(EmptyDiskSource),
  persistentVolumeClaim: opt(PersistentVolumeClaimSource),
  hostDisk: opt(HostDiskSource),
  cloudInitConfigDrive: notYet(looseObject()),
  dataVolume: notYet(Type.Object({ name: str(), hotpluggable: opt(Type.Boolean()) }), 'needs CDI'),
  ephemeral: notYet(looseObject()),
  configMap: notYet(looseObject()),
  secret: notYet(looseObject()),
  serviceAccount: notYet(looseObject()),
  downwardAPI: notYet(looseObject()),
  downwardMetrics: notYet(Type.Object({})),
  sysprep: notYet(looseObject()),
  memoryDump: notYet(looseObject()),
  containerPath: notYet(looseObject()),
});
export type Volume = Static<typeof Volume>;

/** The volume sources, in the order the "exactly one source" rule names them. */
export const VOLUME_SOURCES = [
  'containerDisk',
  'cloudInitNoCloud',
  'emptyDisk',
  'persistentVolumeClaim',
  'hostDisk',
  'cloudInitConfigDrive',
  'dataVolume',
  'ephemeral',
  'configMap',
  'secret',
  'serviceAccount',
  'downwardAPI',
  'downwardMetrics',
  'sysprep',
  'memoryDump',
  'containerPath',
] as const;

/** The interface bindings, of which an interface takes exactly one. */
export const INTERFACE_BINDINGS = [
  'bridge',
  'masquerade',
  'sriov',
  'passtBinding',
  'binding',
  'slirp',
  'macvtap',
  'passt',
] as const;

export const Network = obj({
  name: str('Name of the network; the interface of the same name uses it.'),
  pod: opt(
    obj(
      {
        vmNetworkCIDR: opt(str('IPv4 range of the masquerade guest network (default 10.0.2.0/24).')),
        vmIPv6NetworkCIDR: notYet(str(), NETWORKING),
      },
      'The pod network.',
    ),
  ),
  multus: notYet(Type.Object({ networkName: str(), default: opt(Type.Boolean()) }), 'secondary networks'),
  resourceClaim: notYet(looseObject()),
});
export type Network = Static<typeof Network>;

export const NETWORK_SOURCES = ['pod', 'multus', 'resourceClaim'] as const;

export const EvictionStrategy = enumOf(['None', 'LiveMigrate', 'LiveMigrateIfPossible', 'External'], {
  description: 'What a node drain does to this VMI.',
  unsupported: ['LiveMigrate', 'LiveMigrateIfPossible', 'External'],
});
export type EvictionStrategy = Static<typeof EvictionStrategy>;

export const Architecture = enumOf(['amd64', 'arm64', 's390x', 'ppc64le'], {
  description: 'CPU architecture of the guest (default amd64).',
  unsupported: ['arm64', 's390x', 'ppc64le'],
});

// ---------------------------------------------------------------------------------------------------------------
// spec
// ---------------------------------------------------------------------------------------------------------------

export const VirtualMachineInstanceSpec = obj(
  {
    domain: DomainSpec,
    volumes: opt(arrayOf(Volume, 'Where the data of the disks comes from.')),
    networks: opt(arrayOf(Network, 'Networks the interfaces connect to.')),
    terminationGracePeriodSeconds: opt(
      Type.Integer({
        minimum: 0,
        description: 'Seconds the guest gets to shut down after an ACPI power-off (default 30).',
      }),
    ),
    startStrategy: opt(enumOf(['Paused'], { description: 'Paused: start the guest paused.' })),
    evictionStrategy: opt(EvictionStrategy),
    architecture: opt(Architecture),
    nodeSelector: opt(stringMap('Node labels the launcher pod must match.')),
    affinity: opt(Affinity),
    tolerations: opt(arrayOf(Toleration, 'Tolerations of the launcher pod.')),
    topologySpreadConstraints: opt(arrayOf(TopologySpreadConstraint)),
    schedulerName: opt(str('Scheduler of the launcher pod.')),
    priorityClassName: opt(str('PriorityClass of the launcher pod.')),
    hostname: opt(str('Hostname of the guest (a DNS label); default the VMI name.')),
    subdomain: opt(str('Subdomain of the guest (with a headless Service of that name).')),
    dnsPolicy: opt(DNSPolicy),
    dnsConfig: opt(PodDNSConfig),
    serviceAccountName: notYet(str()),
    livenessProbe: notYet(looseObject(), 'probes need the guest agent and pod networking'),
    readinessProbe: notYet(looseObject(), 'probes need the guest agent and pod networking'),
    accessCredentials: notYet(arrayOf(looseObject())),
    resourceClaims: notYet(arrayOf(looseObject()), 'dynamic resource allocation'),
    utilityVolumes: notYet(arrayOf(looseObject())),
  },
  'Specification of a virtual machine instance: one running guest.',
);
export type VirtualMachineInstanceSpec = Static<typeof VirtualMachineInstanceSpec>;

// ---------------------------------------------------------------------------------------------------------------
// status (written by the controller and the handler; never validated against user input)
// ---------------------------------------------------------------------------------------------------------------

export const VirtualMachineInstancePhase = enumOf([
  '',
  'Pending',
  'Scheduling',
  'Scheduled',
  'Running',
  'Succeeded',
  'Failed',
  'WaitingForSync',
  'Unknown',
]);
export type VirtualMachineInstancePhase = Static<typeof VirtualMachineInstancePhase>;

export const MigrationState = Type.Object({
  startTimestamp: opt(str()),
  endTimestamp: opt(str()),
  targetNodeDomainReadyTimestamp: opt(str()),
  targetNodeDomainDetected: opt(Type.Boolean()),
  targetNodeAddress: opt(str()),
  targetDirectMigrationNodePorts: opt(Type.Record(Type.String(), Type.Integer())),
  targetNode: opt(str()),
  targetPod: opt(str()),
  targetAttachmentPodUID: opt(str()),
  sourceNode: opt(str()),
  sourcePod: opt(str()),
  completed: opt(Type.Boolean()),
  failed: opt(Type.Boolean()),
  abortRequested: opt(Type.Boolean()),
  abortStatus: opt(str()),
  failureReason: opt(str()),
  migrationUid: opt(str()),
  mode: opt(str('PreCopy, PostCopy or Paused.')),
  migrationPolicyName: opt(str()),
  migrationConfiguration: opt(looseObject()),
  targetCPUSet: opt(arrayOf(Type.Integer())),
  targetNodeTopology: opt(str()),
  targetMemoryOverhead: opt(quantity()),
});

export const VirtualMachineInstanceStatus = Type.Object({
  phase: opt(VirtualMachineInstancePhase),
  phaseTransitionTimestamps: opt(
    arrayOf(Type.Object({ phase: opt(VirtualMachineInstancePhase), phaseTransitionTimestamp: opt(str()) })),
  ),
  nodeName: opt(str()),
  reason: opt(str()),
  conditions: opt(arrayOf(Condition)),
  interfaces: opt(
    arrayOf(
      Type.Object({
        ipAddress: opt(str()),
        ipAddresses: opt(arrayOf(str())),
        mac: opt(str()),
        name: opt(str()),
        interfaceName: opt(str()),
        podInterfaceName: opt(str()),
        infoSource: opt(str()),
        queueCount: opt(int()),
        linkState: opt(str()),
      }),
    ),
  ),
  guestOSInfo: opt(
    Type.Object({
      name: opt(str()),
      kernelRelease: opt(str()),
      version: opt(str()),
      prettyName: opt(str()),
      versionId: opt(str()),
      kernelVersion: opt(str()),
      machine: opt(str()),
      id: opt(str()),
    }),
  ),
  migrationState: opt(MigrationState),
  migrationMethod: opt(str()),
  migrationTransport: opt(str()),
  qosClass: opt(str()),
  launcherContainerImageVersion: opt(str()),
  evacuationNodeName: opt(str()),
  activePods: opt(stringMap('Launcher pods of this VMI: pod UID → node name.')),
  volumeStatus: opt(
    arrayOf(
      Type.Object({
        name: str(),
        target: opt(str()),
        phase: opt(str()),
        reason: opt(str()),
        message: opt(str()),
        size: opt(int()),
        persistentVolumeClaimInfo: opt(looseObject()),
        hotplugVolume: opt(looseObject()),
        containerDiskVolume: opt(Type.Object({ checksum: opt(int()) })),
      }),
    ),
  ),
  kernelBootStatus: opt(looseObject()),
  fsFreezeStatus: opt(str()),
  topologyHints: opt(looseObject()),
  virtualMachineRevisionName: opt(str()),
  runtimeUser: opt(uint()),
  VSOCKCID: opt(uint()),
  selinuxContext: opt(str()),
  machine: opt(Machine),
  currentCPUTopology: opt(Type.Object({ cores: opt(uint()), sockets: opt(uint()), threads: opt(uint()) })),
  memory: opt(
    Type.Object({
      guestAtBoot: opt(quantity()),
      guestCurrent: opt(quantity()),
      guestRequested: opt(quantity()),
      memoryOverhead: opt(quantity()),
    }),
  ),
  migratedVolumes: opt(arrayOf(looseObject())),
  changedBlockTracking: opt(looseObject()),
});
export type VirtualMachineInstanceStatus = Static<typeof VirtualMachineInstanceStatus>;

export const VirtualMachineInstance = Type.Object({
  apiVersion: opt(str()),
  kind: opt(str()),
  metadata: opt(ObjectMeta),
  spec: VirtualMachineInstanceSpec,
  status: opt(VirtualMachineInstanceStatus),
});
export type VirtualMachineInstance = Static<typeof VirtualMachineInstance>;
