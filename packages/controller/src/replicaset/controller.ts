// The VMI replica set controller (KubeVirt's watch/replicaset): keeps spec.replicas VMIs from the template alive,
// adopting orphans its selector matches and releasing VMIs it no longer matches, deleting finished VMIs so they are
// replaced, and reporting replicas, readyReplicas and the selector string the scale subresource reads (so
// `kubectl scale vmirs` works). Paused stops creating and deleting. Expectations guard creates and deletes.
import {
  describeApiError,
  isConflict,
  isNotFound,
  objectKey,
  type JsonPatchOperation,
  type ReconcileResult,
} from '@kubevirt-ts/runtime';
import type {
  Condition,
  VirtualMachineInstanceReplicaSet,
  VirtualMachineInstanceReplicaSetStatus,
} from '@kubevirt-ts/schema';
import { KUBEVIRT_API_VERSION, READY_REASONS, REASONS, VMI_CONDITIONS } from '../constants.ts';
import { CONFLICT_REQUEUE_MS, RetryableError, type ControllerKit } from '../controller-kit.ts';
import { Expectations } from '../expectations.ts';
import { compileSelector, LabelSelectorError, type Selector } from '../label-selector.ts';
import {
  controllerOf,
  controllerRef,
  hasCondition,
  isControlledBy,
  isDeleting,
  isFinal,
  jsonCopy,
  jsonEqual,
  rfc3339,
  timeMs,
  vmiPhase,
  type VMI,
} from '../objects.ts';

const RS_KIND = 'VirtualMachineInstanceReplicaSet';
const VMI_KIND = 'VirtualMachineInstance';

/** KubeVirt's burstReplicas: at most this many creates or deletes per reconcile. */
export const BURST_REPLICAS = 250;

export const RS_CONDITIONS = { replicaFailure: 'ReplicaFailure', replicaPaused: 'ReplicaPaused' } as const;

/** A VMI whose pod is terminating counts neither as active nor as finished until it is gone. */
const terminatingPod = (vmi: VMI): boolean =>
  hasCondition(vmi.status?.conditions, VMI_CONDITIONS.ready, 'False', READY_REASONS.podTerminating);

export const isActive = (vmi: VMI): boolean => !isFinal(vmi) && !isDeleting(vmi) && !terminatingPod(vmi);
export const isReady = (vmi: VMI): boolean =>
  hasCondition(vmi.status?.conditions, VMI_CONDITIONS.ready, 'True');

const PHASE_ORDER = ['', 'Pending', 'Scheduling', 'Scheduled', 'WaitingForSync', 'Unknown', 'Running'];

/**
 * Which VMIs to delete when scaling down: the least advanced first (not yet running before running), then the
 * newest, so the replicas that already serve stay.
 */
export function deletionCandidates(vmis: readonly VMI[], count: number): VMI[] {
  return [...vmis]
    .sort((a, b) => {
      const pa = PHASE_ORDER.indexOf(vmiPhase(a));
      const pb = PHASE_ORDER.indexOf(vmiPhase(b));
      if (pa !== pb) return pa - pb;
      return (timeMs(b.metadata?.creationTimestamp) ?? 0) - (timeMs(a.metadata?.creationTimestamp) ?? 0);
    })
    .slice(0, count);
}

export function wantedReplicas(rs: VirtualMachineInstanceReplicaSet): number {
  return rs.spec.replicas ?? 1;
}

/** The VMIs' generateName: the template's name or generateName, else the replica set's name (as KubeVirt). */
export function vmiBaseName(rs: VirtualMachineInstanceReplicaSet): string {
  const meta = rs.spec.template.metadata;
  return meta?.name || meta?.generateName || (rs.metadata?.name ?? '');
}

export function nextReplicaSetStatus(
  rs: VirtualMachineInstanceReplicaSet,
  active: readonly VMI[],
  selector: Selector,
  scaleError: { reason: string; message: string } | undefined,
  now: Date,
): VirtualMachineInstanceReplicaSetStatus {
  const status = jsonCopy(rs.status ?? {});
  status.replicas = active.length;
  status.readyReplicas = active.filter(isReady).length;
  status.labelSelector = selector.text;
  const conditions: Condition[] = [...(status.conditions ?? [])];
  const t = rfc3339(now);
  const paused = conditions.some((c) => c.type === RS_CONDITIONS.replicaPaused);
  if (rs.spec.paused === true && !paused) {
    conditions.push({
      type: RS_CONDITIONS.replicaPaused,
      status: 'True',
      reason: 'Paused',
      message: 'Controller got paused',
      lastTransitionTime: t,
    });
  } else if (rs.spec.paused !== true && paused) {
    conditions.splice(
      conditions.findIndex((c) => c.type === RS_CONDITIONS.replicaPaused),
      1,
    );
  }
  const failing = conditions.some((c) => c.type === RS_CONDITIONS.replicaFailure);
  if (scaleError !== undefined && !failing) {
    conditions.push({
      type: RS_CONDITIONS.replicaFailure,
      status: 'True',
      reason: scaleError.reason,
      message: scaleError.message,
      lastTransitionTime: t,
    });
  } else if (scaleError === undefined && failing) {
    conditions.splice(
      conditions.findIndex((c) => c.type === RS_CONDITIONS.replicaFailure),
      1,
    );
  }
  if (conditions.length > 0) status.conditions = conditions;
  else delete status.conditions;
  return status;
}

export class ReplicaSetController {
  readonly name = 'vmirs';
  readonly expectations = new Expectations();
  readonly self = new Expectations();
  readonly #kit: ControllerKit;

  constructor(kit: ControllerKit) {
    this.#kit = kit;
  }

  watch(enqueue: (key: string) => void): () => void {
    const { replicaSets, vmis } = this.#kit.caches;
    const rsKeysFor = (vmi: VMI): string[] => {
      const ref = controllerOf(vmi);
      if (ref !== undefined) return ref.kind === RS_KIND ? [`${vmi.metadata?.namespace}/${ref.name}`] : [];
      // An orphan: every replica set whose selector matches may adopt it.
      return replicaSets
        .list(vmi.metadata?.namespace)
        .filter((rs) => {
          try {
            return compileSelector(rs.spec.selector).matches(vmi.metadata?.labels);
          } catch {
            return false;
          }
        })
        .map((rs) => objectKey(rs));
    };
    const onVMI = (event: 'add' | 'update' | 'delete') => (vmi: VMI) => {
      for (const key of rsKeysFor(vmi)) {
        if (event === 'add' && !isDeleting(vmi)) this.expectations.creationObserved(key);
        if (event === 'delete' || isDeleting(vmi)) this.expectations.deletionObserved(key, objectKey(vmi));
        enqueue(key);
      }
    };
    const onRS = (event: 'add' | 'update' | 'delete') => (rs: VirtualMachineInstanceReplicaSet) => {
      const key = objectKey(rs);
      if (event === 'delete') {
        this.expectations.delete(key);
        this.self.delete(key);
      } else {
        this.self.versionObserved(key, rs.metadata?.resourceVersion);
      }
      enqueue(key);
    };
    const removers = [
      replicaSets.on({ add: onRS('add'), update: onRS('update'), delete: onRS('delete') }),
      vmis.on({ add: onVMI('add'), update: onVMI('update'), delete: onVMI('delete') }),
    ];
    return () => removers.forEach((r) => r());
  }

  keys(): string[] {
    return this.#kit.caches.replicaSets.informer.keys();
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const kit = this.#kit;
    const rs = kit.caches.replicaSets.get(key);
    if (rs === undefined) {
      this.expectations.delete(key);
      this.self.delete(key);
      return;
    }
    if (!this.self.satisfied(key, rs.metadata?.resourceVersion))
      return { requeueAfter: this.self.remainingMs(key) };
    const log = kit.log.child({ kind: RS_KIND, namespace: rs.metadata?.namespace, name: rs.metadata?.name });
    let selector: Selector;
    try {
      selector = compileSelector(rs.spec.selector);
    } catch (err) {
      if (err instanceof LabelSelectorError) {
        // Fixing it means editing the replica set, which enqueues it again.
        log.warn({ error: err.message }, 'invalid selector; not reconciling this replica set');
        return;
      }
      throw err;
    }
    const templateLabels = rs.spec.template.metadata?.labels;
    if (
      templateLabels === undefined ||
      Object.keys(templateLabels).length === 0 ||
      !selector.matches(templateLabels)
    ) {
      log.warn(
        'the template has no labels, or the selector does not match them; not reconciling this replica set',
      );
      return;
    }

    const vmis = await this.#claim(rs, selector, kit.caches.vmis.list(rs.metadata?.namespace));
    const finished = vmis.filter((v) => isFinal(v) && !isDeleting(v));
    const active = vmis.filter(isActive);
    let scaleError: { reason: string; message: string } | undefined;
    if (this.expectations.satisfied(key) && rs.spec.paused !== true && !isDeleting(rs)) {
      scaleError = await this.#scale(key, rs, active, log);
      if (scaleError === undefined && finished.length > 0)
        scaleError = await this.#deleteVMIs(key, rs, finished.slice(0, BURST_REPLICAS), 'finished');
    }

    const status = nextReplicaSetStatus(rs, active, selector, scaleError, kit.now());
    if (!jsonEqual(status, rs.status ?? {})) {
      try {
        await kit.client.replaceCustomStatus(RS_KIND, { ...rs, status });
        this.self.expectNewerVersion(key, rs.metadata?.resourceVersion);
      } catch (err) {
        if (isConflict(err)) return { requeueAfter: CONFLICT_REQUEUE_MS };
        if (!isNotFound(err))
          throw new RetryableError(`cannot update the status of VMIRS ${key}: ${describeApiError(err)}`);
      }
      const wasPaused = hasCondition(rs.status?.conditions, RS_CONDITIONS.replicaPaused);
      if (rs.spec.paused === true && !wasPaused)
        kit.recorder.event(rs, 'Normal', REASONS.successfulPaused, 'Paused');
      if (rs.spec.paused !== true && wasPaused)
        kit.recorder.event(rs, 'Normal', REASONS.successfulResumed, 'Resumed');
    }
    if (scaleError !== undefined) throw new RetryableError(scaleError.message);
  }

  /** The VMIs this replica set owns after adopting matching orphans and releasing owned VMIs it no longer matches. */
  async #claim(
    rs: VirtualMachineInstanceReplicaSet,
    selector: Selector,
    vmis: readonly VMI[],
  ): Promise<VMI[]> {
    const uid = rs.metadata?.uid;
    const owned: VMI[] = [];
    for (const vmi of vmis) {
      const matches = selector.matches(vmi.metadata?.labels);
      if (isControlledBy(vmi, uid)) {
        if (matches) owned.push(vmi);
        else
          await this.#setOwners(
            vmi,
            (vmi.metadata?.ownerReferences ?? []).filter((r) => r.uid !== uid),
            'released',
          );
      } else if (
        controllerOf(vmi) === undefined &&
        matches &&
        !isDeleting(rs) &&
        !isDeleting(vmi) &&
        !isFinal(vmi)
      ) {
        const ref = controllerRef(rs, KUBEVIRT_API_VERSION, RS_KIND);
        const adopted = await this.#setOwners(
          vmi,
          [...(vmi.metadata?.ownerReferences ?? []), { ...ref, controller: true, blockOwnerDeletion: true }],
          'adopted',
        );
        if (adopted !== undefined) owned.push(adopted);
      }
    }
    return owned;
  }

  async #setOwners(vmi: VMI, owners: unknown[], what: string): Promise<VMI | undefined> {
    const ops: JsonPatchOperation[] = [
      { op: 'test', path: '/metadata/resourceVersion', value: vmi.metadata?.resourceVersion },
      {
        op: vmi.metadata?.ownerReferences === undefined ? 'add' : 'replace',
        path: '/metadata/ownerReferences',
        value: owners,
      },
    ];
    try {
      const updated = await this.#kit.client.jsonPatchCustom<VMI>(
        VMI_KIND,
        vmi.metadata?.namespace ?? '',
        vmi.metadata?.name ?? '',
        ops,
      );
      this.#kit.log.info(
        { kind: VMI_KIND, namespace: vmi.metadata?.namespace, name: vmi.metadata?.name },
        `${what} a VMI`,
      );
      return updated;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new RetryableError(`cannot update the owners of VMI ${objectKey(vmi)}: ${describeApiError(err)}`);
    }
  }

  async #scale(
    key: string,
    rs: VirtualMachineInstanceReplicaSet,
    active: readonly VMI[],
    log: ControllerKit['log'],
  ) {
    const diff = active.length - wantedReplicas(rs);
    if (diff === 0) return undefined;
    const count = Math.min(Math.abs(diff), BURST_REPLICAS);
    if (diff > 0) {
      log.info({ replicas: active.length, wanted: wantedReplicas(rs) }, 'scaling down');
      return this.#deleteVMIs(key, rs, deletionCandidates(active, count), 'excess');
    }
    log.info({ replicas: active.length, wanted: wantedReplicas(rs) }, 'scaling up');
    return this.#createVMIs(key, rs, count);
  }

  async #createVMIs(key: string, rs: VirtualMachineInstanceReplicaSet, count: number) {
    const kit = this.#kit;
    const template = rs.spec.template;
    const namespace = rs.metadata?.namespace ?? '';
    this.expectations.expectCreations(key, count);
    const results = await Promise.allSettled(
      Array.from({ length: count }, async () => {
        const body: VMI = {
          apiVersion: KUBEVIRT_API_VERSION,
          kind: VMI_KIND,
          metadata: {
            generateName: vmiBaseName(rs),
            namespace,
            ...(template.metadata?.labels !== undefined ? { labels: { ...template.metadata.labels } } : {}),
            ...(template.metadata?.annotations !== undefined
              ? { annotations: { ...template.metadata.annotations } }
              : {}),
            ownerReferences: [controllerRef(rs, KUBEVIRT_API_VERSION, RS_KIND)],
          },
          spec: jsonCopy(template.spec ?? { domain: { devices: {} } }),
        };
        try {
          const created = await kit.client.createCustom(VMI_KIND, namespace, body);
          kit.recorder.event(
            rs,
            'Normal',
            REASONS.successfulCreate,
            `Started the virtual machine by creating the new virtual machine instance ${created.metadata?.name ?? ''}`,
          );
        } catch (err) {
          this.expectations.creationObserved(key);
          kit.recorder.event(
            rs,
            'Warning',
            REASONS.failedCreate,
            `Error creating virtual machine instance: ${describeApiError(err)}`,
          );
          throw err;
        }
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    return failed === undefined
      ? undefined
      : { reason: REASONS.failedCreate, message: `cannot create VMIs: ${describeApiError(failed.reason)}` };
  }

  async #deleteVMIs(
    key: string,
    rs: VirtualMachineInstanceReplicaSet,
    vmis: readonly VMI[],
    why: 'excess' | 'finished',
  ) {
    const kit = this.#kit;
    this.expectations.expectDeletions(
      key,
      vmis.map((v) => objectKey(v)),
    );
    const results = await Promise.allSettled(
      vmis.map(async (vmi) => {
        try {
          await kit.client.deleteCustom(
            VMI_KIND,
            vmi.metadata?.namespace ?? '',
            vmi.metadata?.name ?? '',
            vmi.metadata?.uid,
          );
          kit.recorder.event(
            rs,
            'Normal',
            REASONS.successfulDelete,
            why === 'finished'
              ? `Deleted finished virtual machine: ${vmi.metadata?.uid ?? ''}`
              : `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata?.uid ?? ''}`,
          );
        } catch (err) {
          this.expectations.deletionObserved(key, objectKey(vmi));
          if (isNotFound(err)) return;
          kit.recorder.event(
            rs,
            'Warning',
            REASONS.failedDelete,
            `Error deleting virtual machine instance ${vmi.metadata?.name ?? ''}: ${describeApiError(err)}`,
          );
          throw err;
        }
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    return failed === undefined
      ? undefined
      : { reason: REASONS.failedDelete, message: `cannot delete VMIs: ${describeApiError(failed.reason)}` };
  }
}
