// The VM's status after a sync (KubeVirt's updateStatus in watch/vm/vm.go): created, ready, runStrategy, the first
// state change request trimmed once it is done, the crash-loop record, the conditions (Ready copied from the VMI,
// Failure from the sync, the VMI's other conditions mirrored, RestartRequired), printableStatus and generations.
import type { Condition, RunStrategy, VirtualMachine, VirtualMachineStatus } from '@kubevirt-ts/schema';
import { ANNOTATIONS, VM_CONDITIONS, VMI_CONDITIONS } from '../constants.ts';
import {
  findCondition,
  isDeleting,
  isFinal,
  jsonCopy,
  jsonEqual,
  removeCondition,
  rfc3339,
  setCondition,
  type VMI,
} from '../objects.ts';
import { syncStartFailure } from './backoff.ts';
import { printableStatus } from './printable-status.ts';

export interface VMSyncError {
  reason: string;
  message: string;
}

export interface VMStatusInput {
  /** The VM as the sync left it (its status may already hold RestartRequired or a new Start request). */
  vm: VirtualMachine;
  vmi: VMI | undefined;
  strategy: RunStrategy | undefined;
  syncError: VMSyncError | undefined;
  startExpected: boolean;
  stopExpected: boolean;
  waitingForVolumeBinding?: boolean;
  /** RestartRequired to set, null to remove it, undefined to leave it as it is. */
  restartRequired?: Condition | null | undefined;
  now: Date;
  random?: () => number;
}

/** Whether the first state change request has been acted on (KubeVirt's isTrimFirstChangeRequestNeeded). */
export function firstRequestDone(vm: VirtualMachine, vmi: VMI | undefined): boolean {
  const first = vm.status?.stateChangeRequests?.[0];
  if (first === undefined) return false;
  if (first.action === 'Stop') {
    // No VMI: stopped. No UID: can never be acted on. Another UID: an earlier VMI, already gone.
    return vmi === undefined || first.uid === undefined || first.uid !== vmi.metadata?.uid;
  }
  // Start: done once a live VMI exists.
  return vmi !== undefined && !isDeleting(vmi) && !isFinal(vmi);
}

const NOT_MIRRORED: readonly string[] = [
  VM_CONDITIONS.ready,
  VM_CONDITIONS.failure,
  VM_CONDITIONS.restartRequired,
];

function syncConditions(
  conditions: Condition[],
  vmi: VMI | undefined,
  syncError: VMSyncError | undefined,
  now: string,
): void {
  const ready = findCondition(vmi?.status?.conditions, VMI_CONDITIONS.ready);
  if (vmi === undefined) {
    setCondition(conditions, {
      type: VM_CONDITIONS.ready,
      status: 'False',
      reason: 'VMINotExists',
      message: 'VMI does not exist',
      lastProbeTime: now,
      lastTransitionTime: now,
    });
  } else if (ready === undefined) {
    setCondition(conditions, {
      type: VM_CONDITIONS.ready,
      status: 'False',
      reason: 'VMIConditionMissing',
      message: 'VMI is missing the Ready condition',
      lastProbeTime: now,
      lastTransitionTime: now,
    });
  } else {
    setCondition(conditions, { ...ready, type: VM_CONDITIONS.ready });
  }
  if (syncError === undefined) removeCondition(conditions, VM_CONDITIONS.failure);
  else
    setCondition(
      conditions,
      {
        type: VM_CONDITIONS.failure,
        status: 'True',
        reason: syncError.reason,
        message: syncError.message,
        lastTransitionTime: now,
      },
      true,
    );
  if (vmi === undefined) return;
  const mirrored = new Set<string>();
  for (const c of vmi.status?.conditions ?? []) {
    if (NOT_MIRRORED.includes(c.type)) continue;
    mirrored.add(c.type);
    setCondition(conditions, { ...c });
  }
  for (const c of [...conditions]) {
    if (!NOT_MIRRORED.includes(c.type) && !mirrored.has(c.type)) removeCondition(conditions, c.type);
  }
}

/** The VM's next status; the input is not modified. */
export function nextVMStatus(input: VMStatusInput): VirtualMachineStatus {
  const { vm, vmi, strategy } = input;
  const now = rfc3339(input.now);
  const status: VirtualMachineStatus = jsonCopy(vm.status ?? {});
  status.created = vmi !== undefined;
  status.ready =
    vmi !== undefined && findCondition(vmi.status?.conditions, VMI_CONDITIONS.ready)?.status === 'True';
  // Recorded from the first time a VMI exists, so RerunOnFailure can tell a changed strategy from a stopped VM.
  if (strategy !== undefined && ((status.runStrategy ?? '') !== '' || status.created))
    status.runStrategy = strategy;
  if (firstRequestDone(vm, vmi)) {
    const rest = (status.stateChangeRequests ?? []).slice(1);
    if (rest.length > 0) status.stateChangeRequests = rest;
    else delete status.stateChangeRequests;
  }
  syncStartFailure(status, vmi, strategy, input.now, input.random);
  const conditions: Condition[] = (status.conditions ??= []);
  syncConditions(conditions, vmi, input.syncError, now);
  if (input.restartRequired === null) removeCondition(conditions, VM_CONDITIONS.restartRequired);
  else if (input.restartRequired !== undefined) setCondition(conditions, input.restartRequired);
  if (conditions.length === 0 && vm.status?.conditions === undefined) delete status.conditions;
  status.printableStatus = printableStatus({
    vm: { ...vm, status },
    vmi,
    strategy,
    startExpected: input.startExpected,
    stopExpected: input.stopExpected,
    waitingForVolumeBinding: input.waitingForVolumeBinding ?? false,
  });
  const generation = vm.metadata?.generation;
  if (generation !== undefined) status.desiredGeneration = generation;
  const observed = Number(vmi?.metadata?.annotations?.[ANNOTATIONS.vmGeneration]);
  if (vmi !== undefined && Number.isInteger(observed)) status.observedGeneration = observed;
  return status;
}

/** RestartRequired when the template (or the instancetype/preference choice) differs from the one the VMI started with. */
export function restartRequiredCondition(
  current: VirtualMachine['spec'],
  started: VirtualMachine['spec'] | undefined,
  now: Date,
): Condition | undefined {
  if (started === undefined) return undefined;
  const same =
    jsonEqual(current.template.spec ?? {}, started.template.spec ?? {}) &&
    jsonEqual(
      [
        current.instancetype?.name,
        current.instancetype?.kind,
        current.preference?.name,
        current.preference?.kind,
      ],
      [
        started.instancetype?.name,
        started.instancetype?.kind,
        started.preference?.name,
        started.preference?.kind,
      ],
    );
  if (same) return undefined;
  const t = rfc3339(now);
  return {
    type: VM_CONDITIONS.restartRequired,
    status: 'True',
    lastProbeTime: null,
    lastTransitionTime: t,
    message: 'a non-live-updatable field was changed in the template spec',
  };
}
