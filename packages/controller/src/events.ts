// Events for what a user must know (a pod created or not, a VMI started or stopped, a node found unresponsive),
// recorded as core/v1 Events on the object, as KubeVirt's recorder does. Recording never blocks or fails a
// reconcile: it is fire-and-forget, and a burst of identical events (same object, reason and message) within a
// minute is recorded once, so a failing reconcile retried with backoff does not flood the namespace.
import type { CoreV1Event } from '@kubernetes/client-node';
import { describeApiError, type Logger } from '@kubevirt-ts/runtime';
import type { KubeClient } from './kube.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata?:
    | {
        name?: string | undefined;
        namespace?: string | undefined;
        uid?: string | undefined;
        resourceVersion?: string | undefined;
      }
    | undefined;
}

export interface EventRecorder {
  event(target: EventTarget, type: EventType, reason: string, message: string): void;
}

const DEDUPE_MS = 60_000;
const COMPONENT = 'virt-controller';

export class ApiEventRecorder implements EventRecorder {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #recent = new Map<string, number>();
  readonly #now: () => number;

  constructor(client: KubeClient, log: Logger, instance: string, now: () => number = Date.now) {
    this.#client = client;
    this.#log = log.child({ component: 'events' });
    this.#instance = instance;
    this.#now = now;
  }

  event(target: EventTarget, type: EventType, reason: string, message: string): void {
    const meta = target.metadata ?? {};
    const key = `${meta.uid ?? `${meta.namespace}/${meta.name}`}\u0000${reason}\u0000${message}`;
    const now = this.#now();
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < DEDUPE_MS) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 1000) {
      for (const [k, at] of this.#recent) if (now - at >= DEDUPE_MS) this.#recent.delete(k);
    }
    // Cluster-scoped objects (nodes) get their events in `default`, as the kubelet's do.
    const namespace = meta.namespace || 'default';
    const time = new Date(now);
    const body: CoreV1Event = {
      metadata: { generateName: `${meta.name ?? 'object'}.`, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: this.#instance,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.#log.debug({ kind: target.kind, namespace: meta.namespace, name: meta.name, reason }, message);
    this.#client.createEvent(namespace, body).catch((err: unknown) => {
      this.#log.warn(
        {
          kind: target.kind,
          namespace: meta.namespace,
          name: meta.name,
          reason,
          error: describeApiError(err),
        },
        'could not record an event',
      );
    });
  }
}

/** Keeps events in memory (unit tests), newest last. */
export class MemoryEventRecorder implements EventRecorder {
  readonly events: {
    kind: string | undefined;
    name: string | undefined;
    type: EventType;
    reason: string;
    message: string;
  }[] = [];

  event(target: EventTarget, type: EventType, reason: string, message: string): void {
    this.events.push({ kind: target.kind, name: target.metadata?.name, type, reason, message });
  }
}
