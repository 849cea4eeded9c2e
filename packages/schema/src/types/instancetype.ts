// instancetype.kubevirt.io/v1beta1: instancetypes (the size of a VM: vCPUs, memory, placement) and preferences
// (defaults for everything else: buses, topology, firmware…), namespaced and cluster-wide.
import Type, { type Static } from 'typebox';
import {
  arrayOf,
  bool,
  enumOf,
  looseObject,
  notYet,
  obj,
  opt,
  quantity,
  str,
  stringMap,
} from './builders.ts';
import { ObjectMeta } from './k8s.ts';
import { CPUFeature, DiskBus, FeatureState } from './vmi.ts';

export const InstancetypeSpec = obj(
  {
    cpu: obj(
      {
        guest: Type.Integer({ minimum: 1, description: 'Number of vCPUs.' }),
        model: opt(str('Guest CPU model.')),
        dedicatedCPUPlacement: notYet(Type.Boolean(), 'dedicated CPUs need the CPU manager'),
        numa: notYet(looseObject()),
        isolateEmulatorThread: notYet(Type.Boolean()),
        realtime: notYet(looseObject()),
        maxSockets: notYet(Type.Integer({ minimum: 0 }), 'CPU hotplug'),
      },
      'The vCPUs of the VM.',
    ),
    memory: obj(
      {
        guest: quantity('Memory the guest sees.'),
        overcommitPercent: opt(
          Type.Integer({
            minimum: 0,
            maximum: 100,
            description: 'Request this much percent less memory for the pod than the guest sees.',
          }),
        ),
        hugepages: notYet(Type.Object({ pageSize: opt(str()) })),
        maxGuest: notYet(quantity(), 'memory hotplug'),
      },
      'The memory of the VM.',
    ),
    nodeSelector: opt(stringMap('Node labels the launcher pod must match.')),
    schedulerName: opt(str('Scheduler of the launcher pod.')),
    annotations: opt(stringMap('Annotations added to the VMI.')),
    gpus: notYet(arrayOf(looseObject())),
    hostDevices: notYet(arrayOf(looseObject())),
    ioThreadsPolicy: notYet(enumOf(['shared', 'auto', 'supplementalPool'])),
    ioThreads: notYet(looseObject()),
    launchSecurity: notYet(looseObject()),
  },
  'The size of a VM: what a VM referencing this instancetype may not set itself.',
);
export type InstancetypeSpec = Static<typeof InstancetypeSpec>;

export const PREFERRED_CPU_TOPOLOGIES = [
  'sockets',
  'cores',
  'threads',
  'spread',
  'any',
  'preferSockets',
  'preferCores',
  'preferThreads',
  'preferSpread',
  'preferAny',
] as const;
export type PreferredCPUTopology = (typeof PREFERRED_CPU_TOPOLOGIES)[number];

export const SPREAD_ACROSS = ['SocketsCores', 'CoresThreads', 'SocketsCoresThreads'] as const;

export const PreferenceSpec = obj(
  {
    cpu: opt(
      obj({
        preferredCPUTopology: opt(
          enumOf(PREFERRED_CPU_TOPOLOGIES, {
            description: 'How the instancetype vCPUs are laid out (default sockets).',
          }),
        ),
        spreadOptions: opt(
          obj({
            across: opt(enumOf(SPREAD_ACROSS)),
            ratio: opt(Type.Integer({ minimum: 1 })),
          }),
        ),
        preferredCPUFeatures: notYet(arrayOf(CPUFeature)),
      }),
    ),
    devices: opt(
      obj({
        preferredDiskBus: opt(DiskBus),
        preferredCdromBus: opt(DiskBus),
        preferredDiskCache: opt(enumOf(['none', 'writethrough', 'writeback'])),
        preferredDiskIO: opt(enumOf(['threads', 'native'])),
        preferredAutoattachGraphicsDevice: opt(bool()),
        preferredAutoattachSerialConsole: opt(bool()),
        preferredAutoattachPodInterface: opt(bool()),
        preferredAutoattachMemBalloon: opt(bool()),
        preferredDisableHotplug: opt(bool()),
        preferredLunBus: notYet(DiskBus),
        preferredAutoattachInputDevice: notYet(Type.Boolean()),
        preferredVirtualGPUOptions: notYet(looseObject()),
        preferredSoundModel: notYet(str()),
        preferredUseVirtioTransitional: notYet(Type.Boolean()),
        preferredInputBus: notYet(str()),
        preferredInputType: notYet(str()),
        preferredDiskDedicatedIoThread: notYet(Type.Boolean()),
        preferredDiskBlockSize: notYet(looseObject()),
        preferredInterfaceModel: notYet(str(), 'interface networking'),
        preferredRng: notYet(Type.Object({})),
        preferredBlockMultiQueue: notYet(Type.Boolean()),
        preferredNetworkInterfaceMultiQueue: notYet(Type.Boolean(), 'interface networking'),
        preferredTPM: notYet(looseObject()),
        preferredInterfaceMasquerade: notYet(Type.Object({}), 'interface networking'),
        preferredPanicDeviceModel: notYet(str()),
        preferredVideoType: notYet(str()),
      }),
    ),
    features: opt(
      obj({
        preferredAcpi: opt(FeatureState),
        preferredApic: opt(
          Type.Object({ enabled: opt(Type.Boolean()), endOfInterrupt: opt(Type.Boolean()) }),
        ),
        preferredSmm: opt(FeatureState),
        preferredHyperv: notYet(looseObject()),
        preferredKvm: notYet(looseObject()),
        preferredPvspinlock: notYet(FeatureState),
      }),
    ),
    firmware: opt(
      obj({
        preferredUseBios: opt(bool()),
        preferredUseBiosSerial: opt(bool()),
        preferredUseEfi: notYet(Type.Boolean(), 'EFI firmware'),
        preferredUseSecureBoot: notYet(Type.Boolean(), 'EFI firmware'),
        preferredEfi: notYet(looseObject(), 'EFI firmware'),
      }),
    ),
    machine: opt(obj({ preferredMachineType: opt(str()) })),
    preferredSubdomain: opt(str()),
    preferredTerminationGracePeriodSeconds: opt(Type.Integer({ minimum: 0 })),
    preferSpreadSocketToCoreRatio: opt(Type.Integer({ minimum: 0 })),
    preferredArchitecture: opt(str()),
    requirements: opt(
      obj(
        {
          cpu: opt(obj({ guest: Type.Integer({ minimum: 0 }) })),
          memory: opt(obj({ guest: quantity() })),
          architecture: opt(str()),
        },
        'What the instancetype (or the VM) must provide for this preference to apply.',
      ),
    ),
    annotations: opt(stringMap('Annotations added to the VMI unless it has them.')),
    clock: notYet(looseObject()),
    volumes: notYet(obj({ preferredStorageClassName: opt(str()) }), 'needs CDI dataVolumeTemplates'),
    preferredLaunchSecurity: notYet(looseObject()),
  },
  'Defaults a VM takes unless it sets the field itself.',
);
export type PreferenceSpec = Static<typeof PreferenceSpec>;

function kindOf<S extends typeof InstancetypeSpec | typeof PreferenceSpec>(spec: S) {
  return Type.Object({
    apiVersion: opt(str()),
    kind: opt(str()),
    metadata: opt(ObjectMeta),
    spec,
  });
}

export const VirtualMachineInstancetype = kindOf(InstancetypeSpec);
export type VirtualMachineInstancetype = Static<typeof VirtualMachineInstancetype>;
export const VirtualMachineClusterInstancetype = kindOf(InstancetypeSpec);
export type VirtualMachineClusterInstancetype = Static<typeof VirtualMachineClusterInstancetype>;
export const VirtualMachinePreference = kindOf(PreferenceSpec);
export type VirtualMachinePreference = Static<typeof VirtualMachinePreference>;
export const VirtualMachineClusterPreference = kindOf(PreferenceSpec);
export type VirtualMachineClusterPreference = Static<typeof VirtualMachineClusterPreference>;
