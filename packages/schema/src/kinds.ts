// The registry of every kind this package defines: API group, names, scope, printer columns and subresources as
// KubeVirt's own CRDs have them (pkg/virt-operator/resource/generate/components/crds.go), plus the root schema.
// crd.ts renders CRDs from it; the validators and the api-coverage script look kinds up here.
import type { TObject, TSchema } from 'typebox';
import {
  InstancetypeSpec,
  PreferenceSpec,
  VirtualMachineClusterInstancetype,
  VirtualMachineClusterPreference,
  VirtualMachineInstancetype,
  VirtualMachinePreference,
} from './types/instancetype.ts';
import { KubeVirt, KubeVirtSpec } from './types/kubevirt.ts';
import { VirtualMachineInstanceMigration, VirtualMachineInstanceMigrationSpec } from './types/migration.ts';
import {
  VirtualMachineInstanceReplicaSet,
  VirtualMachineInstanceReplicaSetSpec,
} from './types/replicaset.ts';
import { VirtualMachine, VirtualMachineSpec } from './types/vm.ts';
import { VirtualMachineInstance, VirtualMachineInstanceSpec } from './types/vmi.ts';

export const KUBEVIRT_GROUP = 'kubevirt.io';
export const KUBEVIRT_VERSION = 'v1';
export const KUBEVIRT_API_VERSION = `${KUBEVIRT_GROUP}/${KUBEVIRT_VERSION}`;
export const INSTANCETYPE_GROUP = 'instancetype.kubevirt.io';
export const INSTANCETYPE_VERSION = 'v1beta1';
export const INSTANCETYPE_API_VERSION = `${INSTANCETYPE_GROUP}/${INSTANCETYPE_VERSION}`;

export type KindName =
  | 'VirtualMachine'
  | 'VirtualMachineInstance'
  | 'VirtualMachineInstanceMigration'
  | 'VirtualMachineInstanceReplicaSet'
  | 'VirtualMachineInstancetype'
  | 'VirtualMachineClusterInstancetype'
  | 'VirtualMachinePreference'
  | 'VirtualMachineClusterPreference'
  | 'KubeVirt';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindInfo {
  kind: KindName;
  group: string;
  version: string;
  apiVersion: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  categories: readonly string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  /** The whole object: apiVersion, kind, metadata, spec, status. */
  schema: TObject;
  /** The schema of `.spec`, the part users write and the webhooks validate. */
  spec: TSchema;
  printerColumns: readonly PrinterColumn[];
  /** VM, VMIM, VMIRS and KubeVirt have /status; the VMI has none, as in KubeVirt (DESIGN.md §4b). */
  statusSubresource: boolean;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

const AGE: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const condition = (type: string): string => `.status.conditions[?(@.type=='${type}')].status`;

export const KINDS: readonly KindInfo[] = [
  {
    kind: 'VirtualMachine',
    group: KUBEVIRT_GROUP,
    version: KUBEVIRT_VERSION,
    apiVersion: KUBEVIRT_API_VERSION,
    plural: 'virtualmachines',
    singular: 'virtualmachine',
    shortNames: ['vm', 'vms'],
    categories: ['all'],
    scope: 'Namespaced',
    description: 'A virtual machine: a VirtualMachineInstance template and the strategy that runs it.',
    schema: VirtualMachine,
    spec: VirtualMachineSpec,
    printerColumns: [
      AGE,
      {
        name: 'Status',
        type: 'string',
        jsonPath: '.status.printableStatus',
        description: 'Human Readable Status',
      },
      { name: 'Ready', type: 'string', jsonPath: condition('Ready') },
    ],
    statusSubresource: true,
  },
  {
    kind: 'VirtualMachineInstance',
    group: KUBEVIRT_GROUP,
    version: KUBEVIRT_VERSION,
    apiVersion: KUBEVIRT_API_VERSION,
    plural: 'virtualmachineinstances',
    singular: 'virtualmachineinstance',
    shortNames: ['vmi', 'vmis'],
    categories: ['all'],
    scope: 'Namespaced',
    description: 'A running virtual machine: one guest in one launcher pod.',
    schema: VirtualMachineInstance,
    spec: VirtualMachineInstanceSpec,
    printerColumns: [
      AGE,
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'IP', type: 'string', jsonPath: '.status.interfaces[0].ipAddress' },
      { name: 'NodeName', type: 'string', jsonPath: '.status.nodeName' },
      { name: 'Ready', type: 'string', jsonPath: condition('Ready') },
      { name: 'Live-Migratable', type: 'string', jsonPath: condition('LiveMigratable'), priority: 1 },
      { name: 'Paused', type: 'string', jsonPath: condition('Paused'), priority: 1 },
    ],
    statusSubresource: false,
  },
  {
    kind: 'VirtualMachineInstanceMigration',
    group: KUBEVIRT_GROUP,
    version: KUBEVIRT_VERSION,
    apiVersion: KUBEVIRT_API_VERSION,
    plural: 'virtualmachineinstancemigrations',
    singular: 'virtualmachineinstancemigration',
    shortNames: ['vmim', 'vmims'],
    categories: ['all'],
    scope: 'Namespaced',
    description: 'A request to live-migrate a VirtualMachineInstance to another node.',
    schema: VirtualMachineInstanceMigration,
    spec: VirtualMachineInstanceMigrationSpec,
    printerColumns: [
      {
        name: 'Phase',
        type: 'string',
        jsonPath: '.status.phase',
        description: 'The current phase of VM instance migration',
      },
      {
        name: 'VMI',
        type: 'string',
        jsonPath: '.spec.vmiName',
        description: 'The name of the VMI to perform the migration on',
      },
    ],
    statusSubresource: true,
  },
  {
    kind: 'VirtualMachineInstanceReplicaSet',
    group: KUBEVIRT_GROUP,
    version: KUBEVIRT_VERSION,
    apiVersion: KUBEVIRT_API_VERSION,
    plural: 'virtualmachineinstancereplicasets',
    singular: 'virtualmachineinstancereplicaset',
    shortNames: ['vmirs', 'vmirss'],
    categories: ['all'],
    scope: 'Namespaced',
    description: 'Keeps a number of VirtualMachineInstances created from one template.',
    schema: VirtualMachineInstanceReplicaSet,
    spec: VirtualMachineInstanceReplicaSetSpec,
    printerColumns: [
      {
        name: 'Desired',
        type: 'integer',
        jsonPath: '.spec.replicas',
        description: 'Number of desired VirtualMachineInstances',
      },
      {
        name: 'Current',
        type: 'integer',
        jsonPath: '.status.replicas',
        description: 'Number of managed and not final or deleted VirtualMachineInstances',
      },
      {
        name: 'Ready',
        type: 'integer',
        jsonPath: '.status.readyReplicas',
        description: 'Number of managed VirtualMachineInstances which are ready to receive traffic',
      },
      AGE,
    ],
    statusSubresource: true,
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.labelSelector',
    },
  },
  {
    kind: 'VirtualMachineInstancetype',
    group: INSTANCETYPE_GROUP,
    version: INSTANCETYPE_VERSION,
    apiVersion: INSTANCETYPE_API_VERSION,
    plural: 'virtualmachineinstancetypes',
    singular: 'virtualmachineinstancetype',
    shortNames: ['vminstancetype', 'vminstancetypes', 'vmf', 'vmfs'],
    categories: ['all'],
    scope: 'Namespaced',
    description: 'The size of a VM (vCPUs, memory, placement), in one namespace.',
    schema: VirtualMachineInstancetype,
    spec: InstancetypeSpec,
    printerColumns: [],
    statusSubresource: false,
  },
  {
    kind: 'VirtualMachineClusterInstancetype',
    group: INSTANCETYPE_GROUP,
    version: INSTANCETYPE_VERSION,
    apiVersion: INSTANCETYPE_API_VERSION,
    plural: 'virtualmachineclusterinstancetypes',
    singular: 'virtualmachineclusterinstancetype',
    shortNames: ['vmclusterinstancetype', 'vmclusterinstancetypes', 'vmcf', 'vmcfs'],
    categories: [],
    scope: 'Cluster',
    description: 'The size of a VM (vCPUs, memory, placement), for every namespace.',
    schema: VirtualMachineClusterInstancetype,
    spec: InstancetypeSpec,
    printerColumns: [],
    statusSubresource: false,
  },
  {
    kind: 'VirtualMachinePreference',
    group: INSTANCETYPE_GROUP,
    version: INSTANCETYPE_VERSION,
    apiVersion: INSTANCETYPE_API_VERSION,
    plural: 'virtualmachinepreferences',
    singular: 'virtualmachinepreference',
    shortNames: ['vmpref', 'vmprefs', 'vmp', 'vmps'],
    categories: ['all'],
    scope: 'Namespaced',
    description: 'Defaults a VM takes unless it sets them itself, in one namespace.',
    schema: VirtualMachinePreference,
    spec: PreferenceSpec,
    printerColumns: [],
    statusSubresource: false,
  },
  {
    kind: 'VirtualMachineClusterPreference',
    group: INSTANCETYPE_GROUP,
    version: INSTANCETYPE_VERSION,
    apiVersion: INSTANCETYPE_API_VERSION,
    plural: 'virtualmachineclusterpreferences',
    singular: 'virtualmachineclusterpreference',
    shortNames: ['vmcp', 'vmcps'],
    categories: [],
    scope: 'Cluster',
    description: 'Defaults a VM takes unless it sets them itself, for every namespace.',
    schema: VirtualMachineClusterPreference,
    spec: PreferenceSpec,
    printerColumns: [],
    statusSubresource: false,
  },
  {
    kind: 'KubeVirt',
    group: KUBEVIRT_GROUP,
    version: KUBEVIRT_VERSION,
    apiVersion: KUBEVIRT_API_VERSION,
    plural: 'kubevirts',
    singular: 'kubevirt',
    shortNames: ['kv', 'kvs'],
    categories: ['all'],
    scope: 'Namespaced',
    description:
      'Configuration of kubevirt-ts, read by every service (one object, in the install namespace).',
    schema: KubeVirt,
    spec: KubeVirtSpec,
    printerColumns: [AGE, { name: 'Phase', type: 'string', jsonPath: '.status.phase' }],
    statusSubresource: true,
  },
];

/** The registry entry for an object's apiVersion and kind, or undefined for anything this package does not own. */
export function kindInfo(apiVersion: unknown, kind: unknown): KindInfo | undefined {
  return KINDS.find((k) => k.apiVersion === apiVersion && k.kind === kind);
}

export function kindByName(kind: KindName): KindInfo {
  const info = KINDS.find((k) => k.kind === kind);
  if (info === undefined) throw new Error(`kind ${kind} is not registered in packages/schema/src/kinds.ts`);
  return info;
}
