// virt-controller's own metrics, named as KubeVirt's where KubeVirt has one:
// - kubevirt_vmi_phase_transition_time_from_creation_seconds{phase}: seconds from a VMI's creation to each phase
//   it reaches, with KubeVirt's buckets (pkg/monitoring/metrics/virt-controller/perfscale_metrics.go);
// - kubevirt_workqueue_queue_duration_seconds{name}: how long a key waits in a queue before a worker takes it
//   (client-go's workqueue latency; depth and work duration come from the runtime's WorkQueue);
// - kubevirt_controller_reconcile_errors_total{controller}: reconciles that failed and were retried;
// - kubevirt_virt_controller_leading_status: 1 while this replica leads.
import {
  counter,
  gauge,
  histogram,
  WorkQueue,
  type Registry,
  type WorkQueueOptions,
} from '@kubevirt-ts/runtime';
import { timeMs, type VMI } from './objects.ts';

/** KubeVirt's PhaseTransitionTimeBuckets: 0.5 s to 1 h. */
export const PHASE_TRANSITION_BUCKETS = [
  0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600,
];

export class ControllerMetrics {
  readonly #registry: Registry | undefined;
  readonly #phaseSeen = new Map<string, string>();

  constructor(registry?: Registry) {
    this.#registry = registry;
  }

  get registry(): Registry | undefined {
    return this.#registry;
  }

  reconcileError(controller: string): void {
    if (this.#registry === undefined) return;
    counter(this.#registry, {
      name: 'kubevirt_controller_reconcile_errors_total',
      help: 'Reconciles of virt-controller that failed and were retried with backoff, by controller',
      labelNames: ['controller'],
    }).inc({ controller });
  }

  leading(value: boolean): void {
    if (this.#registry === undefined) return;
    gauge(this.#registry, {
      name: 'kubevirt_virt_controller_leading_status',
      help: 'Whether this virt-controller replica is the leader (1) or not (0)',
    }).set(value ? 1 : 0);
  }

  /**
   * Called with every VMI the informer delivers. Observes the time from creation to the VMI's phase when the phase
   * differs from the one last seen for this VMI (KubeVirt observes on informer updates the same way); a VMI first
   * seen after a restart is only remembered, so a resync does not count old transitions again.
   */
  vmiObserved(vmi: VMI, event: 'add' | 'update' | 'delete'): void {
    const uid = vmi.metadata?.uid;
    if (uid === undefined) return;
    if (event === 'delete') {
      this.#phaseSeen.delete(uid);
      return;
    }
    const phase = vmi.status?.phase ?? '';
    const previous = this.#phaseSeen.get(uid);
    this.#phaseSeen.set(uid, phase);
    if (previous === undefined || previous === phase || phase === '' || this.#registry === undefined) return;
    const created = timeMs(vmi.metadata?.creationTimestamp);
    const reached = timeMs(
      vmi.status?.phaseTransitionTimestamps?.find((t) => t.phase === phase)?.phaseTransitionTimestamp,
    );
    if (created === undefined || reached === undefined) return;
    histogram(this.#registry, {
      name: 'kubevirt_vmi_phase_transition_time_from_creation_seconds',
      help: 'Histogram of VM phase transitions duration from creation time in seconds.',
      labelNames: ['phase'],
      buckets: PHASE_TRANSITION_BUCKETS,
    }).observe({ phase }, Math.max(0, (reached - created) / 1000));
  }
}

/** A WorkQueue that also reports how long keys wait before a worker takes them. */
export class InstrumentedQueue extends WorkQueue<string> {
  readonly #addedAt = new Map<string, number>();
  readonly #observe: ((seconds: number) => void) | undefined;

  constructor(opts: WorkQueueOptions<string>) {
    super(opts);
    const registry = opts.registry;
    if (registry !== undefined) {
      const h = histogram(registry, {
        name: 'kubevirt_workqueue_queue_duration_seconds',
        help: 'How long a key waits in the workqueue before it is processed, in seconds',
        labelNames: ['name'],
        buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60],
      });
      this.#observe = (s) => h.observe({ name: opts.name }, s);
    }
  }

  override add(key: string): void {
    if (!this.shuttingDown && !this.#addedAt.has(key)) this.#addedAt.set(key, performance.now());
    super.add(key);
  }

  override async get(): Promise<string | undefined> {
    const key = await super.get();
    if (key !== undefined) {
      const at = this.#addedAt.get(key);
      this.#addedAt.delete(key);
      if (at !== undefined) this.#observe?.((performance.now() - at) / 1000);
    }
    return key;
  }

  override shutDown(): void {
    this.#addedAt.clear();
    super.shutDown();
  }
}
