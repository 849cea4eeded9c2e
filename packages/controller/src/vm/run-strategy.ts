// What a VM's run strategy asks for, given its VMI (KubeVirt's syncRunStrategy in watch/vm/vm.go; reference §1.4):
// a pure decision, which the VM controller then carries out. The table:
//
// | strategy       | VMI exists                                              | no VMI                                        |
// |----------------|---------------------------------------------------------|-----------------------------------------------|
// | Always         | final, or a Stop request for its UID → delete it        | create (after the crash-loop backoff)         |
// | RerunOnFailure | Failed → delete + add a Start request; Succeeded or a   | create on a Start request, or when the        |
// |                | Stop request → delete                                   | strategy just changed to it (after backoff)   |
// | Manual         | Stop request for its UID → delete                       | create on a Start request                     |
// | Halted         | delete                                                  | a Start request flips the VM to Always/running|
// | Once           | nothing (a final VMI stays)                             | create                                        |
import type { RunStrategy, VirtualMachine } from '@kubevirt-ts/schema';
import { isDeleting, isFinal, timeMs, vmiPhase, type VMI } from '../objects.ts';

export type RunStrategyResult = { strategy: RunStrategy } | { error: string };

/** The VM's effective run strategy: `running: true` is Always, `running: false` (or nothing) Halted. */
export function runStrategyOf(vm: VirtualMachine): RunStrategyResult {
  const { running, runStrategy } = vm.spec;
  if (running !== undefined && runStrategy !== undefined) {
    return { error: 'spec.running and spec.runStrategy are mutually exclusive; remove spec.running' };
  }
  if (running !== undefined) return { strategy: running ? 'Always' : 'Halted' };
  return { strategy: runStrategy ?? 'Halted' };
}

export function hasStartRequest(vm: VirtualMachine): boolean {
  return vm.status?.stateChangeRequests?.[0]?.action === 'Start';
}

export function hasStartPausedRequest(vm: VirtualMachine): boolean {
  const first = vm.status?.stateChangeRequests?.[0];
  return first?.action === 'Start' && first.data?.paused === 'true';
}

/** A Stop request is for one VMI, named by its UID; one for an earlier VMI means nothing now. */
export function hasStopRequestFor(vm: VirtualMachine, vmi: VMI): boolean {
  const first = vm.status?.stateChangeRequests?.[0];
  return first?.action === 'Stop' && first.uid !== undefined && first.uid === vmi.metadata?.uid;
}

/** Seconds until the crash-loop backoff allows the next start (0: now). */
export function backoffRemainingMs(vm: VirtualMachine, now: Date): number {
  const retryAfter = timeMs(vm.status?.startFailure?.retryAfterTimestamp);
  return retryAfter === undefined ? 0 : Math.max(0, retryAfter - now.getTime());
}

export type RunStrategyAction =
  | { kind: 'none' }
  /** Create the VMI. */
  | { kind: 'start' }
  /** Wait for the crash-loop backoff, then look again. */
  | { kind: 'backoff'; afterMs: number }
  /** Delete the VMI; `requestStart`: also queue a Start request (RerunOnFailure restarting a failed VMI). */
  | { kind: 'stop'; requestStart: boolean }
  /** A Start request on a Halted VM: switch the VM to running (runStrategy Always or running: true). */
  | { kind: 'setRunning' };

export interface RunStrategyInput {
  strategy: RunStrategy;
  vm: VirtualMachine;
  /** The VM's VMI, if it has one. */
  vmi: VMI | undefined;
  now: Date;
}

function startOrBackoff(vm: VirtualMachine, now: Date): RunStrategyAction {
  const wait = backoffRemainingMs(vm, now);
  return wait > 0 ? { kind: 'backoff', afterMs: wait } : { kind: 'start' };
}

export function decideRunStrategy({ strategy, vm, vmi, now }: RunStrategyInput): RunStrategyAction {
  switch (strategy) {
    case 'Always':
      if (vmi !== undefined) {
        if (hasStopRequestFor(vm, vmi) || isFinal(vmi))
          return isDeleting(vmi) ? { kind: 'none' } : { kind: 'stop', requestStart: false };
        return { kind: 'none' };
      }
      return startOrBackoff(vm, now);
    case 'RerunOnFailure':
      if (vmi !== undefined) {
        const failed = vmiPhase(vmi) === 'Failed';
        if (!isDeleting(vmi) && (hasStopRequestFor(vm, vmi) || failed || vmiPhase(vmi) === 'Succeeded')) {
          return { kind: 'stop', requestStart: failed };
        }
        return { kind: 'none' };
      }
      // Only on a Start request, or the first time after the strategy changed to RerunOnFailure.
      if (!hasStartRequest(vm) && vm.status?.runStrategy === strategy) return { kind: 'none' };
      return startOrBackoff(vm, now);
    case 'Manual':
      if (vmi !== undefined) {
        return hasStopRequestFor(vm, vmi) && !isDeleting(vmi)
          ? { kind: 'stop', requestStart: false }
          : { kind: 'none' };
      }
      return hasStartRequest(vm) ? { kind: 'start' } : { kind: 'none' };
    case 'Halted':
      if (vmi !== undefined)
        return isDeleting(vmi) ? { kind: 'none' } : { kind: 'stop', requestStart: false };
      return hasStartRequest(vm) ? { kind: 'setRunning' } : { kind: 'none' };
    case 'Once':
      return vmi === undefined ? { kind: 'start' } : { kind: 'none' };
    case 'WaitAsReceiver':
      return { kind: 'none' };
  }
}
