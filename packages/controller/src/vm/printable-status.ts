// The VM's printableStatus, the STATUS column of `kubectl get vm`: a list of predicates evaluated in KubeVirt's order,
// first match wins (setPrintableStatus in watch/vm/vm.go; reference §1.4). Several can be true at once (Running and
// Migrating, Paused and Terminating); the order is the precedence.
import type { PrintableStatus, RunStrategy, VirtualMachine } from '@kubevirt-ts/schema';
import { REASONS, VMI_CONDITIONS } from '../constants.ts';
import {
  hasCondition,
  isDeleting,
  isFinal,
  isRunning,
  isScheduled,
  isScheduling,
  isUnprocessed,
  vmiPhase,
  type VMI,
} from '../objects.ts';
import { restartsByItself } from './backoff.ts';

export interface PrintableStatusInput {
  vm: VirtualMachine;
  vmi: VMI | undefined;
  strategy: RunStrategy | undefined;
  /** The controller created a VMI it has not observed yet. */
  startExpected: boolean;
  /** The controller deleted a VMI it has not observed going away yet. */
  stopExpected: boolean;
  /** The VM is set to start and a PVC it uses is not bound yet. */
  waitingForVolumeBinding?: boolean;
}

type Predicate = (i: PrintableStatusInput) => boolean;

const conds = (vmi: VMI | undefined) => vmi?.status?.conditions;
const synchronizedFalse = (vmi: VMI | undefined, reason: string) =>
  hasCondition(conds(vmi), VMI_CONDITIONS.synchronized, 'False', reason);
const paused = (vmi: VMI) => hasCondition(conds(vmi), VMI_CONDITIONS.paused, 'True');

function migrating(vmi: VMI): boolean {
  const m = vmi.status?.migrationState;
  return (
    m !== undefined &&
    m.startTimestamp !== undefined &&
    m.endTimestamp === undefined &&
    m.completed !== true &&
    m.failed !== true
  );
}

/** In KubeVirt's order of evaluation. */
export const PRINTABLE_STATUS_ORDER: readonly (readonly [PrintableStatus, Predicate])[] = [
  ['Terminating', ({ vm }) => isDeleting(vm)],
  [
    'Stopping',
    ({ vmi, stopExpected }) => vmi !== undefined && !isFinal(vmi) && (isDeleting(vmi) || stopExpected),
  ],
  ['Migrating', ({ vmi }) => vmi !== undefined && migrating(vmi)],
  ['Paused', ({ vmi }) => vmi !== undefined && isRunning(vmi) && paused(vmi)],
  ['Running', ({ vmi }) => vmi !== undefined && isRunning(vmi) && !paused(vmi)],
  ['ErrorPvcNotFound', ({ vmi }) => synchronizedFalse(vmi, REASONS.failedPvcNotFound)],
  // DataVolumes need CDI, which kubevirt-ts does not support yet.
  ['DataVolumeError', () => false],
  [
    'ErrorUnschedulable',
    ({ vmi }) => hasCondition(conds(vmi), VMI_CONDITIONS.podScheduled, 'False', REASONS.unschedulable),
  ],
  ['Provisioning', () => false],
  ['WaitingForVolumeBinding', ({ waitingForVolumeBinding }) => waitingForVolumeBinding === true],
  ['ErrImagePull', ({ vmi }) => synchronizedFalse(vmi, REASONS.errImagePull)],
  ['ImagePullBackOff', ({ vmi }) => synchronizedFalse(vmi, REASONS.imagePullBackOff)],
  [
    'Starting',
    ({ vmi, startExpected }) =>
      vmi === undefined ? startExpected : isUnprocessed(vmi) || isScheduling(vmi) || isScheduled(vmi),
  ],
  [
    'CrashLoopBackOff',
    ({ vm, vmi, strategy, startExpected }) =>
      !(vmi !== undefined && !isFinal(vmi)) &&
      !startExpected &&
      (vm.status?.startFailure?.consecutiveFailCount ?? 0) > 0 &&
      restartsByItself(strategy),
  ],
  ['Stopped', ({ vmi, startExpected }) => (vmi !== undefined ? isFinal(vmi) : !startExpected)],
  [
    'WaitingForReceiver',
    ({ vmi, strategy }) =>
      (vmi === undefined || vmiPhase(vmi) === 'WaitingForSync') && strategy === 'WaitAsReceiver',
  ],
];

export function printableStatus(input: PrintableStatusInput): PrintableStatus {
  for (const [status, predicate] of PRINTABLE_STATUS_ORDER) if (predicate(input)) return status;
  return 'Unknown';
}
