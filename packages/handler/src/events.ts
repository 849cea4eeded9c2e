// Kubernetes Events on the VMIs of this node, for what a user must know: a guest started, shut down or crashed, a
// sync failed and why, a launcher stopped answering, and whatever the launcher asks to have recorded (a guest panic,
// an I/O error). Recording is fire-and-forget, so a reconcile never waits on it or fails because of it; identical
// events (same VMI, reason and message) are recorded once a minute at most, so a sync retried with backoff does not
// flood the namespace.
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import { describeApiError, type Logger } from '@kubevirt-ts/runtime';
import { COMPONENT } from './constants.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion?: string | undefined;
}

export interface EventRecorder {
  event(target: EventTarget, type: EventType, reason: string, message: string): void;
}

const DEDUPE_MS = 60_000;
/** Kubernetes refuses Event messages longer than this. */
const MAX_MESSAGE = 1024;

export class ApiEventRecorder implements EventRecorder {
  readonly #core: Pick<CoreV1Api, 'createNamespacedEvent'>;
  readonly #log: Logger;
  readonly #node: string;
  readonly #recent = new Map<string, number>();
  readonly #now: () => number;

  constructor(core: Pick<CoreV1Api, 'createNamespacedEvent'>, log: Logger, node: string, now = Date.now) {
    this.#core = core;
    this.#log = log.child({ component: 'events' });
    this.#node = node;
    this.#now = now;
  }

  event(target: EventTarget, type: EventType, reason: string, message: string): void {
    const now = this.#now();
    const key = `${target.uid}\u0000${reason}\u0000${message}`;
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < DEDUPE_MS) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 1000) {
      for (const [k, at] of this.#recent) if (now - at >= DEDUPE_MS) this.#recent.delete(k);
    }
    const time = new Date(now);
    const body: CoreV1Event = {
      metadata: { generateName: `${target.name}.`, namespace: target.namespace },
      involvedObject: {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstance',
        name: target.name,
        namespace: target.namespace,
        uid: target.uid,
        resourceVersion: target.resourceVersion,
      },
      type,
      reason,
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
      source: { component: COMPONENT, host: this.#node },
      reportingComponent: COMPONENT,
      reportingInstance: `${COMPONENT}-${this.#node}`,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    const ref = { kind: 'VirtualMachineInstance', namespace: target.namespace, name: target.name, reason };
    this.#log.info({ ...ref, type }, message);
    this.#core.createNamespacedEvent({ namespace: target.namespace, body }).catch((err: unknown) => {
      this.#log.warn({ ...ref, error: describeApiError(err) }, 'could not record an event');
    });
  }
}

/** Keeps events in memory (unit tests), newest last. */
export class MemoryEventRecorder implements EventRecorder {
  readonly events: { name: string; type: EventType; reason: string; message: string }[] = [];

  event(target: EventTarget, type: EventType, reason: string, message: string): void {
    this.events.push({ name: target.name, type, reason, message });
  }
}
