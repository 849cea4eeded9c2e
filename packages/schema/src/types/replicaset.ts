// VirtualMachineInstanceReplicaSet (kubevirt.io/v1): keeps N VMIs from one template, like a ReplicaSet of pods.
import Type, { type Static } from 'typebox';
import { arrayOf, int, obj, opt, str } from './builders.ts';
import { Condition, LabelSelector, ObjectMeta } from './k8s.ts';
import { VirtualMachineInstanceTemplateSpec } from './vm.ts';

export const VirtualMachineInstanceReplicaSetSpec = obj(
  {
    replicas: opt(Type.Integer({ minimum: 0, description: 'Number of VMIs to keep (default 1).' })),
    selector: LabelSelector,
    template: VirtualMachineInstanceTemplateSpec,
    paused: opt(Type.Boolean({ description: 'Stop creating and deleting VMIs while true.' })),
  },
  'Specification of a replica set of virtual machine instances.',
);
export type VirtualMachineInstanceReplicaSetSpec = Static<typeof VirtualMachineInstanceReplicaSetSpec>;

export const VirtualMachineInstanceReplicaSetStatus = Type.Object({
  replicas: opt(int()),
  readyReplicas: opt(int()),
  conditions: opt(arrayOf(Condition)),
  labelSelector: opt(str('The selector in string form, for the scale subresource.')),
});
export type VirtualMachineInstanceReplicaSetStatus = Static<typeof VirtualMachineInstanceReplicaSetStatus>;

export const VirtualMachineInstanceReplicaSet = Type.Object({
  apiVersion: opt(str()),
  kind: opt(str()),
  metadata: opt(ObjectMeta),
  spec: VirtualMachineInstanceReplicaSetSpec,
  status: opt(VirtualMachineInstanceReplicaSetStatus),
});
export type VirtualMachineInstanceReplicaSet = Static<typeof VirtualMachineInstanceReplicaSet>;
