// The kubevirt-ts stack on a devcluster, from outside: installing the chart and waiting for it, following VMs
// through the API, and reading a guest's console. Used by `devcluster demo`, the e2e suite (test/e2e) and the
// density benchmark; import '@kubevirt-ts/devcluster/stack'.
export * from './chart.ts';
export * from './console.ts';
export * from './vms.ts';
