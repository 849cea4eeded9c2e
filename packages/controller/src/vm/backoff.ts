// Crash-loop backoff of a VM whose VMIs keep failing before they ever run (KubeVirt's calculateStartBackoffTime
// and syncStartFailureStatus): after the n-th such failure the next start waits 10 s × n² plus up to half of that
// again at random (so many failing VMs do not retry in step), at most 5 minutes. A VMI that reached Running resets
// the count; so does a run strategy that does not restart VMIs by itself.
import type { RunStrategy, VirtualMachineStatus } from '@kubevirt-ts/schema';
import { isFinal, rfc3339, wasRunning, type VMI } from '../objects.ts';

/** KubeVirt's defaultMaxCrashLoopBackoffDelaySeconds. */
export const MAX_CRASH_LOOP_BACKOFF_SECONDS = 300;
const MIN_INTERVAL_SECONDS = 10;

/**
 * Seconds to wait before start number `failCount + 1`. `random` returns [0, 1); the jitter adds
 * floor(random × (delay/2 + 1)) seconds, as Go's rand.Intn(delay/2 + 1) does.
 */
export function startBackoffSeconds(
  failCount: number,
  maxDelaySeconds = MAX_CRASH_LOOP_BACKOFF_SECONDS,
  random: () => number = Math.random,
): number {
  const n = Math.max(1, failCount);
  const interval = Math.max(MIN_INTERVAL_SECONDS, Math.floor(maxDelaySeconds / 30));
  let delay = interval * n * n;
  delay += Math.floor(random() * (Math.floor(delay / 2) + 1));
  return Math.min(delay, maxDelaySeconds);
}

const RESTARTING: readonly RunStrategy[] = ['Always', 'RerunOnFailure', 'Once'];

export function restartsByItself(strategy: RunStrategy | undefined): boolean {
  return strategy !== undefined && RESTARTING.includes(strategy);
}

/** A VMI that reached a final phase without ever running. */
export function failedEarly(vmi: VMI | undefined): boolean {
  return vmi !== undefined && isFinal(vmi) && !wasRunning(vmi);
}

/**
 * The VM status' startFailure after looking at its VMI: cleared when the VMI ran (or the strategy does not
 * restart), counted once per VMI UID that failed early. Mutates and returns `status`.
 */
export function syncStartFailure(
  status: VirtualMachineStatus,
  vmi: VMI | undefined,
  strategy: RunStrategy | undefined,
  now: Date,
  random: () => number = Math.random,
): VirtualMachineStatus {
  if (wasRunning(vmi) || !restartsByItself(strategy)) {
    delete status.startFailure;
    return status;
  }
  if (vmi === undefined || !failedEarly(vmi)) return status;
  const uid = vmi.metadata?.uid;
  if (status.startFailure !== undefined && status.startFailure.lastFailedVMIUID === uid) return status;
  const count = (status.startFailure?.consecutiveFailCount ?? 0) + 1;
  const delay = startBackoffSeconds(count, MAX_CRASH_LOOP_BACKOFF_SECONDS, random);
  status.startFailure = {
    consecutiveFailCount: count,
    ...(uid !== undefined ? { lastFailedVMIUID: uid } : {}),
    retryAfterTimestamp: rfc3339(new Date(now.getTime() + delay * 1000)),
  };
  return status;
}
