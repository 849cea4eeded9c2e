// Events on pods, as the kubelet records them (Pulling, Created, Started, Killing, BackOff, Unhealthy, Failed,
// FailedMount), so `kubectl describe pod` tells what happened on the node. Best effort: a failed write is logged,
// never retried, and a repeat of the same event within a minute is dropped.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';

const REPEAT_WINDOW_MS = 60_000;

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  readonly #core: CoreV1Api;
  readonly #node: string;
  readonly #log: Logger;
  readonly #recent = new Map<string, number>();

  constructor(kc: KubeConfig, node: string, log: Logger) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#node = node;
    this.#log = log.child({ component: 'events' });
  }

  record(pod: V1Pod, type: EventType, reason: string, message: string, fieldPath?: string): void {
    const namespace = pod.metadata?.namespace ?? 'default';
    const uid = pod.metadata?.uid ?? '';
    const key = `${uid}/${fieldPath ?? ''}/${reason}/${message}`;
    const now = Date.now();
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < REPEAT_WINDOW_MS) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 5_000) {
      for (const [k, t] of this.#recent) if (now - t > REPEAT_WINDOW_MS) this.#recent.delete(k);
    }
    const time = new Date(now);
    this.#core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${pod.metadata?.name ?? 'pod'}.`, namespace },
          involvedObject: {
            apiVersion: 'v1',
            kind: 'Pod',
            name: pod.metadata?.name ?? '',
            namespace,
            uid,
            ...(fieldPath ? { fieldPath } : {}),
          },
          reason,
          message,
          type,
          source: { component: 'kubelet', host: this.#node },
          reportingComponent: 'kubelet',
          reportingInstance: this.#node,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
      })
      .catch((err: unknown) => this.#log.debug({ err, reason }, 'could not record an event'));
  }
}
