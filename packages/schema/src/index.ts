// @kubevirt-ts/schema: the kubevirt.io/v1 and instancetype.kubevirt.io/v1beta1 API of kubevirt-ts. One set of
// definitions (src/types) gives the TypeScript types, the CRDs, defaulting and validation.
export * from './types/builders.ts';
export * from './types/k8s.ts';
export * from './types/vmi.ts';
export * from './types/vm.ts';
export * from './types/replicaset.ts';
export * from './types/migration.ts';
export * from './types/instancetype.ts';
export * from './types/kubevirt.ts';
export * from './kinds.ts';
export * from './crd.ts';
export * from './config.ts';
export * from './quantity.ts';
export * from './uuid.ts';
export * from './vmi-id.ts';
export * from './network.ts';
export * from './defaults.ts';
export * from './instancetype.ts';
export * from './overhead.ts';
export * from './coverage.ts';
export * from './validation/causes.ts';
export * from './validation/labels.ts';
export { checkStructure, withoutNulls, type StructureResult } from './validation/structural.ts';
export * from './validation/vmi-spec.ts';
export * from './validation/validate.ts';
