// VirtualMachineInstanceMigration (kubevirt.io/v1): a request to live-migrate one VMI to another node.
import Type, { type Static } from 'typebox';
import { arrayOf, enumOf, notYet, obj, opt, str, stringMap } from './builders.ts';
import { Condition, ObjectMeta } from './k8s.ts';
import { MigrationState } from './vmi.ts';

export const VirtualMachineInstanceMigrationSpec = obj(
  {
    vmiName: str('Name of the VirtualMachineInstance to migrate, in the same namespace.'),
    addedNodeSelector: opt(stringMap('Extra node labels the migration target must match.')),
    priority: notYet(
      enumOf(['system-critical', 'user-triggered', 'system-maintenance']),
      'migration priorities',
    ),
    sendTo: notYet(Type.Object({ migrationID: str(), connectURL: str() }), 'decentralized live migration'),
    receive: notYet(Type.Object({ migrationID: str() }), 'decentralized live migration'),
  },
  'Specification of a live migration.',
);
export type VirtualMachineInstanceMigrationSpec = Static<typeof VirtualMachineInstanceMigrationSpec>;

export const MIGRATION_PHASES = [
  '',
  'Pending',
  'Scheduling',
  'Scheduled',
  'PreparingTarget',
  'TargetReady',
  'Running',
  'Succeeded',
  'Failed',
  'WaitingForSync',
  'Synchronizing',
] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

export const VirtualMachineInstanceMigrationStatus = Type.Object({
  phase: opt(enumOf(MIGRATION_PHASES)),
  conditions: opt(arrayOf(Condition)),
  phaseTransitionTimestamps: opt(
    arrayOf(Type.Object({ phase: opt(enumOf(MIGRATION_PHASES)), phaseTransitionTimestamp: opt(str()) })),
  ),
  migrationState: opt(MigrationState),
  synchronizationAddresses: opt(arrayOf(str())),
});
export type VirtualMachineInstanceMigrationStatus = Static<typeof VirtualMachineInstanceMigrationStatus>;

export const VirtualMachineInstanceMigration = Type.Object({
  apiVersion: opt(str()),
  kind: opt(str()),
  metadata: opt(ObjectMeta),
  spec: VirtualMachineInstanceMigrationSpec,
  status: opt(VirtualMachineInstanceMigrationStatus),
});
export type VirtualMachineInstanceMigration = Static<typeof VirtualMachineInstanceMigration>;
