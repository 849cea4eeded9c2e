// What `start`, `stop` and `restart` do to a VirtualMachine, as pure decisions (KubeVirt's virt-api
// rest/lifecycle.go; reference §5.1): a JSON patch of the VM's run strategy, or of its status.stateChangeRequests
// for the VM controller to act on, each guarded by a `test` op on the value it was computed from (optimistic
// concurrency), and optionally a shorter terminationGracePeriodSeconds on the running VMI first. A request that
// makes no sense for the VM's state is refused with 409 and the reason.
//
// | run strategy   | start                                   | stop                                  | restart            |
// |----------------|-----------------------------------------|---------------------------------------|--------------------|
// | Halted         | runStrategy → Always (paused: Start req)| only a shorter grace: Stop request    | 409                |
// | Manual         | Start request (Stop+Start if VMI final) | Stop request for the VMI              | Stop + Start       |
// | RerunOnFailure | Start request (Stop+Start if Succeeded) | Stop request for the VMI              | Stop + Start       |
// | Always         | 409                                     | runStrategy → Halted                  | Stop + Start       |
// | Once           | 409                                     | runStrategy → Halted                  | 409                |
//
// Where this differs from KubeVirt, on purpose: every check runs before anything is written (KubeVirt patches the
// VMI's grace period before some of its checks); a second start/stop while one is pending is a 409, not a 500;
// WaitAsReceiver answers 409 instead of a silent 202; a missing field is added rather than replaced.
import type { JsonPatchOperation } from '@kubevirt-ts/runtime';
import type { RunStrategy, VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { conflict, internalError } from './errors.ts';
import type { RestartOptions, StartOptions, StopOptions } from './request.ts';

export type StateChangeRequest = NonNullable<
  NonNullable<VirtualMachine['status']>['stateChangeRequests']
>[number];

export interface VmPatch {
  /** `spec`: the VM itself (run strategy); `status`: the status subresource (state change requests). */
  target: 'spec' | 'status';
  ops: JsonPatchOperation[];
}

export interface GracePatch {
  ops: JsonPatchOperation[];
  /** Ops that put the previous value back, if the VM patch after it fails. */
  rollback: JsonPatchOperation[];
}

export interface StateChangePlan {
  /** Applied to the VMI first: its new terminationGracePeriodSeconds. */
  vmiGrace?: GracePatch;
  vm: VmPatch;
}

/** The message KubeVirt answers with when a failed volume migration left the VM in need of manual recovery. */
export const MANUAL_RECOVERY_REQUIRED =
  'VM recovery required: Volume migration failed, leaving some volumes pointing to non-consistent targets; ' +
  'manual intervention is needed to reassign them to their original volumes.';
const VM_NOT_RUNNING = 'VM is not running';

/** The VM's run strategy as KubeVirt reads it: `running: true` is Always, nothing or `running: false` Halted. */
export function runStrategyOf(vm: VirtualMachine): RunStrategy {
  const { running, runStrategy } = vm.spec;
  if (running !== undefined && runStrategy !== undefined) {
    throw internalError(
      `VirtualMachine ${vm.metadata?.name ?? ''} sets both spec.running and spec.runStrategy, which are ` +
        'mutually exclusive; remove spec.running',
    );
  }
  if (running !== undefined) return running ? 'Always' : 'Halted';
  return runStrategy ?? 'Halted';
}

export function isFinal(vmi: VirtualMachineInstance): boolean {
  const phase = vmi.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

function hasCondition(vm: VirtualMachine, type: string): boolean {
  return (vm.status?.conditions ?? []).some((c) => c.type === type && c.status === 'True');
}

function nameOf(vm: VirtualMachine): string {
  return vm.metadata?.name ?? '';
}

/** Patch that sets the VM running (Always / `running: true`) or halted, tested against the current value. */
export function runningPatch(vm: VirtualMachine, running: boolean): VmPatch {
  if (vm.spec.runStrategy !== undefined) {
    return {
      target: 'spec',
      ops: [
        { op: 'test', path: '/spec/runStrategy', value: vm.spec.runStrategy },
        { op: 'replace', path: '/spec/runStrategy', value: running ? 'Always' : 'Halted' },
      ],
    };
  }
  return {
    target: 'spec',
    ops: [
      { op: 'test', path: '/spec/running', value: vm.spec.running ?? null },
      // `add` sets a member whether or not it exists; `replace` would fail on a VM without spec.running.
      { op: 'add', path: '/spec/running', value: running },
    ],
  };
}

/**
 * Patch of status.stateChangeRequests, guarded by a test of the current list: it is added when there is none, a
 * single Stop replaces whatever is pending, anything else while a request is pending is refused.
 */
export function changeRequestPatch(vm: VirtualMachine, changes: StateChangeRequest[]): VmPatch {
  const ops: JsonPatchOperation[] = [];
  const status = vm.status;
  const current = status?.stateChangeRequests ?? [];
  if (status === undefined || Object.keys(status).length === 0) {
    // No status at all yet: write one, unless the controller wrote one meanwhile (the test fails then).
    ops.push(
      { op: 'test', path: '/status', value: status ?? null },
      { op: 'add', path: '/status', value: { stateChangeRequests: changes } },
    );
    return { target: 'status', ops };
  }
  ops.push({ op: 'test', path: '/status/stateChangeRequests', value: status.stateChangeRequests ?? null });
  if (current.length === 0) {
    ops.push({ op: 'add', path: '/status/stateChangeRequests', value: changes });
  } else if (changes.length === 1 && changes[0]?.action === 'Stop') {
    ops.push({ op: 'replace', path: '/status/stateChangeRequests', value: changes });
  } else {
    throw conflict(
      'virtualmachine',
      nameOf(vm),
      `unable to complete request: stop/start already underway (pending: ${current
        .map((r) => r.action)
        .join(', ')}); wait for the VM controller to act on it, then retry`,
    );
  }
  if (status.startFailure !== undefined) ops.push({ op: 'remove', path: '/status/startFailure' });
  return { target: 'status', ops };
}

/** The VMI's terminationGracePeriodSeconds set to `seconds`, tested against its current value. */
export function gracePatch(vmi: VirtualMachineInstance, seconds: number): GracePatch {
  const path = '/spec/terminationGracePeriodSeconds';
  const previous = vmi.spec.terminationGracePeriodSeconds;
  return {
    ops: [
      { op: 'test', path, value: previous ?? null },
      { op: 'add', path, value: seconds },
    ],
    rollback:
      previous === undefined
        ? [
            { op: 'test', path, value: seconds },
            { op: 'remove', path },
          ]
        : [
            { op: 'test', path, value: seconds },
            { op: 'replace', path, value: previous },
          ],
  };
}

export function planStart(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  opts: StartOptions,
): StateChangePlan {
  const name = nameOf(vm);
  const phase = vmi?.status?.phase;
  if (vmi !== undefined && !isFinal(vmi) && phase !== 'Unknown' && phase !== undefined && phase !== '') {
    throw conflict('virtualmachine', name, 'VM is already running');
  }
  if (hasCondition(vm, 'ManualRecoveryRequired')) {
    throw conflict('virtualmachine', name, MANUAL_RECOVERY_REQUIRED);
  }
  const start: StateChangeRequest = opts.paused
    ? { action: 'Start', data: { paused: 'true' } }
    : { action: 'Start' };
  const strategy = runStrategyOf(vm);
  switch (strategy) {
    case 'Halted':
      // A paused start needs the controller to see the request (it starts the VMI paused and flips the run
      // strategy itself), unless the template starts paused anyway.
      if (opts.paused && vm.spec.template.spec?.startStrategy !== 'Paused') {
        return { vm: changeRequestPatch(vm, [start]) };
      }
      return { vm: runningPatch(vm, true) };
    case 'Manual':
    case 'RerunOnFailure': {
      if (strategy === 'RerunOnFailure' && vmi?.status?.phase === 'Failed') {
        throw conflict(
          'virtualmachine',
          name,
          'RerunOnFailure does not support starting VM from failed state; the VM controller restarts it',
        );
      }
      const needsStop =
        vmi !== undefined &&
        ((strategy === 'RerunOnFailure' && vmi.status?.phase === 'Succeeded') ||
          (strategy === 'Manual' && isFinal(vmi)));
      const changes: StateChangeRequest[] = needsStop
        ? [{ action: 'Stop', uid: vmi.metadata?.uid ?? '' }, start]
        : [start];
      return { vm: changeRequestPatch(vm, changes) };
    }
    case 'Always':
    case 'Once':
      throw conflict(
        'virtualmachine',
        name,
        `${strategy} does not support manual start requests (the VM controller keeps it running)`,
      );
    case 'WaitAsReceiver':
      throw conflict('virtualmachine', name, 'WaitAsReceiver does not support manual start requests');
  }
}

export function planStop(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  opts: StopOptions,
): StateChangePlan {
  const name = nameOf(vm);
  const strategy = runStrategyOf(vm);
  const live = vmi !== undefined && !isFinal(vmi);
  const grace = live && opts.gracePeriod !== undefined ? gracePatch(vmi, opts.gracePeriod) : undefined;
  const withGrace = (plan: VmPatch): StateChangePlan =>
    grace === undefined ? { vm: plan } : { vmiGrace: grace, vm: plan };
  const stopRequest = (): VmPatch =>
    changeRequestPatch(vm, [{ action: 'Stop', uid: vmi?.metadata?.uid ?? '' }]);
  switch (strategy) {
    case 'Halted': {
      if (!live) throw conflict('virtualmachine', name, VM_NOT_RUNNING);
      // The VM is already stopping; only a shorter grace period (a forced stop) adds anything.
      const current = vmi.spec.terminationGracePeriodSeconds;
      if (opts.gracePeriod === undefined || (current !== undefined && opts.gracePeriod >= current)) {
        throw conflict(
          'virtualmachine',
          name,
          'Halted only supports manual stop requests with a shorter graceperiod (the VM is already stopping)',
        );
      }
      return withGrace(stopRequest());
    }
    case 'Manual':
    case 'RerunOnFailure':
      if (!live) throw conflict('virtualmachine', name, VM_NOT_RUNNING);
      // The controller stops the VMI and the run strategy stays as it is.
      return withGrace(stopRequest());
    case 'Always':
    case 'Once':
      return withGrace(runningPatch(vm, false));
    case 'WaitAsReceiver':
      throw conflict('virtualmachine', name, 'WaitAsReceiver does not support manual stop requests');
  }
}

export function planRestart(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  opts: RestartOptions,
): StateChangePlan {
  const name = nameOf(vm);
  if (hasCondition(vm, 'VolumesChange')) throw conflict('virtualmachine', name, MANUAL_RECOVERY_REQUIRED);
  const strategy = runStrategyOf(vm);
  if (strategy === 'Halted' || strategy === 'Once' || strategy === 'WaitAsReceiver') {
    throw conflict(
      'virtualmachine',
      name,
      `RunStrategy ${strategy} does not support manual restart requests`,
    );
  }
  if (vmi === undefined) throw conflict('virtualmachine', name, VM_NOT_RUNNING);
  const vmPatch = changeRequestPatch(vm, [
    { action: 'Stop', uid: vmi.metadata?.uid ?? '' },
    { action: 'Start' },
  ]);
  // A forced restart: the shortest grace period that still lets the handler shut the guest down promptly.
  return opts.gracePeriodSeconds === 0 ? { vmiGrace: gracePatch(vmi, 1), vm: vmPatch } : { vm: vmPatch };
}
