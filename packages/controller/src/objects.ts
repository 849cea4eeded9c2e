// Small pure helpers over the objects the controllers read: VMI phases, conditions, owner references, times.
// Objects come from two sources that type timestamps differently (typed client lists give Date, watch events and
// custom-object calls give strings), so everything here accepts both and writes RFC 3339 strings.
import { isDeepStrictEqual } from 'node:util';
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import type { Condition, VirtualMachineInstance, VirtualMachineInstancePhase } from '@kubevirt-ts/schema';
import { COMPUTE_CONTAINER } from './constants.ts';

export type VMI = VirtualMachineInstance;
export type Phase = VirtualMachineInstancePhase;

/** Kubernetes timestamps: second precision, RFC 3339, UTC. */
export function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** An API timestamp (Date or string) as epoch milliseconds; undefined when absent or unparsable. */
export function timeMs(value: Date | string | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** An API timestamp as an RFC 3339 string, for copying into our own objects. */
export function timeString(value: Date | string | null | undefined): string | undefined {
  const ms = timeMs(value);
  return ms === undefined ? undefined : rfc3339(new Date(ms));
}

/** Equality of two JSON-shaped values after dropping undefined fields (what the API server would store). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalize(a), normalize(b));
}

function normalize(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}

/** A deep copy through JSON, which is what the API server would return (Dates become strings). */
export function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

// --- VMI phases ----------------------------------------------------------------------------------------------

export function vmiPhase(vmi: VMI | undefined): Phase {
  return vmi?.status?.phase ?? '';
}

/** Not yet seen by the VMI controller: `''` or Pending. */
export const isUnprocessed = (vmi: VMI): boolean => vmiPhase(vmi) === '' || vmiPhase(vmi) === 'Pending';
export const isScheduling = (vmi: VMI): boolean => vmiPhase(vmi) === 'Scheduling';
export const isScheduled = (vmi: VMI): boolean => vmiPhase(vmi) === 'Scheduled';
export const isRunning = (vmi: VMI): boolean => vmiPhase(vmi) === 'Running';
export const isFinal = (vmi: VMI | undefined): boolean =>
  vmi !== undefined && (vmiPhase(vmi) === 'Succeeded' || vmiPhase(vmi) === 'Failed');
export const isDeleting = (obj: { metadata?: { deletionTimestamp?: unknown } } | undefined): boolean =>
  obj?.metadata?.deletionTimestamp !== undefined && obj.metadata.deletionTimestamp !== null;

/** Whether the VMI ever reached Running (its phase history says so). */
export function wasRunning(vmi: VMI | undefined): boolean {
  return (vmi?.status?.phaseTransitionTimestamps ?? []).some((t) => t.phase === 'Running');
}

// --- conditions ----------------------------------------------------------------------------------------------

export type ConditionStatus = Condition['status'];

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function hasCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
  status?: ConditionStatus,
  reason?: string,
): boolean {
  const c = findCondition(conditions, type);
  return (
    c !== undefined &&
    (status === undefined || c.status === status) &&
    (reason === undefined || c.reason === reason)
  );
}

/**
 * Sets a condition in place, as KubeVirt's condition managers do: an existing condition of the type is replaced
 * only when its status or reason changes (so timestamps do not churn and a resync writes nothing).
 */
export function setCondition(conditions: Condition[], condition: Condition, compareMessage = false): void {
  const i = conditions.findIndex((c) => c.type === condition.type);
  if (i === -1) {
    conditions.push(condition);
    return;
  }
  const existing = conditions[i] as Condition;
  if (
    existing.status !== condition.status ||
    existing.reason !== condition.reason ||
    (compareMessage && existing.message !== condition.message)
  ) {
    conditions[i] = condition;
  }
}

export function removeCondition(conditions: Condition[], type: string): void {
  const i = conditions.findIndex((c) => c.type === type);
  if (i !== -1) conditions.splice(i, 1);
}

// --- owner references ----------------------------------------------------------------------------------------

export interface OwnerLike {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata?: { name?: string | undefined; uid?: string | undefined } | undefined;
}

/** A controller owner reference to `owner` (blockOwnerDeletion, so foreground deletion waits for the child). */
export function controllerRef(owner: OwnerLike, apiVersion: string, kind: string): V1OwnerReference {
  return {
    apiVersion,
    kind,
    name: owner.metadata?.name ?? '',
    uid: owner.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

type WithOwners = {
  metadata?:
    | {
        ownerReferences?:
          | readonly { kind: string; uid: string; controller?: boolean | undefined; name: string }[]
          | undefined;
      }
    | undefined;
};

/** The controller owner reference of an object, if it has one. */
export function controllerOf(
  obj: WithOwners | undefined,
): { kind: string; uid: string; name: string } | undefined {
  return obj?.metadata?.ownerReferences?.find((r) => r.controller === true);
}

export function isControlledBy(obj: WithOwners | undefined, ownerUid: string | undefined): boolean {
  return ownerUid !== undefined && ownerUid !== '' && controllerOf(obj)?.uid === ownerUid;
}

export function hasFinalizer(
  obj: { metadata?: { finalizers?: readonly string[] | undefined } | undefined },
  f: string,
): boolean {
  return obj.metadata?.finalizers?.includes(f) ?? false;
}

// --- launcher pods -------------------------------------------------------------------------------------------

function computeStatus(pod: V1Pod) {
  return pod.status?.containerStatuses?.find((s) => s.name === COMPUTE_CONTAINER);
}

/** Pod phase Succeeded or Failed. */
export function isPodDown(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/** Down, its compute container terminated, or being deleted (KubeVirt's IsPodDownOrGoingDown). */
export function isPodDownOrGoingDown(pod: V1Pod): boolean {
  return isPodDown(pod) || computeStatus(pod)?.state?.terminated !== undefined || isDeleting(pod);
}

/** Failed, its compute container failed, or being deleted (KubeVirt's IsPodFailedOrGoingDown). */
export function isPodFailedOrGoingDown(pod: V1Pod): boolean {
  const terminated = computeStatus(pod)?.state?.terminated;
  return (
    pod.status?.phase === 'Failed' ||
    (terminated !== undefined && terminated.exitCode !== 0) ||
    isDeleting(pod)
  );
}

/**
 * KubeVirt's IsPodReady: Running and not going down, the compute container started (its own Ready flag is the
 * guest's business and ignored), every other container Ready.
 */
export function isPodReady(pod: V1Pod): boolean {
  if (isPodDownOrGoingDown(pod)) return false;
  for (const s of pod.status?.containerStatuses ?? []) {
    if (s.name === COMPUTE_CONTAINER) {
      if (s.state?.running === undefined) return false;
    } else if (!s.ready) {
      return false;
    }
  }
  return pod.status?.phase === 'Running';
}

/** Phase neither Failed nor Succeeded and not every container terminated (the node controller's "alive"). */
export function isPodAlive(pod: V1Pod): boolean {
  const statuses = pod.status?.containerStatuses ?? [];
  const allTerminated = statuses.length > 0 && statuses.every((s) => s.state?.terminated !== undefined);
  return !allTerminated && !isPodDown(pod);
}

/**
 * The VMI's current launcher pod: the newest pod it controls, on its node once it has one (other pods then are
 * migration targets or leftovers).
 */
export function currentPod(vmi: VMI, ownedPods: readonly V1Pod[]): V1Pod | undefined {
  let current: V1Pod | undefined;
  const node = vmi.status?.nodeName ?? '';
  for (const pod of ownedPods) {
    if (node !== '' && pod.spec?.nodeName !== node) continue;
    if (
      current === undefined ||
      (timeMs(current.metadata?.creationTimestamp) ?? 0) < (timeMs(pod.metadata?.creationTimestamp) ?? 0)
    ) {
      current = pod;
    }
  }
  return current;
}
