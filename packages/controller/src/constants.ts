// Names KubeVirt gives to labels, annotations, finalizers, conditions and event reasons, so that objects written by
// virt-controller read the same as KubeVirt's (reference §1.7). The handler and virt-api use several of them too;
// they belong in @kubevirt-ts/schema once that package takes them (until then they are defined here once).

export const KUBEVIRT_API_VERSION = 'kubevirt.io/v1';
export const INSTANCETYPE_API_VERSION = 'instancetype.kubevirt.io/v1beta1';

export const LABELS = {
  /** `virt-launcher` on launcher pods. */
  app: 'kubevirt.io',
  /** The VMI's UID on its launcher pods. */
  createdBy: 'kubevirt.io/created-by',
  /** Deprecated by KubeVirt, still set: the guest's host name. */
  vmName: 'vm.kubevirt.io/name',
  /** The VMI's name (hashed when too long for a label); `virtctl expose` selects by it. */
  vmiId: 'vmi.kubevirt.io/id',
  /** Set on a VMI when it is Scheduled; virt-handler selects its VMIs by it. */
  nodeName: 'kubevirt.io/nodeName',
  /** On nodes: `true` while virt-handler there is alive. Launcher pods require it. */
  schedulable: 'kubevirt.io/schedulable',
  /** kubevirt-ts: on every ControllerRevision the VM controller writes, the UID of its VM (its informer selects by it). */
  revisionVmUid: 'kubevirt-ts.dev/vm-uid',
  /** KubeVirt's labels of an instancetype/preference ControllerRevision. */
  revisionObjectGeneration: 'instancetype.kubevirt.io/object-generation',
  revisionObjectKind: 'instancetype.kubevirt.io/object-kind',
  revisionObjectName: 'instancetype.kubevirt.io/object-name',
  revisionObjectUid: 'instancetype.kubevirt.io/object-uid',
  revisionObjectVersion: 'instancetype.kubevirt.io/object-version',
} as const;

export const LAUNCHER_APP = 'virt-launcher';

export const ANNOTATIONS = {
  domain: 'kubevirt.io/domain',
  defaultContainer: 'kubectl.kubernetes.io/default-container',
  migrationTransportUnix: 'kubevirt.io/migrationTransportUnix',
  evictOnly: 'descheduler.alpha.kubernetes.io/request-evict-only',
  memoryOverheadBytes: 'kubevirt.io/memory-overhead-bytes',
  /** On nodes: when virt-handler last said it is alive (RFC 3339). */
  heartbeat: 'kubevirt.io/heartbeat',
  /** On a VM's VMI: the VM generation it was created from. */
  vmGeneration: 'kubevirt.io/vm-generation',
} as const;

export const FINALIZERS = {
  /** Keeps a VMI until its launcher pods are gone (added by virt-api's mutating webhook, and by the VMI controller
   * for VMIs created while no webhook was installed). */
  vmi: 'kubevirt.io/foregroundDeleteVirtualMachine',
  /** On a VM and on the VMIs it creates: the VM controller sees their deletion before they vanish. */
  vmController: 'kubevirt.io/virtualMachineControllerFinalize',
  /** Kubernetes' own: delete the dependents' owner references instead of the dependents. */
  orphan: 'orphan',
} as const;

/** The launcher pod's condition behind its readiness gate: False while the guest is paused. */
export const POD_CONDITION_UNPAUSED = 'kubevirt.io/virtual-machine-unpaused';

export const COMPUTE_CONTAINER = 'compute';

export const VMI_CONDITIONS = {
  ready: 'Ready',
  podScheduled: 'PodScheduled',
  synchronized: 'Synchronized',
  paused: 'Paused',
} as const;

export const VM_CONDITIONS = {
  ready: 'Ready',
  failure: 'Failure',
  paused: 'Paused',
  restartRequired: 'RestartRequired',
  manualRecoveryRequired: 'ManualRecoveryRequired',
} as const;

/** Reasons of the VMI Ready condition (KubeVirt's). */
export const READY_REASONS = {
  podNotExists: 'PodNotExists',
  podTerminating: 'PodTerminating',
  guestNotRunning: 'GuestNotRunning',
  podConditionMissing: 'PodConditionMissing',
} as const;

/** Event and condition reasons (KubeVirt's, pkg/controller/controller.go and watch/common/events.go). */
export const REASONS = {
  successfulCreate: 'SuccessfulCreate',
  failedCreate: 'FailedCreate',
  successfulDelete: 'SuccessfulDelete',
  failedDelete: 'FailedDelete',
  failedPvcNotFound: 'FailedPvcNotFound',
  errImagePull: 'ErrImagePull',
  imagePullBackOff: 'ImagePullBackOff',
  unschedulable: 'Unschedulable',
  nodeUnresponsive: 'NodeUnresponsive',
  failedPodPatch: 'FailedPodPatch',
  failedUpdate: 'FailedUpdate',
  successfulPaused: 'SuccessfulPaused',
  successfulResumed: 'SuccessfulResumed',
} as const;

/** Padding KubeVirt adds to a VMI's grace period: once for the launcher's own deadline, twice for the pod's. */
export const GRACE_PERIOD_PADDING_SECONDS = 15;

/** VM status.stateChangeRequests[].data key of a start request that wants the guest started paused. */
export const START_PAUSED_KEY = 'paused';
