// VirtualMachine (kubevirt.io/v1): a VMI template plus the run strategy that decides when a VMI exists.
import Type, { type Static } from 'typebox';
import {
  SAME_AS,
  annotate,
  arrayOf,
  enumOf,
  int,
  looseObject,
  notYet,
  obj,
  opt,
  str,
  uint,
} from './builders.ts';
import { Condition, ObjectMeta, TemplateMeta } from './k8s.ts';
import { VirtualMachineInstanceSpec } from './vmi.ts';

export const RUN_STRATEGIES = [
  'Always',
  'RerunOnFailure',
  'Manual',
  'Halted',
  'Once',
  'WaitAsReceiver',
] as const;

export const RunStrategy = enumOf(RUN_STRATEGIES, {
  description:
    'When a VMI should exist: Always (keep one running), RerunOnFailure (restart it when it fails), Manual ' +
    '(only start/stop requests), Halted (none), Once (run it once).',
  unsupported: ['WaitAsReceiver'],
});
export type RunStrategy = Static<typeof RunStrategy>;

/** The template a VM or replica set creates its VMIs from. */
export const VirtualMachineInstanceTemplateSpec = obj(
  {
    metadata: opt(TemplateMeta),
    spec: opt(annotate(VirtualMachineInstanceSpec, { [SAME_AS]: 'VirtualMachineInstance' })),
  },
  'The VirtualMachineInstance this object creates.',
);
export type VirtualMachineInstanceTemplateSpec = Static<typeof VirtualMachineInstanceTemplateSpec>;

function matcher(what: 'instancetype' | 'preference') {
  const kinds =
    what === 'instancetype'
      ? 'VirtualMachineClusterInstancetype (default) or VirtualMachineInstancetype'
      : 'VirtualMachineClusterPreference (default) or VirtualMachinePreference';
  return obj(
    {
      name: opt(str(`Name of the ${what}.`)),
      kind: opt(str(`${kinds}.`)),
      revisionName: notYet(str(), 'ControllerRevision pinning'),
      inferFromVolume: notYet(str(), 'inference from volumes needs CDI'),
      inferFromVolumeFailurePolicy: notYet(enumOf(['Reject', 'Ignore'])),
    },
    `The ${what} whose settings this VM takes.`,
  );
}

export const InstancetypeMatcher = matcher('instancetype');
export type InstancetypeMatcher = Static<typeof InstancetypeMatcher>;
export const PreferenceMatcher = matcher('preference');
export type PreferenceMatcher = Static<typeof PreferenceMatcher>;

export const VirtualMachineSpec = obj(
  {
    runStrategy: opt(RunStrategy),
    running: opt(
      Type.Boolean({ description: 'Deprecated: true means runStrategy Always, false means Halted.' }),
    ),
    instancetype: opt(InstancetypeMatcher),
    preference: opt(PreferenceMatcher),
    template: VirtualMachineInstanceTemplateSpec,
    dataVolumeTemplates: notYet(arrayOf(looseObject()), 'needs CDI'),
    updateVolumesStrategy: notYet(enumOf(['Replacement', 'Migration'])),
  },
  'Specification of a virtual machine: the VMI to create and when.',
);
export type VirtualMachineSpec = Static<typeof VirtualMachineSpec>;

export const PRINTABLE_STATUSES = [
  'Stopped',
  'Provisioning',
  'Starting',
  'Running',
  'Paused',
  'Stopping',
  'Terminating',
  'CrashLoopBackOff',
  'Migrating',
  'Unknown',
  'ErrorUnschedulable',
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrorPvcNotFound',
  'DataVolumeError',
  'WaitingForVolumeBinding',
  'WaitingForReceiver',
] as const;
export type PrintableStatus = (typeof PRINTABLE_STATUSES)[number];

const InstancetypeStatusRef = Type.Object({
  name: opt(str()),
  kind: opt(str()),
  controllerRevisionRef: opt(Type.Object({ name: opt(str()) })),
  inferFromVolume: opt(str()),
  inferFromVolumeFailurePolicy: opt(str()),
});

export const VirtualMachineStatus = Type.Object({
  created: opt(Type.Boolean()),
  ready: opt(Type.Boolean()),
  // A free string in the CRD, like KubeVirt's: a status write must never be refused for a new value.
  printableStatus: opt(Type.Unsafe<PrintableStatus>(Type.String())),
  conditions: opt(arrayOf(Condition)),
  stateChangeRequests: opt(
    arrayOf(
      Type.Object({
        action: enumOf(['Start', 'Stop']),
        data: opt(Type.Record(Type.String(), Type.String())),
        uid: opt(str()),
      }),
    ),
  ),
  volumeRequests: opt(arrayOf(looseObject())),
  volumeSnapshotStatuses: opt(arrayOf(looseObject())),
  startFailure: opt(
    Type.Object({
      consecutiveFailCount: opt(int()),
      lastFailedVMIUID: opt(str()),
      retryAfterTimestamp: opt(str()),
    }),
  ),
  memoryDumpRequest: opt(looseObject()),
  observedGeneration: opt(uint()),
  desiredGeneration: opt(uint()),
  runStrategy: opt(str()),
  snapshotInProgress: opt(str()),
  restoreInProgress: opt(str()),
  volumeUpdateState: opt(looseObject()),
  changedBlockTracking: opt(looseObject()),
  instancetypeRef: opt(InstancetypeStatusRef),
  preferenceRef: opt(InstancetypeStatusRef),
});
export type VirtualMachineStatus = Static<typeof VirtualMachineStatus>;

export const VirtualMachine = Type.Object({
  apiVersion: opt(str()),
  kind: opt(str()),
  metadata: opt(ObjectMeta),
  spec: VirtualMachineSpec,
  status: opt(VirtualMachineStatus),
});
export type VirtualMachine = Static<typeof VirtualMachine>;
