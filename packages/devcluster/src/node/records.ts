// The node agent's memory of its pods, one JSON file per pod UID under the node root
// (var/lib/devcluster-node/pods/<uid>.json): the pod's address and network namespace, each container's current run
// (the handle of its detached shim), restart count and last termination, and the devices it holds. A restarted
// agent reads these back, adopts the containers that still run and does not start them twice.
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Allocation } from './deviceplugin/manager.ts';
import type { ContainerHandle } from './runtime.ts';

export interface TerminatedRun {
  exitCode: number;
  /** Completed, Error, StartError, … */
  reason: string;
  message?: string;
  startedAt?: string;
  finishedAt: string;
  containerID?: string;
}

export interface ContainerRecord {
  name: string;
  restartCount: number;
  /** The run in progress (or exited and not yet processed). */
  current?: ContainerHandle & { imageRef: string; init: boolean };
  /** The last finished run: `state.terminated` while the container stays down, `lastState` once it runs again. */
  lastTermination?: TerminatedRun;
  /** The run before lastTermination: `lastState` while the container stays down after its last run. */
  previousTermination?: TerminatedRun;
  /** Why the container is not running (ContainerCreating, ErrImagePull, CrashLoopBackOff, …). */
  waiting?: { reason: string; message?: string };
  /** No new run before this time (CrashLoopBackOff). */
  backoffUntil?: string;
  backoffMs?: number;
  /** Runs started so far (the next run's log file is `<restartCount>.log`). */
  runs: number;
}

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  firstSeen: string;
  hostNetwork: boolean;
  /** Pod address (the node's own for hostNetwork pods). */
  ip?: string;
  netns?: string;
  sandboxReady: boolean;
  /** The pod's grace period as last seen, for a pod that vanishes from the API without a graceful delete. */
  terminationGracePeriodSeconds: number;
  initContainers: Record<string, ContainerRecord>;
  containers: Record<string, ContainerRecord>;
  allocations: Record<string, Allocation>;
  /** Set once termination began: SIGTERM sent; SIGKILL due at `killAt`. */
  terminating?: { since: string; killAt: string; reason: string };
  /** The sandbox is gone for good (terminal pod, or terminated and waiting for deletion). */
  sandboxReleased?: boolean;
}

export function newContainerRecord(name: string): ContainerRecord {
  return { name, restartCount: 0, runs: 0 };
}

export class PodRecords {
  readonly #dir: string;
  readonly #byUid = new Map<string, PodRecord>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  async load(): Promise<PodRecord[]> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    for (const file of await readdir(this.#dir)) {
      if (!file.endsWith('.json')) continue;
      try {
        const record = JSON.parse(await readFile(join(this.#dir, file), 'utf8')) as PodRecord;
        this.#byUid.set(record.uid, record);
      } catch {
        // A torn write cannot happen (rename), so this is someone else's file: leave it alone.
      }
    }
    return [...this.#byUid.values()];
  }

  get(uid: string): PodRecord | undefined {
    return this.#byUid.get(uid);
  }

  all(): PodRecord[] {
    return [...this.#byUid.values()];
  }

  /** Records of pods with this namespace and name (usually one; two while a recreated pod replaces an old one). */
  byKey(namespace: string, name: string): PodRecord[] {
    return this.all().filter((r) => r.namespace === namespace && r.name === name);
  }

  async save(record: PodRecord): Promise<void> {
    this.#byUid.set(record.uid, record);
    const file = join(this.#dir, `${record.uid}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async remove(uid: string): Promise<void> {
    this.#byUid.delete(uid);
    await rm(join(this.#dir, `${uid}.json`), { force: true });
  }
}
