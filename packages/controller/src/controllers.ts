// All of virt-controller's controllers over one set of informers: what the leader runs. Informers are started
// first and every controller waits until all caches are synced before its first reconcile, so none acts on a
// half-listed world (a replica set would otherwise create VMIs it already has). Each controller has its own
// work queue and workers (KubeVirt's counts: VMI 10, the others 3).
import os from 'node:os';
import type {
  KubeConfig,
  V1ControllerRevision,
  V1Node,
  V1PersistentVolumeClaim,
  V1Pod,
} from '@kubernetes/client-node';
import {
  runWorkers,
  waitForCacheSync,
  type LeaderElector,
  type Logger,
  type ReadinessCheck,
  type ReconcileResult,
  type Registry,
} from '@kubevirt-ts/runtime';
import type {
  ClusterConfig,
  PullPolicy,
  VirtualMachine,
  VirtualMachineInstanceReplicaSet,
} from '@kubevirt-ts/schema';
import { ClusterConfigSource } from './cluster-config.ts';
import { LABELS, LAUNCHER_APP } from './constants.ts';
import type { Caches, ControllerKit } from './controller-kit.ts';
import { ApiEventRecorder, type EventRecorder } from './events.ts';
import {
  customCache,
  nodeCache,
  podCache,
  pvcCache,
  revisionCache,
  type InformerScope,
} from './informers.ts';
import { KubeClient, WriteCounter } from './kube.ts';
import { ControllerMetrics, InstrumentedQueue } from './metrics.ts';
import { NodeController, type NodeControllerOptions } from './node/controller.ts';
import type { VMI } from './objects.ts';
import { ReplicaSetController } from './replicaset/controller.ts';
import { VMController } from './vm/controller.ts';
import { VMIController } from './vmi/controller.ts';

/**
 * The readiness of a virt-controller replica: a standby is as ready as the leader (it exists to take over);
 * /readyz?verbose says which this replica is, and who leads.
 */
export function leaderReadinessCheck(
  elector: Pick<LeaderElector, 'state' | 'identity' | 'leader'>,
  controllers: Pick<Controllers, 'synced'>,
): ReadinessCheck {
  return () => {
    if (elector.state === 'leader') {
      return {
        ok: true,
        detail: `leader (${elector.identity}); controllers ${controllers.synced ? 'running' : 'syncing caches'}`,
      };
    }
    if (elector.state === 'candidate')
      return { ok: true, detail: `standby; leader is ${elector.leader() || 'not known yet'}` };
    return `leader election is ${elector.state}`;
  };
}

export interface WorkerCounts {
  vmi: number;
  vm: number;
  vmirs: number;
  node: number;
}

export const DEFAULT_WORKERS: WorkerCounts = { vmi: 10, vm: 3, vmirs: 3, node: 3 };

export interface ControllersOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  registry?: Registry | undefined;
  /** Namespace of the KubeVirt configuration CR (the install namespace). */
  installNamespace: string;
  /** Watch only this namespace's VMs, VMIs, replica sets and pods; all namespaces when undefined. */
  namespace?: string | undefined;
  /** The node controller looks only at nodes this label selector selects; all nodes when undefined. */
  nodeLabelSelector?: string | undefined;
  launcherImage: string;
  launcherImagePullPolicy?: PullPolicy | undefined;
  /** Who records events (reportingInstance); default host name and pid. */
  identity?: string | undefined;
  workers?: Partial<WorkerCounts>;
  node?: NodeControllerOptions;
  /** Informer resync period (default the runtime's, 5 min). */
  resyncPeriodMs?: number | undefined;
  /** Shared write counter (tests and the benchmark read it); a new one by default. */
  writes?: WriteCounter;
  recorder?: EventRecorder;
  now?: () => Date;
}

interface Controller {
  readonly name: string;
  watch(enqueue: (key: string) => void): () => void;
  keys(): string[];
  reconcile(key: string): Promise<ReconcileResult | void>;
}

export class Controllers {
  readonly writes: WriteCounter;
  readonly client: KubeClient;
  readonly config: ClusterConfigSource;
  readonly caches: Caches;
  readonly vmi: VMIController;
  readonly vm: VMController;
  readonly vmirs: ReplicaSetController;
  readonly node: NodeController;
  readonly #o: ControllersOptions;
  readonly #log: Logger;
  readonly #metrics: ControllerMetrics;
  #synced = false;
  #running = false;

  constructor(opts: ControllersOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'controllers' });
    this.writes = opts.writes ?? new WriteCounter(opts.registry);
    this.client = new KubeClient(opts.kubeConfig, this.writes);
    this.#metrics = new ControllerMetrics(opts.registry);
    const scope: InformerScope = {
      kubeConfig: opts.kubeConfig,
      client: this.client,
      log: opts.log,
      namespace: opts.namespace,
      resyncPeriodMs: opts.resyncPeriodMs,
    };
    this.config = new ClusterConfigSource({
      kubeConfig: opts.kubeConfig,
      client: this.client,
      namespace: opts.installNamespace,
      log: opts.log,
      registry: opts.registry,
    });
    this.caches = {
      vmis: customCache<VMI>(scope, 'VirtualMachineInstance'),
      vms: customCache<VirtualMachine>(scope, 'VirtualMachine'),
      replicaSets: customCache<VirtualMachineInstanceReplicaSet>(scope, 'VirtualMachineInstanceReplicaSet'),
      pods: podCache<V1Pod>(scope, `${LABELS.app}=${LAUNCHER_APP}`),
      pvcs: pvcCache<V1PersistentVolumeClaim>(scope),
      nodes: nodeCache<V1Node>(scope, opts.nodeLabelSelector),
      revisions: revisionCache<V1ControllerRevision>(scope, LABELS.revisionVmUid),
    };
    const kit: ControllerKit = {
      caches: this.caches,
      client: this.client,
      recorder:
        opts.recorder ??
        new ApiEventRecorder(this.client, opts.log, opts.identity ?? `${os.hostname()}_${process.pid}`),
      metrics: this.#metrics,
      log: opts.log,
      config: (): ClusterConfig => this.config.current(),
      now: opts.now ?? (() => new Date()),
    };
    this.vmi = new VMIController(kit, {
      launcherImage: opts.launcherImage,
      launcherImagePullPolicy: opts.launcherImagePullPolicy,
    });
    this.vm = new VMController(kit);
    this.vmirs = new ReplicaSetController(kit);
    this.node = new NodeController(kit, opts.node);
  }

  /** True once every cache has synced and the workers run. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Runs every controller until `signal` aborts (leadership ends or the process shuts down). */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error('Controllers.run may be called only once at a time');
    this.#running = true;
    const workers = { ...DEFAULT_WORKERS, ...this.#o.workers };
    const registry = this.#o.registry;
    const controllers: [Controller, number][] = [
      [this.vmi, workers.vmi],
      [this.vm, workers.vm],
      [this.vmirs, workers.vmirs],
      [this.node, workers.node],
    ];
    const queues = controllers.map(
      ([c]) =>
        new InstrumentedQueue({ name: `virt-controller-${c.name}`, ...(registry ? { registry } : {}) }),
    );
    const unwire = controllers.map(([c], i) => c.watch((key) => queues[i]!.add(key)));
    // New configuration: VMIs still waiting for a pod are rendered with it (a feature gate may unblock one).
    unwire.push(this.config.onChange(() => this.vmi.keys().forEach((k) => queues[0]!.add(k))));
    const c = this.caches;
    const informers = [
      c.vmis,
      c.vms,
      c.replicaSets,
      c.pods,
      c.pvcs,
      c.nodes,
      c.revisions,
      this.config.cache,
    ].map((x) => x.informer);
    for (const informer of informers) informer.start();
    this.#metrics.leading(true);
    try {
      this.#log.info('waiting for the informer caches to sync');
      if (!(await waitForCacheSync(informers, signal))) return;
      this.#synced = true;
      this.#log.info({ workers }, 'caches synced; controllers running');
      await Promise.all([
        this.config.run(signal),
        ...controllers.map(([c, n], i) =>
          runWorkers(
            queues[i]!,
            n,
            async (key) => {
              try {
                return await c.reconcile(key);
              } catch (err) {
                this.#metrics.reconcileError(c.name);
                throw err;
              }
            },
            signal,
            { log: this.#log },
          ),
        ),
      ]);
    } finally {
      this.#synced = false;
      this.#metrics.leading(false);
      for (const u of unwire) u();
      for (const q of queues) q.shutDown();
      await Promise.all(informers.map((i) => i.stop()));
      this.#running = false;
      this.#log.info('controllers stopped');
    }
  }
}
