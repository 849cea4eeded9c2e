// The VMI a VM starts (KubeVirt's SetupVMIFromVM and startVMI): the VM's template, with the instancetype and
// preference already expanded into it, the VM as controlling owner, the VM controller's finalizer, the VM
// generation it came from, the revision of the VM spec, a firmware UUID that is stable across restarts, and
// startStrategy Paused when the Start request asked for that.
import {
  firmwareUUIDFromName,
  type VirtualMachine,
  type VirtualMachineInstanceTemplateSpec,
} from '@kubevirt-ts/schema';
import { ANNOTATIONS, FINALIZERS, KUBEVIRT_API_VERSION } from '../constants.ts';
import { controllerRef, jsonCopy, type VMI } from '../objects.ts';
import { hasStartPausedRequest } from './run-strategy.ts';

export function vmiFromVM(
  vm: VirtualMachine,
  template: VirtualMachineInstanceTemplateSpec & { spec: VMI['spec'] },
  revisionName: string,
): VMI {
  const t = jsonCopy(template);
  const name = vm.metadata?.name ?? '';
  const spec = t.spec;
  if (hasStartPausedRequest(vm)) spec.startStrategy = 'Paused';
  const firmware = (spec.domain.firmware ??= {});
  if (firmware.uuid === undefined || firmware.uuid === '') firmware.uuid = firmwareUUIDFromName(name);
  // KubeVirt's SetDefaultVolumeDisk: a volume no disk names gets a disk of its name.
  const disks = (spec.domain.devices.disks ??= []);
  for (const volume of spec.volumes ?? []) {
    if (!disks.some((d) => d.name === volume.name)) disks.push({ name: volume.name });
  }
  const annotations: Record<string, string> = {
    ...t.metadata?.annotations,
    [ANNOTATIONS.vmGeneration]: String(vm.metadata?.generation ?? 0),
  };
  const vmi: VMI = {
    apiVersion: KUBEVIRT_API_VERSION,
    kind: 'VirtualMachineInstance',
    metadata: {
      name,
      namespace: vm.metadata?.namespace,
      annotations,
      ownerReferences: [controllerRef(vm, KUBEVIRT_API_VERSION, 'VirtualMachine')],
      finalizers: [FINALIZERS.vmController],
    },
    spec,
    status: { virtualMachineRevisionName: revisionName },
  };
  if (t.metadata?.labels !== undefined) vmi.metadata!.labels = t.metadata.labels;
  return vmi;
}
