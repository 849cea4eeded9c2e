// Small pure helpers over VMIs: phases, conditions, grace periods, JSON equality and copies. Objects reach the handler
// as JSON from the API server (timestamps are strings), and are written back as JSON.
import { isDeepStrictEqual } from 'node:util';
import type { Condition, VirtualMachineInstance, VirtualMachineInstancePhase } from '@kubevirt-ts/schema';
import { DEFAULT_GRACE_PERIOD_SECONDS, LABELS } from './constants.ts';

export type VMI = VirtualMachineInstance;
export type Phase = VirtualMachineInstancePhase;

/** Kubernetes timestamps: second precision, RFC 3339, UTC. */
export function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export function phaseOf(vmi: VMI | undefined): Phase {
  return vmi?.status?.phase ?? '';
}

export const isFinal = (vmi: VMI | undefined): boolean =>
  phaseOf(vmi) === 'Succeeded' || phaseOf(vmi) === 'Failed';

/** The phases in which the handler owns the VMI's lifecycle (the controller owns the earlier ones). */
export const isHandlerPhase = (vmi: VMI | undefined): boolean =>
  phaseOf(vmi) === 'Scheduled' || phaseOf(vmi) === 'Running';

export const isDeleting = (vmi: VMI | undefined): boolean =>
  vmi?.metadata?.deletionTimestamp !== undefined && vmi.metadata.deletionTimestamp !== null;

/** `namespace/name`, the work-queue key. */
export function vmiKey(vmi: { metadata?: { name?: string; namespace?: string } }): string {
  return `${vmi.metadata?.namespace ?? ''}/${vmi.metadata?.name ?? ''}`;
}

/** Whether this VMI is scheduled to `node` (its label says so, and its status does not say otherwise). */
export function isOnNode(vmi: VMI, node: string): boolean {
  const label = vmi.metadata?.labels?.[LABELS.nodeName];
  const status = vmi.status?.nodeName;
  return label === node && (status === undefined || status === '' || status === node);
}

/** The launcher pods of this VMI on `node`: pod UIDs from status.activePods. */
export function activePodsOnNode(vmi: VMI, node: string): string[] {
  return Object.entries(vmi.status?.activePods ?? {})
    .filter(([, n]) => n === node)
    .map(([uid]) => uid)
    .sort();
}

/** The grace period a shutdown of this VMI gets: spec.terminationGracePeriodSeconds, else KubeVirt's 30 s. */
export function gracePeriodSeconds(vmi: VMI): number {
  const spec = vmi.spec.terminationGracePeriodSeconds;
  if (typeof spec === 'number' && spec >= 0) return Math.floor(spec);
  return DEFAULT_GRACE_PERIOD_SECONDS;
}

/** ACPI is on unless the VMI turns it off (as the launcher's converter renders it). */
export function acpiEnabled(vmi: VMI): boolean {
  return vmi.spec.domain.features?.acpi?.enabled !== false;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * Puts `wanted` in place of the condition of its type. When type, status and reason are unchanged the old entry
 * (and its timestamps) stays, so a condition reported again is not a change.
 */
export function putCondition(conditions: Condition[], wanted: Condition): void {
  const i = conditions.findIndex((c) => c.type === wanted.type);
  if (i === -1) {
    conditions.push(wanted);
    return;
  }
  const old = conditions[i]!;
  if (old.status === wanted.status && old.reason === wanted.reason && old.message === wanted.message) return;
  conditions[i] = {
    ...wanted,
    lastTransitionTime: old.status === wanted.status ? old.lastTransitionTime : wanted.lastTransitionTime,
  };
}

export function removeCondition(conditions: Condition[], type: string): void {
  const i = conditions.findIndex((c) => c.type === type);
  if (i !== -1) conditions.splice(i, 1);
}

/** Equality of two JSON-shaped values after dropping undefined fields (what the API server would store). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(normalize(a), normalize(b));
}

function normalize(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}

export function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
