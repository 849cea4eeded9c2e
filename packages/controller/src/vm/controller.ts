// The VM controller (KubeVirt's watch/vm; reference §1.4 and §2.3): applies the run strategy by creating and
// deleting the VM's VMI, acts on start/stop requests, stores the instancetype/preference in ControllerRevisions
// and expands them into the VMI it creates, backs off VMIs that keep failing before they run, and reports
// created, ready, conditions and printableStatus. A deleted VM deletes its VMI first and goes only when the VMI is
// gone. Every write has a precondition: JSON patches carry `test` ops, status PUTs carry the resourceVersion.
import type { V1ControllerRevision } from '@kubernetes/client-node';
import {
  describeApiError,
  isAlreadyExists,
  isConflict,
  isNotFound,
  jsonPointer,
  objectKey,
  type JsonPatchOperation,
  type Logger,
  type ReconcileResult,
} from '@kubevirt-ts/runtime';
import {
  expandTemplate,
  type Condition,
  instancetypeKind,
  preferenceKind,
  type InstancetypeSpec,
  type PreferenceSpec,
  type RunStrategy,
  type VirtualMachine,
  type VirtualMachineStatus,
} from '@kubevirt-ts/schema';
import { FINALIZERS, REASONS } from '../constants.ts';
import { CONFLICT_REQUEUE_MS, RetryableError, type ControllerKit } from '../controller-kit.ts';
import { Expectations } from '../expectations.ts';
import {
  controllerOf,
  hasFinalizer,
  isControlledBy,
  isDeleting,
  isFinal,
  jsonCopy,
  jsonEqual,
  vmiPhase,
  type VMI,
} from '../objects.ts';
import {
  instancetypeRevision,
  specOfInstancetypeRevision,
  specOfVMRevision,
  vmRevision,
  vmRevisionName,
  vmRevisionPrefix,
  type InstancetypeObject,
} from './revisions.ts';
import { decideRunStrategy, runStrategyOf } from './run-strategy.ts';
import { nextVMStatus, restartRequiredCondition, type VMSyncError } from './status.ts';
import { vmiFromVM } from './vmi-from-vm.ts';

const VM_KIND = 'VirtualMachine';
const VMI_KIND = 'VirtualMachineInstance';

type StatusRef = NonNullable<VirtualMachineStatus['instancetypeRef']>;

export class VMController {
  readonly name = 'vm';
  /** VMIs created or deleted and not observed yet, by VM key. */
  readonly children = new Expectations();
  /** Our own writes to the VM, until the cache has them. */
  readonly self = new Expectations();
  readonly #kit: ControllerKit;

  constructor(kit: ControllerKit) {
    this.#kit = kit;
  }

  watch(enqueue: (key: string) => void): () => void {
    const { vms, vmis, pvcs } = this.#kit.caches;
    const vmKeyOf = (vmi: VMI): string | undefined => {
      const ref = controllerOf(vmi);
      return ref?.kind === VM_KIND ? `${vmi.metadata?.namespace}/${ref.name}` : undefined;
    };
    const onVMI = (event: 'add' | 'update' | 'delete') => (vmi: VMI) => {
      // An orphan VMI of a VM's name is the VM's to adopt.
      const key = vmKeyOf(vmi) ?? (controllerOf(vmi) === undefined ? objectKey(vmi) : undefined);
      if (key === undefined) return;
      if (event === 'add' && !isDeleting(vmi)) this.children.creationObserved(key);
      if (event === 'delete' || isDeleting(vmi)) this.children.deletionObserved(key, objectKey(vmi));
      enqueue(key);
    };
    const onVM = (event: 'add' | 'update' | 'delete') => (vm: VirtualMachine) => {
      const key = objectKey(vm);
      if (event === 'delete') {
        this.children.delete(key);
        this.self.delete(key);
      } else {
        this.self.versionObserved(key, vm.metadata?.resourceVersion);
      }
      enqueue(key);
    };
    const onPvc = (pvc: { metadata?: { namespace?: string; name?: string } }) => {
      for (const vm of vms.list(pvc.metadata?.namespace)) {
        if (
          vm.spec.template.spec?.volumes?.some(
            (v) => v.persistentVolumeClaim?.claimName === pvc.metadata?.name,
          )
        )
          enqueue(objectKey(vm));
      }
    };
    const removers = [
      vms.on({ add: onVM('add'), update: onVM('update'), delete: onVM('delete') }),
      vmis.on({ add: onVMI('add'), update: onVMI('update'), delete: onVMI('delete') }),
      pvcs.on({ add: onPvc, update: onPvc, delete: onPvc }),
    ];
    return () => removers.forEach((r) => r());
  }

  keys(): string[] {
    return this.#kit.caches.vms.informer.keys();
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const kit = this.#kit;
    const cached = kit.caches.vms.get(key);
    if (cached === undefined) {
      this.children.delete(key);
      this.self.delete(key);
      return;
    }
    const log = kit.log.child({
      kind: VM_KIND,
      namespace: cached.metadata?.namespace,
      name: cached.metadata?.name,
      uid: cached.metadata?.uid,
    });
    if (!this.self.satisfied(key, cached.metadata?.resourceVersion)) {
      log.debug('waiting for the cache to catch up with our own writes');
      return { requeueAfter: this.self.remainingMs(key) };
    }
    const original = jsonCopy(cached);
    const ctx: SyncContext = {
      key,
      vm: jsonCopy(cached),
      vmi: undefined,
      log,
      syncError: undefined,
      requeueAfter: undefined,
      retry: undefined,
      restartRequired: undefined,
      started: false,
    };

    const candidate = kit.caches.vmis.get(key);
    if (candidate !== undefined && isControlledBy(candidate, cached.metadata?.uid)) ctx.vmi = candidate;
    else if (candidate !== undefined && controllerOf(candidate) === undefined && !isDeleting(cached))
      ctx.vmi = await this.#adopt(ctx, candidate);

    const strategy = runStrategyOf(ctx.vm);
    const synced = this.children.satisfied(key);
    if (synced)
      await this.#sync(
        ctx,
        'strategy' in strategy ? strategy.strategy : undefined,
        'error' in strategy ? strategy.error : undefined,
      );
    log.debug(
      {
        vmi: ctx.vmi?.metadata?.uid,
        phase: ctx.vmi?.status?.phase,
        synced,
        syncError: ctx.syncError?.message,
      },
      'reconciled',
    );

    const status = nextVMStatus({
      vm: ctx.vm,
      vmi: ctx.vmi,
      strategy: 'strategy' in strategy ? strategy.strategy : undefined,
      syncError: ctx.syncError,
      // A VMI this reconcile created may already have been observed (its watch event can beat the create's answer).
      startExpected: this.children.pendingCreations(key) > 0 || ctx.started,
      stopExpected: this.children.pendingDeletions(key) > 0,
      waitingForVolumeBinding: this.#waitingForVolumeBinding(ctx.vm),
      restartRequired: ctx.restartRequired,
      now: kit.now(),
    });
    // Compared with what the server has now (the sync's own status patches included), so nothing is written twice.
    if (!jsonEqual(status, ctx.vm.status ?? {}) && !(await this.#writeStatus(ctx, status))) {
      log.debug('the VM changed meanwhile; looking again');
      return { requeueAfter: CONFLICT_REQUEUE_MS };
    }
    if (status.printableStatus !== original.status?.printableStatus) {
      log.info({ from: original.status?.printableStatus, to: status.printableStatus }, 'VM status changed');
    }

    // Now that the VM recorded what the final VMI had to say, the VMI may go.
    const vmi = ctx.vmi;
    if (
      vmi !== undefined &&
      (isFinal(vmi) || (vmiPhase(vmi) === 'WaitingForSync' && isDeleting(vmi))) &&
      hasFinalizer(vmi, FINALIZERS.vmController)
    ) {
      await this.#removeFinalizer(VMI_KIND, vmi, FINALIZERS.vmController);
    }
    if (ctx.retry !== undefined) throw new RetryableError(ctx.retry);
    if (ctx.requeueAfter !== undefined) return { requeueAfter: ctx.requeueAfter };
  }

  async #sync(
    ctx: SyncContext,
    strategy: RunStrategy | undefined,
    strategyError: string | undefined,
  ): Promise<void> {
    const { vm } = ctx;
    if (isDeleting(vm)) {
      if (ctx.vmi === undefined || hasFinalizer(vm, FINALIZERS.orphan)) {
        if (hasFinalizer(vm, FINALIZERS.vmController)) {
          ctx.vm = await this.#removeFinalizer(VM_KIND, vm, FINALIZERS.vmController);
        }
      } else {
        await this.#stopVMI(ctx);
      }
      return;
    }
    if (!hasFinalizer(vm, FINALIZERS.vmController)) ctx.vm = await this.#addFinalizer(vm);
    if (strategy === undefined) {
      ctx.syncError = { reason: REASONS.failedCreate, message: strategyError ?? 'no run strategy' };
      return;
    }
    if (!(await this.#syncInstancetypeRevisions(ctx))) return;

    const action = decideRunStrategy({ strategy, vm: ctx.vm, vmi: ctx.vmi, now: this.#kit.now() });
    switch (action.kind) {
      case 'start':
        await this.#startVMI(ctx);
        break;
      case 'stop':
        await this.#stopVMI(ctx);
        if (action.requestStart && ctx.syncError === undefined) await this.#addStartRequest(ctx);
        break;
      case 'backoff':
        ctx.log.info(
          { waitMs: action.afterMs },
          'delaying the start: the VMI failed before it ever ran (crash-loop backoff)',
        );
        ctx.requeueAfter = action.afterMs;
        break;
      case 'setRunning':
        await this.#setRunning(ctx);
        break;
      case 'none':
        break;
    }

    // RestartRequired: the template changed under a live VMI; nothing to restart without one.
    const live = ctx.vmi !== undefined && !isFinal(ctx.vmi) && !isDeleting(ctx.vmi);
    if (!live || action.kind === 'start' || action.kind === 'stop') {
      ctx.restartRequired = null;
    } else {
      const revName = ctx.vmi?.status?.virtualMachineRevisionName;
      const started = revName
        ? specOfVMRevision(this.#kit.caches.revisions.get(`${vm.metadata?.namespace}/${revName}`))
        : undefined;
      if (started !== undefined)
        ctx.restartRequired = restartRequiredCondition(ctx.vm.spec, started, this.#kit.now()) ?? null;
    }
  }

  #waitingForVolumeBinding(vm: VirtualMachine): boolean {
    const ns = vm.metadata?.namespace;
    return (vm.spec.template.spec?.volumes ?? []).some((v) => {
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim === undefined) return false;
      return this.#kit.caches.pvcs.get(`${ns}/${claim}`)?.status?.phase === 'Pending';
    });
  }

  // --- writes ---------------------------------------------------------------------------------------------------

  async #patchVM(
    ctx: { key: string },
    vm: VirtualMachine,
    ops: JsonPatchOperation[],
    status = false,
  ): Promise<VirtualMachine> {
    const updated = await this.#kit.client.jsonPatchCustom<VirtualMachine>(
      VM_KIND,
      vm.metadata?.namespace ?? '',
      vm.metadata?.name ?? '',
      ops,
      status,
    );
    this.self.expectNewerVersion(ctx.key, vm.metadata?.resourceVersion);
    return updated;
  }

  async #addFinalizer(vm: VirtualMachine): Promise<VirtualMachine> {
    const key = objectKey(vm);
    const finalizers = vm.metadata?.finalizers;
    const ops: JsonPatchOperation[] =
      finalizers === undefined
        ? [
            { op: 'test', path: '/metadata/resourceVersion', value: vm.metadata?.resourceVersion },
            { op: 'add', path: '/metadata/finalizers', value: [FINALIZERS.vmController] },
          ]
        : [
            { op: 'test', path: '/metadata/finalizers', value: finalizers },
            { op: 'add', path: '/metadata/finalizers/-', value: FINALIZERS.vmController },
          ];
    try {
      return await this.#patchVM({ key }, vm, ops);
    } catch (err) {
      throw new RetryableError(`cannot add the finalizer to VM ${key}: ${describeApiError(err)}`);
    }
  }

  async #removeFinalizer<T extends VirtualMachine | VMI>(
    kind: typeof VM_KIND | typeof VMI_KIND,
    obj: T,
    finalizer: string,
  ): Promise<T> {
    const key = objectKey(obj);
    const index = (obj.metadata?.finalizers ?? []).indexOf(finalizer);
    if (index === -1) return obj;
    // Only our entry is tested and removed, so another controller removing its own finalizer meanwhile (the VMI
    // controller does, at the same moment) does not make this fail.
    const path = jsonPointer('metadata', 'finalizers', index);
    const ops: JsonPatchOperation[] = [
      { op: 'test', path, value: finalizer },
      { op: 'remove', path },
    ];
    try {
      const updated = await this.#kit.client.jsonPatchCustom<T>(
        kind,
        obj.metadata?.namespace ?? '',
        obj.metadata?.name ?? '',
        ops,
      );
      if (kind === VM_KIND) this.self.expectNewerVersion(key, obj.metadata?.resourceVersion);
      return updated;
    } catch (err) {
      if (isNotFound(err)) return obj;
      throw new RetryableError(
        `cannot remove finalizer ${finalizer} from ${kind} ${key}: ${describeApiError(err)}`,
      );
    }
  }

  async #adopt(ctx: SyncContext, vmi: VMI): Promise<VMI | undefined> {
    const ops: JsonPatchOperation[] = [
      { op: 'test', path: '/metadata/resourceVersion', value: vmi.metadata?.resourceVersion },
      {
        op: vmi.metadata?.ownerReferences === undefined ? 'add' : 'replace',
        path: '/metadata/ownerReferences',
        value: [
          ...(vmi.metadata?.ownerReferences ?? []),
          {
            apiVersion: 'kubevirt.io/v1',
            kind: VM_KIND,
            name: ctx.vm.metadata?.name,
            uid: ctx.vm.metadata?.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
    ];
    try {
      const adopted = await this.#kit.client.jsonPatchCustom<VMI>(
        VMI_KIND,
        vmi.metadata?.namespace ?? '',
        vmi.metadata?.name ?? '',
        ops,
      );
      ctx.log.info({ vmi: vmi.metadata?.name }, 'adopted an orphaned VMI');
      return adopted;
    } catch (err) {
      throw new RetryableError(`cannot adopt VMI ${objectKey(vmi)}: ${describeApiError(err)}`);
    }
  }

  /** Writes the status; false when the VM changed meanwhile (409), so the status was computed from stale state. */
  async #writeStatus(ctx: SyncContext, status: VirtualMachineStatus): Promise<boolean> {
    const body = { ...ctx.vm, status };
    try {
      ctx.vm = await this.#kit.client.replaceCustomStatus(VM_KIND, body);
      this.self.expectNewerVersion(ctx.key, body.metadata?.resourceVersion);
      return true;
    } catch (err) {
      if (isNotFound(err)) return true;
      if (isConflict(err)) return false;
      throw new RetryableError(`cannot update the status of VM ${ctx.key}: ${describeApiError(err)}`);
    }
  }

  async #addStartRequest(ctx: SyncContext): Promise<void> {
    const requests = ctx.vm.status?.stateChangeRequests;
    const ops: JsonPatchOperation[] =
      ctx.vm.status === undefined
        ? [{ op: 'add', path: '/status', value: { stateChangeRequests: [{ action: 'Start' }] } }]
        : requests === undefined
          ? [{ op: 'add', path: '/status/stateChangeRequests', value: [{ action: 'Start' }] }]
          : [
              { op: 'test', path: '/status/stateChangeRequests', value: requests },
              { op: 'add', path: '/status/stateChangeRequests/-', value: { action: 'Start' } },
            ];
    try {
      ctx.vm = await this.#patchVM(ctx, ctx.vm, ops, true);
    } catch (err) {
      ctx.syncError = {
        reason: REASONS.failedDelete,
        message: `failed to patch VM with start action: ${describeApiError(err)}`,
      };
      ctx.retry = ctx.syncError.message;
    }
  }

  async #setRunning(ctx: SyncContext): Promise<void> {
    const vm = ctx.vm;
    const ops: JsonPatchOperation[] =
      vm.spec.runStrategy !== undefined
        ? [
            { op: 'test', path: '/spec/runStrategy', value: vm.spec.runStrategy },
            { op: 'replace', path: '/spec/runStrategy', value: 'Always' },
          ]
        : vm.spec.running !== undefined
          ? [
              { op: 'test', path: '/spec/running', value: vm.spec.running },
              { op: 'replace', path: '/spec/running', value: true },
            ]
          : [
              { op: 'test', path: '/metadata/resourceVersion', value: vm.metadata?.resourceVersion },
              { op: 'add', path: '/spec/runStrategy', value: 'Always' },
            ];
    try {
      ctx.vm = await this.#patchVM(ctx, vm, ops);
      ctx.log.info('start request on a halted VM: switched it to run');
    } catch (err) {
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: `cannot switch the VM to running: ${describeApiError(err)}`,
      };
      ctx.retry = ctx.syncError.message;
    }
  }

  async #stopVMI(ctx: SyncContext): Promise<void> {
    const vmi = ctx.vmi;
    if (vmi === undefined || isDeleting(vmi)) return;
    const vmiKey = objectKey(vmi);
    this.children.expectDeletions(ctx.key, [vmiKey]);
    try {
      await this.#kit.client.deleteCustom(
        VMI_KIND,
        vmi.metadata?.namespace ?? '',
        vmi.metadata?.name ?? '',
        vmi.metadata?.uid,
      );
    } catch (err) {
      this.children.deletionObserved(ctx.key, vmiKey);
      if (isNotFound(err)) return;
      this.#kit.recorder.event(
        ctx.vm,
        'Warning',
        REASONS.failedDelete,
        `Error deleting virtual machine instance ${vmi.metadata?.name ?? ''}: ${describeApiError(err)}`,
      );
      ctx.syncError = {
        reason: REASONS.failedDelete,
        message: `failure while deleting the VMI: ${describeApiError(err)}`,
      };
      ctx.retry = ctx.syncError.message;
      return;
    }
    this.#kit.recorder.event(
      ctx.vm,
      'Normal',
      REASONS.successfulDelete,
      `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata?.uid ?? ''}`,
    );
    ctx.log.info({ vmi: vmi.metadata?.name, phase: vmiPhase(vmi) }, 'stopped the VM by deleting its VMI');
  }

  async #startVMI(ctx: SyncContext): Promise<void> {
    const kit = this.#kit;
    const vm = ctx.vm;
    const template = vm.spec.template;
    if (template.spec === undefined) {
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: 'spec.template.spec is missing; the VM has nothing to start',
      };
      return;
    }
    let revisionName: string;
    try {
      revisionName = await this.#storeVMRevision(vm);
    } catch (err) {
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: `cannot store the VM revision: ${describeApiError(err)}`,
      };
      ctx.retry = ctx.syncError.message;
      return;
    }
    const expansion = await this.#expansionInput(vm);
    if ('error' in expansion) {
      ctx.syncError = { reason: REASONS.failedCreate, message: expansion.error };
      ctx.retry = expansion.retry ? expansion.error : undefined;
      return;
    }
    const { template: expanded, causes } = expandTemplate(
      { metadata: template.metadata, spec: template.spec },
      expansion,
    );
    if (causes.length > 0) {
      const message = `cannot apply the instancetype: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}`;
      kit.recorder.event(
        vm,
        'Warning',
        REASONS.failedCreate,
        `Error creating virtual machine instance: ${message}`,
      );
      ctx.syncError = { reason: REASONS.failedCreate, message };
      return;
    }
    const body = vmiFromVM(vm, expanded, revisionName);
    this.children.expectCreations(ctx.key, 1);
    try {
      const created = await kit.client.createCustom(VMI_KIND, vm.metadata?.namespace ?? '', body);
      ctx.started = true;
      kit.recorder.event(
        vm,
        'Normal',
        REASONS.successfulCreate,
        `Started the virtual machine by creating the new virtual machine instance ${created.metadata?.name ?? ''}`,
      );
      ctx.log.info(
        { vmi: created.metadata?.name, uid: created.metadata?.uid },
        'started the VM by creating its VMI',
      );
    } catch (err) {
      this.children.creationObserved(ctx.key);
      kit.recorder.event(
        vm,
        'Warning',
        REASONS.failedCreate,
        `Error creating virtual machine instance: ${describeApiError(err)}`,
      );
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: `failed to create the VMI: ${describeApiError(err)}`,
      };
      // A VMI of this name that is not ours will not go away by retrying fast; the VMI informer brings the key back.
      ctx.retry = isAlreadyExists(err) ? undefined : ctx.syncError.message;
    }
  }

  /** Creates the revision of the VM's spec at this start (one per generation; older ones are deleted). */
  async #storeVMRevision(vm: VirtualMachine): Promise<string> {
    const kit = this.#kit;
    const uid = vm.metadata?.uid ?? '';
    const generation = vm.metadata?.generation ?? 0;
    const name = vmRevisionName(uid, generation);
    let exists = false;
    for (const rev of kit.caches.revisions.list(vm.metadata?.namespace)) {
      const revName = rev.metadata?.name ?? '';
      if (!revName.startsWith(`${vmRevisionPrefix(uid)}-`)) continue;
      if (revName === name) {
        exists = true;
        continue;
      }
      try {
        await kit.client.deleteControllerRevision(vm.metadata?.namespace ?? '', revName, rev.metadata?.uid);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (!exists) {
      try {
        await kit.client.createControllerRevision(vm.metadata?.namespace ?? '', vmRevision(vm));
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    return name;
  }

  // --- instancetypes and preferences ----------------------------------------------------------------------------

  /**
   * Makes sure the instancetype and preference the VM names are stored in revisions and referenced from its status.
   * False when the sync must stop here (an error was recorded in ctx).
   */
  async #syncInstancetypeRevisions(ctx: SyncContext): Promise<boolean> {
    const vm = ctx.vm;
    const status = vm.status ?? {};
    const ops: JsonPatchOperation[] = [];
    for (const which of ['instancetype', 'preference'] as const) {
      const matcher = vm.spec[which];
      const field = which === 'instancetype' ? 'instancetypeRef' : 'preferenceRef';
      const current = status[field];
      if (matcher === undefined || (matcher.name ?? '') === '') {
        if (current !== undefined)
          ops.push(
            { op: 'test', path: jsonPointer('status', field), value: current },
            { op: 'remove', path: jsonPointer('status', field) },
          );
        continue;
      }
      const ref: StatusRef = jsonCopy(current ?? {});
      if (ref.name !== matcher.name || (matcher.kind !== undefined && ref.kind !== matcher.kind)) {
        ref.name = matcher.name;
        if (matcher.kind !== undefined) ref.kind = matcher.kind;
        delete ref.controllerRevisionRef;
      }
      if (ref.controllerRevisionRef?.name === undefined) {
        const stored = await this.#storeInstancetype(ctx, which);
        if (stored === undefined) return false;
        ref.controllerRevisionRef = { name: stored };
      }
      if (!jsonEqual(ref, current)) {
        if (vm.status === undefined) continue;
        ops.push(
          current === undefined
            ? { op: 'add', path: jsonPointer('status', field), value: ref }
            : { op: 'replace', path: jsonPointer('status', field), value: ref },
        );
      }
      status[field] = ref;
    }
    if (
      vm.status === undefined &&
      (status.instancetypeRef !== undefined || status.preferenceRef !== undefined)
    ) {
      ops.push({ op: 'add', path: '/status', value: status });
    }
    if (ops.length === 0) return true;
    try {
      ctx.vm = await this.#patchVM(
        ctx,
        vm,
        [{ op: 'test', path: '/metadata/resourceVersion', value: vm.metadata?.resourceVersion }, ...ops],
        true,
      );
      return true;
    } catch (err) {
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: `cannot record the instancetype revision: ${describeApiError(err)}`,
      };
      ctx.retry = ctx.syncError.message;
      return false;
    }
  }

  /** Copies the referenced object into a revision; returns its name, or undefined after recording an error. */
  async #storeInstancetype(
    ctx: SyncContext,
    which: 'instancetype' | 'preference',
  ): Promise<string | undefined> {
    const vm = ctx.vm;
    const matcher = vm.spec[which]!;
    const kind = which === 'instancetype' ? instancetypeKind(matcher) : preferenceKind(matcher);
    if (kind === undefined) {
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: `spec.${which}.kind ${JSON.stringify(matcher.kind)} is not a kind of ${which}`,
      };
      return undefined;
    }
    const namespaced = kind === 'VirtualMachineInstancetype' || kind === 'VirtualMachinePreference';
    let obj: InstancetypeObject;
    try {
      obj = await this.#kit.client.getCustom<InstancetypeObject>(
        kind,
        namespaced ? vm.metadata?.namespace : undefined,
        matcher.name ?? '',
      );
    } catch (err) {
      const where = namespaced ? ` in namespace ${vm.metadata?.namespace ?? ''}` : '';
      ctx.syncError = {
        reason: REASONS.failedCreate,
        message: isNotFound(err)
          ? `${kind} ${JSON.stringify(matcher.name)} not found${where}; create it or fix spec.${which}`
          : `cannot read ${kind} ${matcher.name ?? ''}: ${describeApiError(err)}`,
      };
      ctx.retry = isNotFound(err) ? undefined : ctx.syncError.message;
      return undefined;
    }
    if (which === 'instancetype' && vm.spec.template.spec !== undefined) {
      // The instancetype may have changed since the webhook checked the VM against it.
      const { causes } = expandTemplate(
        { metadata: vm.spec.template.metadata, spec: vm.spec.template.spec },
        { instancetype: obj.spec as InstancetypeSpec },
      );
      if (causes.length > 0) {
        ctx.syncError = {
          reason: REASONS.failedCreate,
          message: `the VM conflicts with its instancetype: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}`,
        };
        return undefined;
      }
    }
    const body = instancetypeRevision(vm, obj);
    try {
      await this.#kit.client.createControllerRevision(vm.metadata?.namespace ?? '', body);
    } catch (err) {
      if (!isAlreadyExists(err)) {
        ctx.syncError = {
          reason: REASONS.failedCreate,
          message: `cannot store the ${which} in a ControllerRevision: ${describeApiError(err)}`,
        };
        ctx.retry = ctx.syncError.message;
        return undefined;
      }
    }
    return body.metadata?.name;
  }

  async #revisionSpec<T extends InstancetypeSpec | PreferenceSpec>(
    namespace: string,
    name: string | undefined,
  ): Promise<T | undefined> {
    if (name === undefined) return undefined;
    let rev: V1ControllerRevision | undefined = this.#kit.caches.revisions.get(`${namespace}/${name}`);
    // Created a moment ago by this controller and not in the cache yet.
    rev ??= await this.#kit.client.readControllerRevision(namespace, name);
    return specOfInstancetypeRevision<T>(rev);
  }

  async #expansionInput(
    vm: VirtualMachine,
  ): Promise<
    { instancetype?: InstancetypeSpec; preference?: PreferenceSpec } | { error: string; retry: boolean }
  > {
    const ns = vm.metadata?.namespace ?? '';
    const out: { instancetype?: InstancetypeSpec; preference?: PreferenceSpec } = {};
    try {
      if (vm.spec.instancetype?.name) {
        const spec = await this.#revisionSpec<InstancetypeSpec>(
          ns,
          vm.status?.instancetypeRef?.controllerRevisionRef?.name,
        );
        if (spec === undefined)
          return {
            error:
              'the instancetype revision of the VM has no spec; delete status.instancetypeRef to store it again',
            retry: false,
          };
        out.instancetype = spec;
      }
      if (vm.spec.preference?.name) {
        const spec = await this.#revisionSpec<PreferenceSpec>(
          ns,
          vm.status?.preferenceRef?.controllerRevisionRef?.name,
        );
        if (spec === undefined)
          return {
            error:
              'the preference revision of the VM has no spec; delete status.preferenceRef to store it again',
            retry: false,
          };
        out.preference = spec;
      }
    } catch (err) {
      return {
        error: `cannot read the instancetype/preference revision: ${describeApiError(err)}`,
        retry: true,
      };
    }
    return out;
  }
}

interface SyncContext {
  key: string;
  /** The VM as last written or read; every write replaces it with the server's answer. */
  vm: VirtualMachine;
  vmi: VMI | undefined;
  log: Logger;
  syncError: VMSyncError | undefined;
  requeueAfter: number | undefined;
  /** Set when the reconcile should be retried with backoff after the status is written. */
  retry: string | undefined;
  /** RestartRequired to set, null to remove it, undefined to leave it as it is. */
  restartRequired: Condition | null | undefined;
  /** This reconcile created the VM's VMI. */
  started: boolean;
}
