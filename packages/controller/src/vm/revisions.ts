// ControllerRevisions of a VM (KubeVirt's VM revision and pkg/instancetype/revision):
// - `revision-start-vm-<vm uid>-<generation>` holds the VM's spec as it was when its current VMI was started, so
//   the controller can tell later that the template changed under a running VM (RestartRequired);
// - `<vm>-<instancetype>-v1beta1-<uid>-<generation>` (and the same for a preference) holds a copy of the
//   instancetype or preference the VM was first started with, so that editing it later does not change the VM;
//   the VM's status.instancetypeRef/preferenceRef name the revision.
import type { V1ControllerRevision } from '@kubernetes/client-node';
import type {
  InstancetypeSpec,
  PreferenceSpec,
  VirtualMachine,
  VirtualMachineSpec,
} from '@kubevirt-ts/schema';
import { KUBEVIRT_API_VERSION, LABELS } from '../constants.ts';
import { controllerRef } from '../objects.ts';

export function vmRevisionPrefix(vmUid: string): string {
  return `revision-start-vm-${vmUid}`;
}

export function vmRevisionName(vmUid: string, generation: number): string {
  return `${vmRevisionPrefix(vmUid)}-${generation}`;
}

function baseRevision(
  vm: VirtualMachine,
  name: string,
  revision: number,
  labels: Record<string, string>,
): V1ControllerRevision {
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name,
      namespace: vm.metadata?.namespace,
      ownerReferences: [controllerRef(vm, KUBEVIRT_API_VERSION, 'VirtualMachine')],
      labels: { ...labels, [LABELS.revisionVmUid]: vm.metadata?.uid ?? '' },
    },
    revision,
  };
}

/** The revision holding the VM's spec at start. */
export function vmRevision(vm: VirtualMachine): V1ControllerRevision {
  const generation = vm.metadata?.generation ?? 0;
  const rev = baseRevision(vm, vmRevisionName(vm.metadata?.uid ?? '', generation), generation, {});
  rev.data = { spec: vm.spec };
  return rev;
}

/** The spec stored in a VM revision, if it is one. */
export function specOfVMRevision(rev: V1ControllerRevision | undefined): VirtualMachineSpec | undefined {
  const data = rev?.data as { spec?: VirtualMachineSpec } | undefined;
  return data?.spec;
}

/** An instancetype or preference as the API returns it. */
export interface InstancetypeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; generation?: number };
  spec: InstancetypeSpec | PreferenceSpec;
}

export function instancetypeRevisionName(vmName: string, obj: InstancetypeObject): string {
  const version = (obj.apiVersion ?? '').split('/')[1] ?? 'v1beta1';
  return `${vmName}-${obj.metadata?.name ?? ''}-${version}-${obj.metadata?.uid ?? ''}-${obj.metadata?.generation ?? 0}`;
}

/** The revision holding a copy of an instancetype or preference, labelled as KubeVirt labels them. */
export function instancetypeRevision(vm: VirtualMachine, obj: InstancetypeObject): V1ControllerRevision {
  const generation = obj.metadata?.generation ?? 0;
  const version = (obj.apiVersion ?? '').split('/')[1] ?? 'v1beta1';
  const rev = baseRevision(vm, instancetypeRevisionName(vm.metadata?.name ?? '', obj), 0, {
    [LABELS.revisionObjectGeneration]: String(generation),
    [LABELS.revisionObjectKind]: obj.kind ?? '',
    [LABELS.revisionObjectName]: obj.metadata?.name ?? '',
    [LABELS.revisionObjectUid]: obj.metadata?.uid ?? '',
    [LABELS.revisionObjectVersion]: version,
  });
  // Only what defines the object; labels, annotations and owners of the original are not part of the copy.
  const metadata: Record<string, unknown> = { name: obj.metadata?.name, uid: obj.metadata?.uid, generation };
  if (obj.metadata?.namespace !== undefined) metadata.namespace = obj.metadata.namespace;
  rev.data = { apiVersion: obj.apiVersion, kind: obj.kind, metadata, spec: obj.spec };
  return rev;
}

/** The spec stored in an instancetype or preference revision. */
export function specOfInstancetypeRevision<T extends InstancetypeSpec | PreferenceSpec>(
  rev: V1ControllerRevision | undefined,
): T | undefined {
  const data = rev?.data as { spec?: T } | undefined;
  return data?.spec;
}
