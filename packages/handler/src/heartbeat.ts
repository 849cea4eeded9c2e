// The node heartbeat (KubeVirt's pkg/virt-handler/heartbeat): every minute (with jitter) the handler marks its
// Node `kubevirt.io/schedulable=true` once its device plugins are registered, stamps `kubevirt.io/heartbeat`, and
// labels whether /dev/kvm is usable there. Launcher pods select `kubevirt.io/schedulable=true`; the node
// controller turns a stale heartbeat into `false`. On shutdown the handler sets it to `false` itself.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { CoreV1Api } from '@kubernetes/client-node';
import { describeApiError, mergePatchOptions, type Logger } from '@kubevirt-ts/runtime';
import { ANNOTATIONS, LABELS } from './constants.ts';
import { rfc3339 } from './vmi.ts';

export interface HeartbeatState {
  schedulable: boolean;
  kvmUsable: boolean;
  now: Date;
}

/** The merge patch one heartbeat sends to the Node. */
export function heartbeatPatch(state: HeartbeatState): {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
} {
  return {
    metadata: {
      labels: {
        [LABELS.schedulable]: String(state.schedulable),
        [LABELS.kvmUsable]: String(state.kvmUsable),
      },
      annotations: { [ANNOTATIONS.heartbeat]: rfc3339(state.now) },
    },
  };
}

/** Whether /dev/kvm (under `devDir`) can be opened for reading and writing, which is what QEMU needs. */
export async function kvmUsable(devDir: string): Promise<boolean> {
  try {
    const handle = await open(join(devDir, 'kvm'), 'r+');
    await handle.close();
    return true;
  } catch {
    return false;
  }
}

export interface HeartbeatOptions {
  core: Pick<CoreV1Api, 'patchNode'>;
  node: string;
  log: Logger;
  /** Whether the node may take VMIs now (device plugins registered, informers synced). */
  ready: () => boolean;
  devDir: string;
  intervalMs?: number;
  /** How often `ready()` is checked for a change between beats. Default 2 s. */
  readinessPollMs?: number;
  random?: () => number;
}

export class Heartbeat {
  readonly #o: HeartbeatOptions;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #watch: NodeJS.Timeout | undefined;
  #sending = false;
  #stopped = false;
  #last: { schedulable: boolean; kvmUsable: boolean } | undefined;

  constructor(opts: HeartbeatOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'heartbeat' });
  }

  /**
   * Beats now, then every interval (×1..1.2 jitter), and out of schedule as soon as `ready()` changes, so a node
   * becomes schedulable the moment its device plugins are registered rather than a minute later.
   */
  start(): void {
    this.#stopped = false;
    void this.#beatAndSchedule();
    this.#watch = setInterval(() => {
      if (
        !this.#stopped &&
        !this.#sending &&
        this.#last !== undefined &&
        this.#o.ready() !== this.#last.schedulable
      ) {
        void this.beat();
      }
    }, this.#o.readinessPollMs ?? 2_000);
    this.#watch.unref();
  }

  /** Beats once, out of schedule (e.g. when the device plugins just registered). */
  async beat(): Promise<void> {
    const state = {
      schedulable: this.#o.ready(),
      kvmUsable: await kvmUsable(this.#o.devDir),
      now: new Date(),
    };
    await this.#send(state);
  }

  /** Stops beating and marks the node unschedulable. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#watch);
    await this.#send({
      schedulable: false,
      kvmUsable: this.#last?.kvmUsable ?? (await kvmUsable(this.#o.devDir)),
      now: new Date(),
    });
  }

  async #beatAndSchedule(): Promise<void> {
    await this.beat();
    if (this.#stopped) return;
    const interval = this.#o.intervalMs ?? 60_000;
    this.#timer = setTimeout(
      () => void this.#beatAndSchedule(),
      interval * (1 + 0.2 * (this.#o.random ?? Math.random)()),
    );
    this.#timer.unref();
  }

  async #send(state: HeartbeatState): Promise<void> {
    this.#sending = true;
    try {
      await this.#o.core.patchNode({ name: this.#o.node, body: heartbeatPatch(state) }, mergePatchOptions());
      if (this.#last?.schedulable !== state.schedulable || this.#last.kvmUsable !== state.kvmUsable) {
        this.#log.info(
          { node: this.#o.node, schedulable: state.schedulable, kvmUsable: state.kvmUsable },
          'node heartbeat',
        );
      }
      this.#last = { schedulable: state.schedulable, kvmUsable: state.kvmUsable };
    } catch (err) {
      this.#log.warn(
        { node: this.#o.node, error: describeApiError(err) },
        'node heartbeat failed; retrying at the next beat',
      );
    } finally {
      this.#sending = false;
    }
  }
}
