// What the handler does to a launcher's domain, decided from cached state alone (level-triggered, KubeVirt's
// virt-handler `execute`/`sync`, reference §3.4 and §4.3): keep the domain in step with the VMI while it should run,
// shut it down gracefully when the VMI is deleted or its pod is going away, kill it when the grace period is over,
// undefine it once it is off and the VMI is final, and forget the launcher when nothing is left.
import type { Domain } from './domain.ts';
import { isDomainActive } from './domain.ts';
import type { LauncherObservation } from './status.ts';
import { gracePeriodSeconds, isDeleting, isFinal, isHandlerPhase, type VMI } from './vmi.ts';

export type Action =
  /** Nothing to do now. */
  | { kind: 'none'; why: string }
  /** Look again after a while (the launcher is starting, or a shutdown is under way). */
  | { kind: 'wait'; afterMs: number; why: string }
  /** Converge the domain on the VMI (define, start, resume). */
  | { kind: 'sync' }
  /**
   * ACPI shutdown with a grace period. `graceSeconds` undefined: the VMI is gone, the launcher uses the grace
   * period recorded in the domain.
   */
  | { kind: 'shutdown'; graceSeconds: number | undefined; why: string }
  /** The grace period is over: destroy the domain. */
  | { kind: 'kill'; why: string }
  /** The domain is off and its VMI final or gone: undefine it (the launcher then exits). */
  | { kind: 'delete'; why: string }
  /** No domain is left (or nobody is left to ask): drop the launcher connection and the checkpoint. */
  | { kind: 'forget'; why: string };

export interface DecideInput {
  /** The VMI the launcher runs, or undefined when it is gone (or was replaced by one with another UID). */
  vmi: VMI | undefined;
  launcher: LauncherObservation;
  now: number;
  /** How often a shutdown in progress is looked at again (KubeVirt: at most every 5 s). */
  shutdownPollMs?: number;
  /** How long to wait for a launcher that is still starting. */
  initializingPollMs?: number;
}

/** When the grace period of a shutdown in progress ends, from the launcher's record in the domain. */
export function shutdownDeadline(domain: Domain): number | undefined {
  const g = domain.spec.gracePeriod;
  if (g?.deletionTimestamp === undefined) return undefined;
  const started = Date.parse(g.deletionTimestamp);
  if (Number.isNaN(started)) return undefined;
  return started + g.deletionGracePeriodSeconds * 1000;
}

export function decide(input: DecideInput): Action {
  const { vmi, launcher, now } = input;
  const shutdownPollMs = input.shutdownPollMs ?? 5_000;
  const deleting = vmi === undefined || isDeleting(vmi);
  const final = vmi !== undefined && isFinal(vmi);

  if (launcher.state === 'gone') return { kind: 'forget', why: 'the launcher pod is gone' };
  if (launcher.state === 'unresponsive') {
    // Nothing can be asked of it; the VMI is Failed (status) and the controller deletes the pod. Keep the record
    // while the VMI is still running on paper, so the status write happens first.
    return deleting || final
      ? { kind: 'forget', why: 'the launcher is unresponsive and its VMI is done' }
      : { kind: 'none', why: 'the launcher is unresponsive' };
  }
  if (launcher.state === 'initializing') {
    if (deleting || final)
      return { kind: 'forget', why: 'the VMI is done before its launcher took commands' };
    return { kind: 'wait', afterMs: input.initializingPollMs ?? 1_000, why: 'the launcher is starting' };
  }
  if (!launcher.domainKnown) return { kind: 'wait', afterMs: 1_000, why: 'waiting for the domain state' };

  const domain = launcher.domain?.metadata.deletionTimestamp === undefined ? launcher.domain : undefined;
  const podGoingAway = domain?.spec.gracePeriod?.markedForGracefulShutdown === true;

  if (deleting || final || podGoingAway) {
    if (domain === undefined) return { kind: 'forget', why: 'no domain is left' };
    if (isDomainActive(domain)) {
      const deadline = shutdownDeadline(domain);
      if (deadline === undefined) {
        return {
          kind: 'shutdown',
          graceSeconds: vmi === undefined ? undefined : gracePeriodSeconds(vmi),
          why: deleting ? 'the VMI is being deleted' : final ? 'the VMI is final' : 'its pod is going away',
        };
      }
      if (now >= deadline) return { kind: 'kill', why: 'the grace period is over' };
      return {
        kind: 'wait',
        afterMs: Math.max(100, Math.min(shutdownPollMs, deadline - now)),
        why: 'waiting for the guest to power off',
      };
    }
    // Off. A VMI that still exists and is not final first gets its final phase (the status pass does that); the
    // domain is undefined on the next pass, once the VMI records how it ended.
    if (vmi !== undefined && !final && isHandlerPhase(vmi)) {
      return { kind: 'none', why: 'the guest is off; the VMI is moved to a final phase first' };
    }
    return { kind: 'delete', why: deleting ? 'the VMI is gone' : 'the VMI is final' };
  }

  if (!isHandlerPhase(vmi)) return { kind: 'none', why: `the VMI is ${vmi.status?.phase ?? 'new'}` };
  if (domain !== undefined && domain.status.status === 'Shutoff' && domain.status.reason !== 'Unknown') {
    return { kind: 'none', why: 'the guest stopped; the VMI is moved to a final phase' };
  }
  if (domain?.status.status === 'Crashed') {
    return { kind: 'none', why: 'the guest crashed; the VMI is moved to a final phase' };
  }
  if (domain !== undefined && shutdownDeadline(domain) !== undefined) {
    // A shutdown began (e.g. before a handler restart) and is not undone by a Sync.
    return { kind: 'wait', afterMs: shutdownPollMs, why: 'a graceful shutdown is in progress' };
  }
  return { kind: 'sync' };
}
