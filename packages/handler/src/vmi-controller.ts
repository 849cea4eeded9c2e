// The handler's VMI loop (KubeVirt's virt-handler VirtualMachineController, reference §3.4): an informer on the
// VMIs labelled for this node, a work queue of `namespace/name` keys, and a reconcile that finds the VMI's launcher
// through status.activePods, decides what the domain needs (decide.ts), asks the launcher for it, and writes the
// status the launcher's answers imply (status.ts) with the VMI's resourceVersion, only when it changed.
//
// It is level-triggered: the informer cache, the checkpoints on the node and the launchers' answers are the whole
// truth; a domain event or a VMI update only says which key to look at. A restarted handler reads its checkpoints,
// reconnects to every launcher and goes on; running guests never notice.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import {
  WorkQueue,
  createInformer,
  describeApiError,
  isConflict,
  isNotFound,
  resourcePath,
  runWorkers,
  splitKey,
  waitForCacheSync,
  type Informer,
  type Logger,
  type ReconcileResult,
  type Registry,
} from '@kubevirt-ts/runtime';
import { join } from 'node:path';
import type { CheckpointStore, LauncherRecord } from './checkpoint.ts';
import { EVENT_REASONS, LABELS, PRIVATE_VOLUME, SOCKETS, emptyDirPath } from './constants.ts';
import { decide, type Action } from './decide.ts';
import type { EventRecorder } from './events.ts';
import { LauncherLink } from './launcher-link.ts';
import { handlerMetrics, type HandlerMetrics } from './metrics.ts';
import { PodNetworkSetup, podNetworkObservation, type PodNetworkStatus } from './network/pod-network.ts';
import type { PodSockets } from './pod-sockets.ts';
import { nextStatus, type LauncherObservation } from './status.ts';
import { activePodsOnNode, isDeleting, isFinal, isHandlerPhase, isOnNode, vmiKey, type VMI } from './vmi.ts';

/** Reads one VMI from the API server, and writes a VMI whole (it has no /status subresource, DESIGN.md §4b) with its
 * resourceVersion as the lock. */
export interface VmiWriter {
  /** The VMI as stored now; undefined when it does not exist. */
  get(namespace: string, name: string): Promise<VMI | undefined>;
  replace(vmi: VMI): Promise<VMI>;
}

export function apiVmiWriter(kubeConfig: KubeConfig): VmiWriter {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  return {
    get: async (namespace, name) => {
      try {
        return (await api.getNamespacedCustomObject({
          group: 'kubevirt.io',
          version: 'v1',
          plural: 'virtualmachineinstances',
          namespace,
          name,
        })) as VMI;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    replace: async (vmi) =>
      (await api.replaceNamespacedCustomObject({
        group: 'kubevirt.io',
        version: 'v1',
        plural: 'virtualmachineinstances',
        namespace: vmi.metadata?.namespace ?? '',
        name: vmi.metadata?.name ?? '',
        body: vmi,
      })) as VMI,
  };
}

export interface VmiControllerOptions {
  kubeConfig: KubeConfig;
  node: string;
  log: Logger;
  registry: Registry;
  sockets: PodSockets;
  checkpoints: CheckpointStore;
  recorder: EventRecorder;
  writer?: VmiWriter;
  workers?: number;
  unresponsiveAfterMs?: number;
  pingIntervalMs?: number;
  /** How long the guest agent's answer is reused before it is asked again. */
  guestInfoMaxAgeMs?: number;
  resyncPeriodMs?: number;
  /** Prepares the pod network in launcher pods (the privileged part); tests without networking leave it out. */
  podNetwork?: PodNetworkSetup;
}

class SyncFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SyncFailure';
  }
}

export class VmiController {
  /** VMIs come as JSON (string timestamps), so the cache holds them untyped; `vmis`/`get` give them as VMIs. */
  readonly informer: Informer<KubernetesObject>;
  readonly queue: WorkQueue;
  readonly #o: VmiControllerOptions;
  readonly #log: Logger;
  readonly #writer: VmiWriter;
  readonly #metrics: HandlerMetrics;
  /** Launcher records by work-queue key, then by VMI UID (a name can be reused by a VMI with a new UID). */
  readonly #records = new Map<string, Map<string, LauncherRecord>>();
  readonly #links = new Map<string, LauncherLink>();
  readonly #syncErrors = new Map<string, string>();
  /** The pod addresses of each VMI (by UID) whose pod network this handler prepared or checked. */
  readonly #podNetworks = new Map<string, PodNetworkStatus>();
  #checkpointsLoaded = false;

  constructor(opts: VmiControllerOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'vmi-controller' });
    this.#writer = opts.writer ?? apiVmiWriter(opts.kubeConfig);
    const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    const labelSelector = `${LABELS.nodeName}=${opts.node}`;
    this.informer = createInformer<KubernetesObject>({
      name: 'vmi',
      kubeConfig: opts.kubeConfig,
      path: resourcePath({ group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' }),
      labelSelector,
      list: async (o) =>
        (await custom.listClusterCustomObject({
          group: 'kubevirt.io',
          version: 'v1',
          plural: 'virtualmachineinstances',
          ...o,
        })) as KubernetesListObject<KubernetesObject>,
      log: this.#log,
      resyncPeriodMs: opts.resyncPeriodMs ?? 5 * 60_000,
    });
    this.queue = new WorkQueue({ name: 'virt-handler-vmi', registry: opts.registry });
    const enqueue = (obj: KubernetesObject): void => this.queue.add(vmiKey(obj));
    this.informer.addHandlers({ add: enqueue, update: enqueue, delete: enqueue });
    this.#metrics = handlerMetrics(opts.registry, opts.node, () =>
      this.informer
        .list()
        .map((o) => o as VMI)
        .filter((v) => isOnNode(v, opts.node)),
    );
  }

  /** Loads the checkpoints, starts the informer, and runs the workers until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.#o.checkpoints.init();
    const { records, invalid } = await this.#o.checkpoints.load();
    for (const bad of invalid) {
      this.#log.warn(bad, 'ignoring an unreadable checkpoint; remove it if its launcher is gone');
    }
    for (const record of records) {
      this.#remember(record);
      this.queue.add(`${record.namespace}/${record.name}`);
    }
    this.#checkpointsLoaded = true;
    this.#log.info({ launchers: records.length }, 'checkpoints loaded');
    this.informer.start();
    try {
      // A key reconciled before the first list would find no VMI and wind its launcher down as if it were deleted.
      if (!(await waitForCacheSync([this.informer], signal))) return;
      await runWorkers(this.queue, this.#o.workers ?? 5, (key) => this.reconcile(key), signal, {
        log: this.#log,
      });
    } finally {
      await this.informer.stop();
      // The launchers and their guests stay; only this process's sockets and connections go.
      await Promise.all([...this.#links.values()].map((l) => l.close()));
      this.#links.clear();
    }
  }

  /** Ready once the checkpoints are read and the informer has its first list. */
  ready(): boolean | string {
    if (!this.#checkpointsLoaded) return 'checkpoints not loaded yet';
    return this.informer.hasSynced() ? true : 'VMI informer not synced yet';
  }

  /** The VMI `namespace/name` if it runs on this node. */
  vmi(namespace: string, name: string): VMI | undefined {
    const vmi = this.informer.get(`${namespace}/${name}`) as VMI | undefined;
    return vmi !== undefined && isOnNode(vmi, this.#o.node) ? vmi : undefined;
  }

  /** The link to the launcher of a VMI, once connected. */
  link(uid: string): LauncherLink | undefined {
    return this.#links.get(uid);
  }

  #remember(record: LauncherRecord): void {
    const key = `${record.namespace}/${record.name}`;
    let byUid = this.#records.get(key);
    if (!byUid) this.#records.set(key, (byUid = new Map<string, LauncherRecord>()));
    byUid.set(record.uid, record);
  }

  #forgetRecord(record: LauncherRecord): void {
    const key = `${record.namespace}/${record.name}`;
    const byUid = this.#records.get(key);
    byUid?.delete(record.uid);
    if (byUid?.size === 0) this.#records.delete(key);
    this.#syncErrors.delete(record.uid);
    this.#podNetworks.delete(record.uid);
  }

  #linkFor(record: LauncherRecord): LauncherLink {
    let link = this.#links.get(record.uid);
    if (!link) {
      link = new LauncherLink({
        record,
        sockets: this.#o.sockets,
        log: this.#o.log,
        unresponsiveAfterMs: this.#o.unresponsiveAfterMs,
        pingIntervalMs: this.#o.pingIntervalMs,
        hooks: {
          changed: (r) => this.queue.add(`${r.namespace}/${r.name}`),
          k8sEvent: (r, type, reason, message) =>
            this.#o.recorder.event(
              { namespace: r.namespace, name: r.name, uid: r.uid },
              type,
              reason,
              message,
            ),
          rpcError: (rpc, code) => this.#metrics.launcherRpcError(rpc, code),
        },
      });
      this.#links.set(record.uid, link);
    }
    return link;
  }

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const started = performance.now();
    let action: Action['kind'] | 'missing' = 'missing';
    let ok = false;
    try {
      const result = await this.#reconcile(key, (a) => (action = a));
      ok = true;
      return result;
    } finally {
      this.#metrics.reconciled(action, ok, (performance.now() - started) / 1000);
    }
  }

  async #reconcile(key: string, noteAction: (a: Action['kind']) => void): Promise<ReconcileResult | void> {
    let cached = this.informer.get(key) as VMI | undefined;
    if (cached === undefined && this.#records.has(key)) {
      // About to wind down a launcher because its VMI seems gone: make sure with the API server, not only the
      // cache, so a cache that is behind never costs a running guest.
      const { namespace, name } = splitKey(key);
      cached = await this.#writer.get(namespace ?? '', name);
      if (cached !== undefined)
        this.#log.info({ key }, 'the VMI is missing from the cache but exists; not stopping it');
    }
    const vmi = cached !== undefined && isOnNode(cached, this.#o.node) ? cached : undefined;
    const uid = vmi?.metadata?.uid;
    let requeue: number | undefined;
    const later = (ms: number | undefined): void => {
      if (ms !== undefined) requeue = requeue === undefined ? ms : Math.min(requeue, ms);
    };

    // Launchers of this name whose VMI is gone or was replaced by a new one (another UID) are wound down first,
    // as if their VMI had been deleted; KubeVirt also cleans a stale domain before it starts a new one.
    let stale = false;
    for (const record of [...(this.#records.get(key)?.values() ?? [])]) {
      if (record.uid === uid) continue;
      stale = true;
      const { action } = await this.#drive(record, undefined);
      noteAction(action.kind);
      if (action.kind === 'wait') later(action.afterMs);
      else if (action.kind !== 'forget') later(1_000);
    }
    if (vmi === undefined || uid === undefined)
      return requeue === undefined ? undefined : { requeueAfter: requeue };
    if (stale && this.#hasOtherRecords(key, uid)) {
      return { requeueAfter: requeue ?? 1_000 };
    }

    let record = this.#records.get(key)?.get(uid);
    if (record === undefined) {
      // Records are written before the first Sync, so a VMI on its way out without one never had a domain here.
      if (!isHandlerPhase(vmi) || isDeleting(vmi)) {
        noteAction('none');
        return;
      }
      record = await this.#newRecord(vmi);
      if (record === undefined) {
        noteAction('none');
        return;
      }
    }

    const { action, observation, syncError } = await this.#drive(record, vmi);
    noteAction(action.kind);
    // A handler that restarted next to a running guest learns the pod's addresses again (the setup is idempotent).
    if (
      observation.state === 'ready' &&
      observation.domain !== undefined &&
      !isFinal(vmi) &&
      !this.#podNetworks.has(uid)
    ) {
      await this.#preparePodNetwork(record, vmi).catch((err: unknown) =>
        this.#log.warn({ key, err }, 'cannot check the pod network of a running VMI'),
      );
    }
    observation.podNetwork = podNetworkObservation(vmi, this.#podNetworks.get(uid));
    if (action.kind === 'wait') later(action.afterMs);
    else if (action.kind === 'shutdown' || action.kind === 'kill' || action.kind === 'delete') later(1_000);

    const link = this.#links.get(uid);
    if (
      link !== undefined &&
      observation.state === 'ready' &&
      observation.domain?.status.guestAgentConnected === true
    ) {
      try {
        observation.guestInfo = await link.guestInfo(this.#o.guestInfoMaxAgeMs ?? 60_000);
      } catch (err) {
        this.#log.debug({ key, err }, 'the guest agent info is not available');
      }
      if (observation.guestInfo?.os === undefined) later(10_000);
    }

    if ((await this.#writeStatus(vmi, observation, syncError)) === 'conflict') later(1_000);
    if (syncError !== undefined) throw new SyncFailure(`sync of ${key} failed: ${syncError}`);
    return requeue === undefined ? undefined : { requeueAfter: requeue };
  }

  #hasOtherRecords(key: string, uid: string): boolean {
    return [...(this.#records.get(key)?.keys() ?? [])].some((u) => u !== uid);
  }

  /** The record of a VMI's launcher on this node, from status.activePods; written before its first Sync. */
  async #newRecord(vmi: VMI): Promise<LauncherRecord | undefined> {
    const pods = activePodsOnNode(vmi, this.#o.node);
    let podUid: string | undefined;
    if (pods.length === 1) podUid = pods[0];
    else if (pods.length > 1) {
      // During a pod replacement two may be listed; the one whose folder exists on this node is the live one.
      const present: string[] = [];
      for (const p of pods) if (await this.#o.sockets.exists(p)) present.push(p);
      if (present.length === 1) podUid = present[0];
      else {
        this.#log.warn(
          { key: vmiKey(vmi), pods, present },
          'cannot tell which launcher pod of the VMI is the live one; waiting for status.activePods to settle',
        );
        return undefined;
      }
    }
    if (podUid === undefined) return undefined;
    const record: LauncherRecord = {
      namespace: vmi.metadata?.namespace ?? '',
      name: vmi.metadata?.name ?? '',
      uid: vmi.metadata?.uid ?? '',
      podUid,
    };
    await this.#o.checkpoints.put(record);
    this.#remember(record);
    this.#log.info({ ...record }, 'tracking the launcher of a VMI');
    return record;
  }

  /** Observes the launcher, decides, acts; returns what it did and what it saw afterwards. */
  async #drive(
    record: LauncherRecord,
    vmi: VMI | undefined,
  ): Promise<{ action: Action; observation: LauncherObservation; syncError: string | undefined }> {
    const link = this.#linkFor(record);
    const log = this.#log.child({ namespace: record.namespace, name: record.name, uid: record.uid });
    let observation = await link.observe();
    const action = decide({ vmi, launcher: observation, now: Date.now() });
    let syncError = this.#syncErrors.get(record.uid);
    const target = { namespace: record.namespace, name: record.name, uid: record.uid };
    if (action.kind !== 'none' && action.kind !== 'wait') log.debug({ action }, 'acting on the domain');

    switch (action.kind) {
      case 'sync': {
        const hadDomain = observation.domain !== undefined;
        let refused = false;
        let networkReady = true;
        try {
          // The launcher defines the domain with the tap the handler creates: network first (KubeVirt's phase 1).
          if (vmi !== undefined) await this.#preparePodNetwork(record, vmi);
        } catch (err) {
          networkReady = false;
          refused = true;
          syncError = (err as Error).message;
        }
        if (networkReady) {
          try {
            const outcome = await link.command('sync', vmi);
            refused = !outcome.success;
            syncError = outcome.success ? undefined : outcome.message || 'the launcher refused the sync';
          } catch (err) {
            syncError = `the launcher did not answer the sync: ${(err as Error).message}`;
          }
        }
        if (syncError === undefined) this.#syncErrors.delete(record.uid);
        else {
          this.#syncErrors.set(record.uid, syncError);
          // The launcher's reason is news for the user; a launcher that is momentarily unreachable (it is exiting, or
          // restarting) is not: the condition says so, the watchdog decides when it is lost.
          if (refused) this.#o.recorder.event(target, 'Warning', EVENT_REASONS.syncFailed, syncError);
        }
        await link.refreshDomain().catch(() => undefined);
        observation = await link.observe();
        if (!hadDomain && observation.domain !== undefined) {
          this.#o.recorder.event(target, 'Normal', EVENT_REASONS.created, 'VirtualMachineInstance defined.');
        }
        break;
      }
      case 'shutdown': {
        const outcome = await link.shutdown(vmi, action.graceSeconds);
        if (outcome.success) {
          log.info({ grace: action.graceSeconds, why: action.why }, 'graceful shutdown signaled');
          this.#o.recorder.event(target, 'Normal', EVENT_REASONS.shuttingDown, 'Signaled Graceful Shutdown');
        } else log.warn({ message: outcome.message }, 'the launcher refused the shutdown');
        await link.refreshDomain().catch(() => undefined);
        observation = await link.observe();
        break;
      }
      case 'kill': {
        log.warn({ why: action.why }, 'killing the domain');
        const outcome = await link.command('kill', vmi);
        if (!outcome.success) log.warn({ message: outcome.message }, 'the launcher refused the kill');
        await link.refreshDomain().catch(() => undefined);
        observation = await link.observe();
        break;
      }
      case 'delete': {
        const outcome = await link.command('delete', vmi);
        if (!outcome.success) log.warn({ message: outcome.message }, 'the launcher refused the delete');
        else log.info({ why: action.why }, 'domain deleted');
        await link.refreshDomain().catch(() => undefined);
        observation = await link.observe();
        break;
      }
      case 'forget': {
        log.info({ why: action.why }, 'no longer tracking the launcher');
        this.#links.delete(record.uid);
        await link.close({ releaseLink: true });
        await this.#o.checkpoints.remove(record.uid);
        this.#forgetRecord(record);
        break;
      }
      case 'none':
      case 'wait':
        break;
    }
    return { action, observation, syncError };
  }

  /** Prepares (or re-checks) the pod network of a VMI once per handler life; a failure fails the sync. */
  async #preparePodNetwork(record: LauncherRecord, vmi: VMI): Promise<void> {
    const setup = this.#o.podNetwork;
    if (setup === undefined || this.#podNetworks.has(record.uid) || !PodNetworkSetup.needed(vmi)) return;
    const socketsDir = this.#o.sockets.socketsDir(record.podUid);
    const privateDir = join(this.#o.sockets.podsDir, emptyDirPath(record.podUid, PRIVATE_VOLUME));
    try {
      this.#podNetworks.set(record.uid, await setup.setUp(vmi, socketsDir, SOCKETS.launcher, privateDir));
    } catch (err) {
      throw new Error(`cannot prepare the pod network: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes the status the launcher's answers imply, when it differs; 'conflict' when the cached copy was stale. */
  async #writeStatus(
    vmi: VMI,
    observation: LauncherObservation,
    syncError: string | undefined,
  ): Promise<'unchanged' | 'written' | 'conflict'> {
    if (!isOnNode(vmi, this.#o.node)) return 'unchanged';
    if (!isHandlerPhase(vmi) && !isFinal(vmi)) return 'unchanged';
    const result = nextStatus({ vmi, launcher: observation, syncError, now: new Date() });
    if (!result.changed) return 'unchanged';
    const key = vmiKey(vmi);
    try {
      await this.#writer.replace(result.vmi);
    } catch (err) {
      if (isNotFound(err)) return 'unchanged';
      if (isConflict(err)) {
        // The cached copy is older than the stored one (the controller wrote, or our own last write has not come
        // back through the watch yet): the informer brings the newer copy, and the key is looked at again.
        this.#log.debug(
          { key, resourceVersion: vmi.metadata?.resourceVersion },
          'VMI status write conflicted',
        );
        return 'conflict';
      }
      throw new Error(`cannot write the status of VMI ${key}: ${describeApiError(err)}`, { cause: err });
    }
    this.#log.info(
      {
        key,
        phase: result.vmi.status?.phase,
        from: vmi.status?.phase,
        conditions: result.vmi.status?.conditions?.map((c) => `${c.type}=${c.status}`),
      },
      'VMI status updated',
    );
    const target = {
      namespace: vmi.metadata?.namespace ?? '',
      name: vmi.metadata?.name ?? '',
      uid: vmi.metadata?.uid ?? '',
    };
    for (const e of result.events) this.#o.recorder.event(target, e.type, e.reason, e.message);
    return 'written';
  }

  /** Every key this controller tracks a launcher for (tests and debugging). */
  trackedKeys(): string[] {
    return [...this.#records.keys()].sort();
  }
}
