// The kubevirt-ts stack on a devcluster, from outside: installing the chart and waiting for it, following VMs
// through the API, reading a guest's console, and what the benchmarks share (API write counts, percentiles,
// tables); import '@kubevirt-ts/devcluster/stack'.
export * from './api-writes.ts';
export * from './chart.ts';
export * from './console.ts';
export { formatTable, percentile } from './density-report.ts';
export * from './vms.ts';
