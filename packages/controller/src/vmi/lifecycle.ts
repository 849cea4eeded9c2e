// The VMI's lifecycle as the VMI controller owns it (reference §2.1), as pure functions: from the VMI and its
// launcher pods to the VMI's next status (KubeVirt's pkg/virt-controller/watch/vmi/lifecycle.go, updateStatus).
// The controller owns Pending → Scheduling → Scheduled, fails a VMI whose pod fails or vanishes, and releases the
// finalizer once a final VMI has no pods left. Running and the final phases of a live guest are virt-handler's.
import type { V1Pod } from '@kubernetes/client-node';
import type { Condition } from '@kubevirt-ts/schema';
import { jsonPointer, type JsonPatchOperation } from '@kubevirt-ts/runtime';
import {
  COMPUTE_CONTAINER,
  FINALIZERS,
  LABELS,
  POD_CONDITION_UNPAUSED,
  READY_REASONS,
  REASONS,
  VMI_CONDITIONS,
} from '../constants.ts';
import {
  hasCondition,
  isDeleting,
  isFinal,
  isPodDownOrGoingDown,
  isPodReady,
  isRunning,
  isScheduled,
  isScheduling,
  isUnprocessed,
  jsonCopy,
  jsonEqual,
  removeCondition,
  rfc3339,
  setCondition,
  timeString,
  vmiPhase,
  type VMI,
} from '../objects.ts';

/** Why a sync step failed, reported in the VMI's Synchronized condition (KubeVirt's SyncError). */
export interface SyncError {
  reason: string;
  message: string;
}

export interface LifecycleInput {
  vmi: VMI;
  /** The current launcher pod (objects.currentPod), after this sync's create if it made one. */
  pod: V1Pod | undefined;
  /** Every pod the VMI controls. */
  ownedPods: readonly V1Pod[];
  syncError?: SyncError | undefined;
  /** Whether the VM named by the VMI's controller reference still exists. */
  hasOwnerVM: boolean;
  now: Date;
}

export interface LifecycleResult {
  vmi: VMI;
  /** The VMI is in a phase virt-handler also writes (Scheduled, Running): write only what changed, with tests. */
  patch: boolean;
}

function readyCondition(vmi: VMI, pod: V1Pod | undefined, now: string): Condition {
  const base = {
    type: VMI_CONDITIONS.ready,
    status: 'False' as const,
    lastProbeTime: now,
    lastTransitionTime: now,
  };
  if (pod === undefined) {
    return {
      ...base,
      reason: READY_REASONS.podNotExists,
      message: 'virt-launcher pod has not yet been scheduled',
    };
  }
  if (isPodDownOrGoingDown(pod)) {
    return { ...base, reason: READY_REASONS.podTerminating, message: 'virt-launcher pod is terminating' };
  }
  if (!isRunning(vmi)) {
    return { ...base, reason: READY_REASONS.guestNotRunning, message: 'Guest VM is not reported as running' };
  }
  const podReady = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (podReady === undefined) {
    return {
      ...base,
      reason: READY_REASONS.podConditionMissing,
      message: 'virt-launcher pod is missing the Ready condition',
    };
  }
  const c: Condition = { type: VMI_CONDITIONS.ready, status: podReady.status as Condition['status'] };
  if (podReady.reason !== undefined) c.reason = podReady.reason;
  if (podReady.message !== undefined) c.message = podReady.message;
  const probe = timeString(podReady.lastProbeTime);
  const transition = timeString(podReady.lastTransitionTime);
  c.lastProbeTime = probe ?? null;
  c.lastTransitionTime = transition ?? null;
  return c;
}

/** The pod's PodScheduled condition, when it is False (KubeVirt mirrors only that: Unschedulable and its message). */
function podScheduledFalse(pod: V1Pod): Condition | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
  if (c === undefined || c.status !== 'False') return undefined;
  const out: Condition = { type: VMI_CONDITIONS.podScheduled, status: 'False' };
  if (c.reason !== undefined) out.reason = c.reason;
  if (c.message !== undefined) out.message = c.message;
  out.lastProbeTime = timeString(c.lastProbeTime) ?? null;
  out.lastTransitionTime = timeString(c.lastTransitionTime) ?? null;
  return out;
}

/** ErrImagePull / ImagePullBackOff of any container, as a sync error (the VM shows it as its printableStatus). */
export function imagePullError(pod: V1Pod): SyncError | undefined {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const s of statuses) {
    const reason = s.state?.waiting?.reason;
    if (reason === REASONS.errImagePull || reason === REASONS.imagePullBackOff) {
      return { reason, message: s.state?.waiting?.message ?? reason };
    }
  }
  return undefined;
}

function removeFinalizer(vmi: VMI, finalizer: string): void {
  const list = vmi.metadata?.finalizers;
  if (list === undefined) return;
  const kept = list.filter((f) => f !== finalizer);
  if (kept.length !== list.length) vmi.metadata!.finalizers = kept;
}

/** KubeVirt's CheckFailure: a Synchronized=False condition while a sync step fails, none otherwise. */
function checkFailure(conditions: Condition[], syncError: SyncError | undefined, now: string): void {
  if (syncError === undefined) {
    removeCondition(conditions, VMI_CONDITIONS.synchronized);
    return;
  }
  if (hasCondition(conditions, VMI_CONDITIONS.synchronized, 'False', syncError.reason)) return;
  removeCondition(conditions, VMI_CONDITIONS.synchronized);
  conditions.push({
    type: VMI_CONDITIONS.synchronized,
    status: 'False',
    reason: syncError.reason,
    message: syncError.message,
    lastTransitionTime: now,
  });
}

/** The VMI as the VMI controller wants it after one sync; the input is not modified. */
export function nextVMI(input: LifecycleInput): LifecycleResult {
  const { vmi, pod, ownedPods, hasOwnerVM } = input;
  let syncError = input.syncError;
  const now = rfc3339(input.now);
  const next = jsonCopy(vmi);
  const metadata = (next.metadata ??= {});
  const status = (next.status ??= {});
  const conditions: Condition[] = (status.conditions ??= []);

  // The webhook adds the finalizer on create; a VMI created while it was not installed gets it here, so its pods
  // are always gone before it is.
  if (!isDeleting(vmi) && !isFinal(vmi) && !(metadata.finalizers ?? []).includes(FINALIZERS.vmi)) {
    metadata.finalizers = [...(metadata.finalizers ?? []), FINALIZERS.vmi];
  }

  if (ownedPods.length > 0 || status.activePods !== undefined) {
    const active: Record<string, string> = {};
    for (const p of ownedPods) if (p.metadata?.uid) active[p.metadata.uid] = p.spec?.nodeName ?? '';
    status.activePods = active;
  }

  setCondition(conditions, readyCondition(vmi, pod, now));
  if (pod !== undefined) {
    const image = pod.spec?.containers.find((c) => c.name === COMPUTE_CONTAINER)?.image;
    if (image !== undefined) status.launcherContainerImageVersion = image;
  }

  if (isUnprocessed(vmi)) {
    if (pod !== undefined) status.phase = 'Scheduling';
    else if (isDeleting(vmi)) status.phase = 'Failed';
    else {
      status.phase = 'Pending';
      if (syncError?.reason === REASONS.failedPvcNotFound) {
        removeCondition(conditions, VMI_CONDITIONS.podScheduled);
        conditions.push({
          type: VMI_CONDITIONS.podScheduled,
          status: 'False',
          reason: REASONS.unschedulable,
          message: syncError.message,
        });
      }
    }
  } else if (isScheduling(vmi)) {
    if (pod === undefined) {
      status.phase = 'Failed';
    } else {
      status.qosClass = pod.status?.qosClass;
      if (status.qosClass === undefined) delete status.qosClass;
      const scheduled = podScheduledFalse(pod);
      if (scheduled !== undefined) setCondition(conditions, scheduled, true);
      else removeCondition(conditions, VMI_CONDITIONS.podScheduled);
      syncError = imagePullError(pod) ?? syncError;
      if (isPodReady(pod) && !isDeleting(vmi)) {
        status.phase = 'Scheduled';
        const node = pod.spec?.nodeName ?? '';
        metadata.labels = { ...metadata.labels, [LABELS.nodeName]: node };
        status.nodeName = node;
        status.migrationTransport = 'Unix';
      } else if (isPodDownOrGoingDown(pod)) {
        status.phase = 'Failed';
      }
    }
  } else if (isFinal(vmi)) {
    if (ownedPods.length === 0) {
      removeFinalizer(next, FINALIZERS.vmi);
      delete status.launcherContainerImageVersion;
    }
    if (!hasOwnerVM) removeFinalizer(next, FINALIZERS.vmController);
  } else if (isRunning(vmi) || isScheduled(vmi)) {
    // Once scheduled, the guest's end is virt-handler's to report (Succeeded or Failed, from the domain); the
    // controller steps in only when the pod is gone. A pod that failed while the handler is down is the node
    // controller's case (NodeUnresponsive), as in KubeVirt.
    if (pod === undefined) status.phase = 'Failed';
  } else if (vmiPhase(vmi) === 'WaitingForSync' && isDeleting(vmi)) {
    removeFinalizer(next, FINALIZERS.vmi);
    if (!hasOwnerVM) removeFinalizer(next, FINALIZERS.vmController);
  }

  const patch = isRunning(vmi) || isScheduled(vmi);
  if (!patch) checkFailure(conditions, syncError, now);
  if (status.phase !== vmiPhase(vmi)) {
    const transitions = (status.phaseTransitionTimestamps ??= []);
    if (!transitions.some((t) => t.phase === status.phase)) {
      transitions.push({ phase: status.phase, phaseTransitionTimestamp: now });
    }
  }
  if (conditions.length === 0 && vmi.status?.conditions === undefined) delete status.conditions;
  return { vmi: next, patch };
}

/** Whether nextVMI changed anything that is written (status, labels, finalizers, annotations). */
export function vmiChanged(before: VMI, after: VMI): boolean {
  return (
    !jsonEqual(before.status ?? {}, after.status ?? {}) ||
    !jsonEqual(before.metadata?.finalizers ?? [], after.metadata?.finalizers ?? []) ||
    !jsonEqual(before.metadata?.labels ?? {}, after.metadata?.labels ?? {}) ||
    !jsonEqual(before.metadata?.annotations ?? {}, after.metadata?.annotations ?? {})
  );
}

/**
 * The JSON patch KubeVirt sends for a VMI that virt-handler also writes: only the changed fields, each guarded by a
 * `test` of the value this decision was based on, so a concurrent write by the handler makes it fail (409/422) and
 * the controller retries from fresh state instead of overwriting.
 */
export function vmiPatch(before: VMI, after: VMI): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  const guarded = (path: string, old: unknown, value: unknown): void => {
    if (jsonEqual(old, value)) return;
    if (old === undefined) ops.push({ op: 'add', path, value });
    else ops.push({ op: 'test', path, value: old }, { op: 'replace', path, value });
  };
  if (before.status === undefined) {
    ops.push({ op: 'add', path: '/status', value: after.status ?? {} });
  } else {
    const b = before.status;
    const a = after.status ?? {};
    for (const field of [
      'conditions',
      'activePods',
      'phase',
      'phaseTransitionTimestamps',
      'launcherContainerImageVersion',
    ] as const) {
      if (a[field] === undefined && b[field] !== undefined) {
        ops.push(
          { op: 'test', path: jsonPointer('status', field), value: b[field] },
          { op: 'remove', path: jsonPointer('status', field) },
        );
      } else {
        guarded(jsonPointer('status', field), b[field], a[field]);
      }
    }
  }
  guarded('/metadata/labels', before.metadata?.labels, after.metadata?.labels);
  guarded('/metadata/finalizers', before.metadata?.finalizers, after.metadata?.finalizers);
  return ops;
}

/**
 * What the launcher pod's readiness-gate condition should say, when it says something else: False while the VMI
 * has Paused=True (so a paused guest leaves its Services' endpoints), True otherwise.
 */
export function desiredUnpausedCondition(
  vmi: VMI,
  pod: V1Pod,
  now: Date,
):
  | {
      type: string;
      status: 'True' | 'False';
      reason: string;
      message: string;
      lastProbeTime: string;
      lastTransitionTime: string;
    }
  | undefined {
  const paused = hasCondition(vmi.status?.conditions, VMI_CONDITIONS.paused, 'True');
  const want = paused ? 'False' : 'True';
  const current = pod.status?.conditions?.find((c) => c.type === POD_CONDITION_UNPAUSED);
  if (current?.status === want) return undefined;
  const t = rfc3339(now);
  return paused
    ? {
        type: POD_CONDITION_UNPAUSED,
        status: 'False',
        reason: 'Paused',
        message: 'the virtual machine is paused',
        lastProbeTime: t,
        lastTransitionTime: t,
      }
    : {
        type: POD_CONDITION_UNPAUSED,
        status: 'True',
        reason: 'NotPaused',
        message: 'the virtual machine is not paused',
        lastProbeTime: t,
        lastTransitionTime: t,
      };
}
