// The VMI controller: renders and creates each VMI's launcher pod, moves the VMI through Pending → Scheduling →
// Scheduled, fails it when its pod fails or vanishes, deletes its pods gracefully when it is deleted and releases
// its finalizer once they are gone (reference §2.1, KubeVirt's watch/vmi). Level-triggered: a reconcile reads the
// VMI and its pods from the caches by key and never trusts the event that woke it; expectations keep it from
// acting on a cache that has not caught up with its own creates, deletes and writes.
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import {
  describeApiError,
  isConflict,
  isNotFound,
  objectKey,
  type ReconcileResult,
} from '@kubevirt-ts/runtime';
import type { PullPolicy } from '@kubevirt-ts/schema';
import { REASONS } from '../constants.ts';
import type { ControllerKit } from '../controller-kit.ts';
import { CONFLICT_REQUEUE_MS, RetryableError } from '../controller-kit.ts';
import { Expectations } from '../expectations.ts';
import {
  controllerOf,
  currentPod,
  isControlledBy,
  isDeleting,
  isFinal,
  isPodDown,
  isPodDownOrGoingDown,
  isUnprocessed,
  type VMI,
} from '../objects.ts';
import { LauncherPodRenderError, PvcNotFoundError, renderLauncherPod } from './launcher-pod.ts';
import { desiredUnpausedCondition, nextVMI, vmiChanged, vmiPatch, type SyncError } from './lifecycle.ts';

export interface VMIControllerOptions {
  launcherImage: string;
  launcherImagePullPolicy?: PullPolicy | undefined;
}

const VMI_KIND = 'VirtualMachineInstance';

export class VMIController {
  readonly name = 'vmi';
  readonly expectations = new Expectations();
  /** Pods whose readiness-gate condition we patched, by pod key: until the cache has the patch, do not patch again. */
  readonly #podPatches = new Expectations();
  readonly #kit: ControllerKit;
  readonly #opts: VMIControllerOptions;

  constructor(kit: ControllerKit, opts: VMIControllerOptions) {
    this.#kit = kit;
    this.#opts = opts;
  }

  /** Wires the informers to `enqueue`; returns a function that unwires them. */
  watch(enqueue: (key: string) => void): () => void {
    const { vmis, pods, pvcs, vms } = this.#kit.caches;
    const onVMI = (event: 'add' | 'update' | 'delete') => (vmi: VMI) => {
      const key = objectKey(vmi);
      this.#kit.metrics.vmiObserved(vmi, event);
      if (event === 'delete') this.expectations.delete(key);
      else this.expectations.versionObserved(key, vmi.metadata?.resourceVersion);
      enqueue(key);
    };
    const podOwner = (pod: V1Pod): string | undefined => {
      const ref = controllerOf(pod);
      return ref?.kind === VMI_KIND ? `${pod.metadata?.namespace}/${ref.name}` : undefined;
    };
    const onPod = (event: 'add' | 'update' | 'delete') => (pod: V1Pod) => {
      const key = podOwner(pod);
      if (key === undefined) return;
      const podKey = objectKey(pod);
      if (event === 'add' && !isDeleting(pod)) this.expectations.creationObserved(key);
      if (event === 'delete' || isDeleting(pod)) this.expectations.deletionObserved(key, podKey);
      if (event === 'delete') this.#podPatches.delete(podKey);
      enqueue(key);
    };
    // A claim that appears lets a VMI waiting for it render its pod.
    const onPvc = (pvc: V1PersistentVolumeClaim) => {
      const ns = pvc.metadata?.namespace;
      for (const vmi of vmis.list(ns)) {
        if (vmi.spec.volumes?.some((v) => v.persistentVolumeClaim?.claimName === pvc.metadata?.name))
          enqueue(objectKey(vmi));
      }
    };
    const removers = [
      vmis.on({ add: onVMI('add'), update: onVMI('update'), delete: onVMI('delete') }),
      pods.on({ add: onPod('add'), update: onPod('update'), delete: onPod('delete') }),
      pvcs.on({ add: onPvc, update: onPvc }),
      // A VM that is gone no longer needs its finalizer on a final VMI.
      vms.on({ delete: (vm) => enqueue(objectKey(vm)) }),
    ];
    return () => removers.forEach((r) => r());
  }

  keys(): string[] {
    return this.#kit.caches.vmis.informer.keys();
  }

  #ownedPods(vmi: VMI): V1Pod[] {
    return this.#kit.caches.pods
      .list(vmi.metadata?.namespace)
      .filter((p) => isControlledBy(p, vmi.metadata?.uid));
  }

  #hasOwnerVM(vmi: VMI): boolean {
    const ref = controllerOf(vmi);
    if (ref?.kind !== 'VirtualMachine') return false;
    const vm = this.#kit.caches.vms.get(`${vmi.metadata?.namespace}/${ref.name}`);
    return vm !== undefined && vm.metadata?.uid === ref.uid;
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const kit = this.#kit;
    const vmi = kit.caches.vmis.get(key);
    if (vmi === undefined) {
      this.expectations.delete(key);
      return;
    }
    const log = kit.log.child({
      kind: VMI_KIND,
      namespace: vmi.metadata?.namespace,
      name: vmi.metadata?.name,
      uid: vmi.metadata?.uid,
    });
    if (!this.expectations.satisfied(key, vmi.metadata?.resourceVersion)) {
      log.debug('waiting for the cache to catch up with our own creates, deletes or writes');
      // An informer event will bring the key back; this is the fallback for a lost one.
      return { requeueAfter: this.expectations.remainingMs(key) };
    }
    const owned = this.#ownedPods(vmi);
    let pod = currentPod(vmi, owned);
    let podFromCache = pod !== undefined;
    let syncError: SyncError | undefined;
    let retry: string | undefined;

    if (isDeleting(vmi)) {
      await this.#deletePods(vmi, owned, log);
    } else if (!isFinal(vmi) && pod === undefined && isUnprocessed(vmi)) {
      const created = await this.#createPod(key, vmi, log);
      syncError = created.syncError;
      retry = created.retry;
      if (created.pod !== undefined) {
        pod = created.pod;
        podFromCache = false;
        owned.push(created.pod);
      }
    }

    const { vmi: next, patch } = nextVMI({
      vmi,
      pod,
      ownedPods: owned,
      syncError,
      hasOwnerVM: this.#hasOwnerVM(vmi),
      now: kit.now(),
    });
    log.debug(
      {
        phase: vmi.status?.phase ?? '',
        next: next.status?.phase,
        pods: owned.length,
        pod: pod?.metadata?.name,
        changed: vmiChanged(vmi, next),
      },
      'reconciled',
    );
    if (vmiChanged(vmi, next)) {
      if (!(await this.#writeVMI(key, vmi, next, patch))) {
        log.debug('the VMI changed meanwhile; looking again');
        return { requeueAfter: CONFLICT_REQUEUE_MS };
      }
      if (next.status?.phase !== vmi.status?.phase) {
        log.info({ from: vmi.status?.phase ?? '', to: next.status?.phase }, 'VMI phase changed');
      }
    }

    // The readiness gate: only for a pod the cache has seen (its conditions are known) that is not going away.
    const podKey = pod === undefined ? '' : objectKey(pod);
    if (
      pod !== undefined &&
      podFromCache &&
      !isPodDownOrGoingDown(pod) &&
      this.#podPatches.satisfied(podKey, pod.metadata?.resourceVersion)
    ) {
      const condition = desiredUnpausedCondition(next, pod, kit.now());
      if (condition !== undefined) {
        try {
          await kit.client.patchPodStatus(pod.metadata?.namespace ?? '', pod.metadata?.name ?? '', {
            status: { conditions: [condition] },
          });
          this.#podPatches.expectNewerVersion(podKey, pod.metadata?.resourceVersion);
        } catch (err) {
          if (!isNotFound(err))
            throw new RetryableError(
              `cannot set the ${condition.type} condition of pod ${objectKey(pod)}: ${describeApiError(err)}`,
            );
        }
      }
    }
    if (retry !== undefined) throw new RetryableError(retry);
  }

  async #createPod(
    key: string,
    vmi: VMI,
    log: ControllerKit['log'],
  ): Promise<{ pod?: V1Pod; syncError?: SyncError; retry?: string }> {
    const kit = this.#kit;
    const namespace = vmi.metadata?.namespace ?? '';
    let rendered: V1Pod;
    try {
      rendered = renderLauncherPod(vmi, {
        launcherImage: this.#opts.launcherImage,
        launcherImagePullPolicy: this.#opts.launcherImagePullPolicy,
        config: kit.config(),
        pvc: (claim) => kit.caches.pvcs.get(`${namespace}/${claim}`),
      });
    } catch (err) {
      if (err instanceof PvcNotFoundError) {
        kit.recorder.event(
          vmi,
          'Warning',
          REASONS.failedPvcNotFound,
          `failed to render launch manifest: ${err.message}`,
        );
        return { syncError: { reason: REASONS.failedPvcNotFound, message: err.message } };
      }
      if (err instanceof LauncherPodRenderError) {
        kit.recorder.event(
          vmi,
          'Warning',
          REASONS.failedCreate,
          `failed to render launch manifest: ${err.message}`,
        );
        log.warn({ error: err.message }, 'cannot render the launcher pod');
        // Nothing changes by retrying until the VMI or the configuration does; both re-enqueue it.
        return { syncError: { reason: REASONS.failedCreate, message: err.message } };
      }
      throw err;
    }
    this.expectations.expectCreations(key, 1);
    try {
      const pod = await kit.client.createPod(namespace, rendered);
      kit.recorder.event(
        vmi,
        'Normal',
        REASONS.successfulCreate,
        `Created virtual machine pod ${pod.metadata?.name ?? ''}`,
      );
      log.info({ pod: pod.metadata?.name }, 'created the launcher pod');
      return { pod };
    } catch (err) {
      this.expectations.creationObserved(key);
      const message = `failed to create virtual machine pod: ${describeApiError(err)}`;
      kit.recorder.event(
        vmi,
        'Warning',
        REASONS.failedCreate,
        `Error creating pod: ${describeApiError(err)}`,
      );
      return { syncError: { reason: REASONS.failedCreate, message }, retry: message };
    }
  }

  /** Deletes every pod of a deleted VMI gracefully (each pod's own grace period); a pod already terminating is left. */
  async #deletePods(vmi: VMI, pods: readonly V1Pod[], log: ControllerKit['log']): Promise<void> {
    const key = objectKey(vmi);
    for (const pod of pods) {
      if (isDeleting(pod) && !isPodDown(pod)) continue;
      const podKey = objectKey(pod);
      this.expectations.expectDeletions(key, [podKey]);
      try {
        await this.#kit.client.deletePod(
          pod.metadata?.namespace ?? '',
          pod.metadata?.name ?? '',
          pod.metadata?.uid,
        );
        this.#kit.recorder.event(
          vmi,
          'Normal',
          REASONS.successfulDelete,
          `Deleted virtual machine pod ${pod.metadata?.name ?? ''}`,
        );
        log.info({ pod: pod.metadata?.name }, 'deleted the launcher pod');
      } catch (err) {
        this.expectations.deletionObserved(key, podKey);
        if (isNotFound(err)) continue;
        this.#kit.recorder.event(
          vmi,
          'Warning',
          REASONS.failedDelete,
          `Failed to delete virtual machine pod ${pod.metadata?.name ?? ''}`,
        );
        throw new RetryableError(`cannot delete pod ${podKey}: ${describeApiError(err)}`);
      }
    }
  }

  /** Writes the VMI; false when it changed meanwhile (409), so this decision was made on stale state. */
  async #writeVMI(key: string, before: VMI, after: VMI, patch: boolean): Promise<boolean> {
    const client = this.#kit.client;
    const namespace = before.metadata?.namespace ?? '';
    const name = before.metadata?.name ?? '';
    try {
      if (patch) {
        const ops = vmiPatch(before, after);
        if (ops.length === 0) return true;
        await client.jsonPatchCustom(VMI_KIND, namespace, name, ops);
      } else {
        await client.replaceCustom(VMI_KIND, after);
      }
      this.expectations.expectNewerVersion(key, before.metadata?.resourceVersion);
      return true;
    } catch (err) {
      if (isNotFound(err)) return true;
      if (isConflict(err)) return false;
      throw new RetryableError(`cannot update VMI ${key}: ${describeApiError(err)}`);
    }
  }
}
