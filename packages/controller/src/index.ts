// @kubevirt-ts/controller: virt-controller's controllers as a library (main.ts runs them under leader election;
// tests and the benchmark run them in-process), and the pure functions they are built from.
export * from './constants.ts';
export {
  Controllers,
  DEFAULT_WORKERS,
  leaderReadinessCheck,
  type ControllersOptions,
  type WorkerCounts,
} from './controllers.ts';
export {
  ClusterConfigSource,
  activeKubeVirt,
  degradedCondition,
  kubevirtStatusPatch,
  DEGRADED,
  type ClusterConfigOptions,
} from './cluster-config.ts';
export { Expectations, EXPECTATIONS_TTL_MS } from './expectations.ts';
export { KubeClient, WriteCounter, writesBetween, FIELD_MANAGER, type WriteVerb } from './kube.ts';
export { ApiEventRecorder, MemoryEventRecorder, type EventRecorder, type EventType } from './events.ts';
export { ControllerMetrics, InstrumentedQueue, PHASE_TRANSITION_BUCKETS } from './metrics.ts';
export { compileSelector, LabelSelectorError, type Selector } from './label-selector.ts';
export {
  renderLauncherPod,
  vmiIdLabel,
  launcherHostname,
  defaultPullPolicy,
  LauncherPodRenderError,
  PvcNotFoundError,
  LAUNCHER_PATHS,
  DEVICE_RESOURCES,
  type LauncherPodOptions,
} from './vmi/launcher-pod.ts';
export {
  nextVMI,
  vmiPatch,
  vmiChanged,
  desiredUnpausedCondition,
  type LifecycleInput,
  type SyncError,
} from './vmi/lifecycle.ts';
export { VMIController, type VMIControllerOptions } from './vmi/controller.ts';
export {
  decideRunStrategy,
  runStrategyOf,
  hasStartRequest,
  hasStopRequestFor,
  type RunStrategyAction,
  type RunStrategyInput,
} from './vm/run-strategy.ts';
export { printableStatus, PRINTABLE_STATUS_ORDER, type PrintableStatusInput } from './vm/printable-status.ts';
export { startBackoffSeconds, syncStartFailure, MAX_CRASH_LOOP_BACKOFF_SECONDS } from './vm/backoff.ts';
export { nextVMStatus, restartRequiredCondition, firstRequestDone } from './vm/status.ts';
export { vmiFromVM } from './vm/vmi-from-vm.ts';
export { VMController } from './vm/controller.ts';
export {
  ReplicaSetController,
  deletionCandidates,
  nextReplicaSetStatus,
  BURST_REPLICAS,
} from './replicaset/controller.ts';
export {
  NodeController,
  nodeUnresponsive,
  vmisWithoutLivePods,
  HEARTBEAT_TIMEOUT_MS,
  type NodeControllerOptions,
} from './node/controller.ts';
